"""A fake model provider: a real loopback HTTP server speaking every family's wire format.

    fake = FakeProvider().start()
    fake.enqueue(Script(tokens=["Hel", "lo"], status=429, headers={"Retry-After": "1"}))
    ... point a Target at fake.url + "/v1" (OpenAI), fake.url (Anthropic, Gemini, Ollama) ...
    fake.stop()

A Script says what to answer: ``tokens``/``reasoning`` (deltas, reasoning first),
``tokens_per_second`` (None = as fast as possible, scheduled against a start time so it
does not drift), ``first_token_delay``, ``status`` with ``error_body`` and ``headers``,
``usage``, ``finish_reason`` (OpenAI words, translated per family; other values sent
verbatim), and faults counted in deltas sent: ``stall_after`` (silence until the client
hangs up, with ``keepalive_interval`` comments/pings if set), ``drop_after`` (TCP RST),
``malformed_after`` (one non-JSON data line), ``error_event_after`` (the family's
in-stream error, ``error_body`` if given), plus ``no_terminator``, ``html_body`` and
``echo`` (answer with the last user message's words) and ``stamp`` (each delta's text
is replaced by ``time.time_ns()`` at the moment it is written, for latency benchmarks).

The family is chosen by path: /v1/chat/completions, /v1/messages,
/v1beta/models/{model}:streamGenerateContent, /api/chat; model lists at GET /v1/models,
/v1beta/models and /api/tags; ``POST /_script`` enqueues a Script sent as JSON.
"""

from tests.fakeprovider.server import FakeProvider, Recorded, Script

__all__ = ["FakeProvider", "Recorded", "Script"]
