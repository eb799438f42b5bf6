"""The OpenAI-compatible family: pure request/chunk functions, then real HTTP against the fake."""

from __future__ import annotations

import asyncio
import time
from contextlib import aclosing

import pytest

from providers import openai_compat, registry
from providers.base import (
    ChatMessage,
    ChatRequest,
    Done,
    ErrorKind,
    FinishReason,
    ProviderError,
    ReasoningDelta,
    Target,
    TextDelta,
    Usage,
)
from tests.fakeprovider import FakeProvider, Script

REQUEST = ChatRequest(
    model="fake-model",
    messages=(ChatMessage("system", "Be terse."), ChatMessage("user", "Say hello")),
    temperature=0.2,
    max_tokens=50,
    stop=("END",),
)
CANARY = "sk-canary-123"


def target_for(fake: FakeProvider, **kwargs: object) -> Target:
    return Target(base_url=fake.url + "/v1", api_key="sk-test", **kwargs)  # type: ignore[arg-type]


async def collect(events: object) -> list[object]:
    return [event async for event in events]  # type: ignore[attr-defined]


def text_of(events: list[object]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


async def failure(events: object) -> tuple[list[object], ProviderError]:
    seen: list[object] = []
    with pytest.raises(ProviderError) as caught:
        async for event in events:  # type: ignore[attr-defined]
            seen.append(event)
    return seen, caught.value


# ---- pure functions ---------------------------------------------------------------------


def test_the_body_asks_for_a_stream_with_usage_and_maps_every_setting() -> None:
    body = openai_compat.build_body(Target("http://x"), REQUEST)
    assert body == {
        "model": "fake-model",
        "messages": [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Say hello"}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.2,
        "max_tokens": 50,
        "stop": ["END"],
    }


def test_quirks_rename_max_tokens_drop_stream_options_and_add_extra_fields() -> None:
    quirks = {
        "max_tokens_field": "max_completion_tokens",
        "no_stream_options": True,
        "extra_body": {"enable_thinking": True},
    }
    body = openai_compat.build_body(Target("http://x", quirks=quirks), REQUEST)
    assert "stream_options" not in body and "max_tokens" not in body
    assert body["max_completion_tokens"] == 50 and body["enable_thinking"] is True


def test_no_authorization_header_is_sent_without_a_key() -> None:
    assert "authorization" not in openai_compat.headers_for(Target("http://x", headers={"X-Title": "Parley"}))
    assert openai_compat.headers_for(Target("http://x", api_key="k"))["authorization"] == "Bearer k"


def test_reasoning_is_read_under_either_name() -> None:
    assert openai_compat.parse_chunk({"choices": [{"delta": {"reasoning": "a"}}]}) == [ReasoningDelta("a")]
    assert openai_compat.parse_chunk({"choices": [{"delta": {"reasoning_content": "b", "content": None}}]}) == [
        ReasoningDelta("b")
    ]


def test_list_content_is_read_as_typed_parts() -> None:
    content = [
        {"type": "thinking", "thinking": [{"type": "text", "text": "hmm"}]},
        {"type": "text", "text": "Hi"},
        "!",
    ]
    assert openai_compat.parse_chunk({"choices": [{"delta": {"content": content}}]}) == [
        ReasoningDelta("hmm"),
        TextDelta("Hi"),
        TextDelta("!"),
    ]


def test_usage_comes_from_the_usage_chunk_or_from_x_groq() -> None:
    assert openai_compat.parse_chunk({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4}}) == [
        Usage(3, 4)
    ]
    groq = {"choices": None, "x_groq": {"usage": {"prompt_tokens": 5, "completion_tokens": 6}}}
    assert openai_compat.parse_chunk(groq) == [Usage(5, 6)]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("stop", FinishReason.STOP),
        ("length", FinishReason.LENGTH),
        ("content_filter", FinishReason.CONTENT_FILTER),
        ("tool_calls", FinishReason.TOOL_CALLS),
        ("stop_sequence", FinishReason.STOP),
        ("weird", FinishReason.OTHER),
    ],
)
def test_finish_reasons_map_to_ours(raw: str, reason: FinishReason) -> None:
    events = openai_compat.parse_chunk({"choices": [{"delta": {}, "finish_reason": raw}]})
    assert [e.finish_reason for e in events if isinstance(e, Done)] == [reason]


def test_an_error_payload_in_a_chunk_raises_without_its_text() -> None:
    with pytest.raises(ProviderError) as caught:
        openai_compat.parse_chunk({"error": {"message": f"bad key {CANARY}", "type": "server_error"}})
    assert CANARY not in str(caught.value) + caught.value.detail


def test_an_openrouter_error_chunk_raises_even_with_choices() -> None:
    chunk = {
        "error": {"code": 502, "message": "Provider returned error"},
        "choices": [{"delta": {"content": ""}, "finish_reason": "error"}],
    }
    with pytest.raises(ProviderError) as caught:
        openai_compat.parse_chunk(chunk)
    assert caught.value.kind is ErrorKind.UNAVAILABLE


def test_a_string_error_raises_too() -> None:
    with pytest.raises(ProviderError):
        openai_compat.parse_chunk({"error": "Unauthorized"})


# ---- over real HTTP -------------------------------------------------------------------------


async def test_a_normal_stream_gives_the_exact_text_then_usage_then_done(fake: FakeProvider) -> None:
    fake.set_default(Script(tokens=["Hel", "lo", ", ", "world", "\n\n**é**"], usage=(21, 5)))
    events = await collect(openai_compat.stream(target_for(fake), REQUEST))
    assert text_of(events) == "Hello, world\n\n**é**"
    assert events[-2:] == [Usage(21, 5), Done(FinishReason.STOP)]
    sent = fake.requests[0]
    assert sent.path == "/v1/chat/completions" and sent.headers["authorization"] == "Bearer sk-test"
    assert sent.body["stream"] is True and sent.body["stream_options"] == {"include_usage": True}


async def test_reasoning_is_kept_apart_from_the_answer(fake: FakeProvider) -> None:
    fake.set_default(Script(reasoning=["Let me ", "think."], tokens=["Hi"]))
    events = await collect(openai_compat.stream(target_for(fake), REQUEST))
    assert [e.text for e in events if isinstance(e, ReasoningDelta)] == ["Let me ", "think."]
    assert text_of(events) == "Hi"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("length", FinishReason.LENGTH),
        ("content_filter", FinishReason.CONTENT_FILTER),
        ("tool_calls", FinishReason.TOOL_CALLS),
    ],
)
async def test_each_finish_reason_arrives_as_done(fake: FakeProvider, raw: str, reason: FinishReason) -> None:
    fake.set_default(Script(finish_reason=raw))
    events = await collect(openai_compat.stream(target_for(fake), REQUEST))
    assert isinstance(events[-1], Done) and events[-1].finish_reason is reason


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (401, ErrorKind.AUTH),
        (403, ErrorKind.AUTH),
        (404, ErrorKind.BAD_REQUEST),
        (408, ErrorKind.TIMEOUT),
        (422, ErrorKind.BAD_REQUEST),
        (429, ErrorKind.RATE_LIMIT),
        (500, ErrorKind.UNAVAILABLE),
        (502, ErrorKind.UNAVAILABLE),
        (503, ErrorKind.OVERLOADED),
        (504, ErrorKind.TIMEOUT),
        (529, ErrorKind.OVERLOADED),
    ],
)
async def test_error_statuses_map_to_kinds(fake: FakeProvider, status: int, kind: ErrorKind) -> None:
    fake.set_default(Script(status=status))
    _, err = await failure(openai_compat.stream(target_for(fake), REQUEST))
    assert err.kind is kind and err.status == status


async def test_a_400_that_says_the_context_is_too_long_is_a_context_length_error(fake: FakeProvider) -> None:
    body = {
        "error": {
            "message": "This model's maximum context length is 8192 tokens.",
            "type": "invalid_request_error",
            "code": "context_length_exceeded",
        }
    }
    fake.set_default(Script(status=400, error_body=body))
    _, err = await failure(openai_compat.stream(target_for(fake), REQUEST))
    assert err.kind is ErrorKind.CONTEXT_LENGTH
    assert "context_length_exceeded" in err.detail and "8192" not in err.detail


LLAMA_CPP_CONTEXT_FULL = {"error": {"code": 500, "message": "Context size has been exceeded.", "type": "server_error"}}


@pytest.mark.parametrize("where", ["status", "in-stream"])
async def test_llama_cpp_running_out_of_context_is_a_context_length_error_and_not_retried(
    fake: FakeProvider, where: str
) -> None:
    # HTTP 500 before the stream, or one error chunk with code 500 once it began (server-context.cpp).
    if where == "status":
        fake.set_default(Script(status=500, error_body=LLAMA_CPP_CONTEXT_FULL))
    else:
        fake.set_default(Script(tokens=["a", "b"], error_event_after=0, error_body=LLAMA_CPP_CONTEXT_FULL))
    _, err = await failure(registry.stream("openai", target_for(fake), REQUEST))
    assert err.kind is ErrorKind.CONTEXT_LENGTH and not err.retryable
    assert len(fake.requests) == 1


async def test_insufficient_quota_is_not_a_retryable_rate_limit(fake: FakeProvider) -> None:
    fake.set_default(
        Script(status=429, error_body={"error": {"type": "insufficient_quota", "code": "insufficient_quota"}})
    )
    _, err = await failure(registry.stream("openai", target_for(fake), REQUEST))
    assert not err.retryable and len(fake.requests) == 1


@pytest.mark.parametrize("where", ["status", "in-stream"])
async def test_the_upstream_error_text_never_reaches_the_error(fake: FakeProvider, where: str) -> None:
    body = {
        "error": {
            "message": f"Incorrect API key provided: {CANARY}",
            "type": CANARY,
            "code": "invalid_api_key",
            "param": CANARY,
        }
    }
    if where == "status":
        fake.set_default(Script(status=401, error_body=body))
    else:
        fake.set_default(Script(error_event_after=1, error_body=body))
    _, err = await failure(openai_compat.stream(target_for(fake), REQUEST))
    for text in (str(err), err.message, err.detail, repr(err.args)):
        assert CANARY not in text and "Incorrect" not in text


async def test_429_is_retried_after_the_retry_after_it_asked_for(fake: FakeProvider) -> None:
    fake.enqueue(Script(status=429, headers={"Retry-After": "1"}))
    fake.set_default(Script(tokens=["ok"]))
    started = time.monotonic()
    events = await collect(registry.stream("openai", target_for(fake), REQUEST))
    assert text_of(events) == "ok" and len(fake.requests) == 2
    assert time.monotonic() - started >= 0.95


async def test_retry_after_ms_is_preferred(fake: FakeProvider) -> None:
    fake.enqueue(Script(status=429, headers={"retry-after-ms": "200", "Retry-After": "30"}))
    fake.set_default(Script(tokens=["ok"]))
    started = time.monotonic()
    assert text_of(await collect(registry.stream("openai", target_for(fake), REQUEST))) == "ok"
    assert 0.19 <= time.monotonic() - started < 5


async def test_a_500_is_retried_and_then_succeeds(fake: FakeProvider) -> None:
    fake.enqueue(Script(status=500))
    fake.set_default(Script(tokens=["fine"]))
    events = await collect(registry.stream("openai", target_for(fake), REQUEST))
    assert text_of(events) == "fine" and len(fake.requests) == 2


async def test_an_auth_error_is_not_retried(fake: FakeProvider) -> None:
    fake.set_default(Script(status=401))
    _, err = await failure(registry.stream("openai", target_for(fake), REQUEST))
    assert err.kind is ErrorKind.AUTH and len(fake.requests) == 1


async def test_an_error_event_after_200_is_an_error_not_a_complete_answer(fake: FakeProvider) -> None:
    fake.set_default(Script(tokens=["a", "b", "c"], error_event_after=2))
    seen, err = await failure(openai_compat.stream(target_for(fake), REQUEST))
    assert text_of(seen) == "ab" and not any(isinstance(e, Done) for e in seen)
    assert err.kind is ErrorKind.UNAVAILABLE


async def test_retry_never_happens_after_the_first_token(fake: FakeProvider) -> None:
    fake.enqueue(Script(tokens=["a", "b", "c"], error_event_after=1))
    fake.set_default(Script(tokens=["never"]))
    seen, _ = await failure(registry.stream("openai", target_for(fake), REQUEST))
    assert text_of(seen) == "a" and len(fake.requests) == 1


async def test_a_connection_dropped_mid_stream_is_incomplete(fake: FakeProvider) -> None:
    fake.set_default(Script(tokens=["a", "b", "c"], drop_after=2))
    seen, err = await failure(registry.stream("openai", target_for(fake), REQUEST))
    assert text_of(seen) == "ab" and err.kind is ErrorKind.INCOMPLETE and len(fake.requests) == 1


async def test_a_stream_missing_its_terminator_is_incomplete(fake: FakeProvider) -> None:
    fake.set_default(Script(tokens=["a"], no_terminator=True))
    seen, err = await failure(openai_compat.stream(target_for(fake), REQUEST))
    assert text_of(seen) == "a" and err.kind is ErrorKind.INCOMPLETE


async def test_a_malformed_chunk_is_an_error(fake: FakeProvider) -> None:
    fake.set_default(Script(tokens=["a", "b"], malformed_after=1))
    seen, err = await failure(openai_compat.stream(target_for(fake), REQUEST))
    assert text_of(seen) == "a" and err.kind is ErrorKind.UNAVAILABLE


async def test_a_stall_times_out_even_while_keepalives_arrive(fake: FakeProvider) -> None:
    fake.set_default(Script(tokens=["a", "b"], stall_after=1, keepalive_interval=0.05))
    started = time.monotonic()
    seen, err = await failure(openai_compat.stream(target_for(fake, read_timeout=0.5), REQUEST))
    assert text_of(seen) == "a" and err.kind is ErrorKind.TIMEOUT
    assert 0.45 <= time.monotonic() - started < 1.5
    assert fake.requests[0].client_disconnected.wait(1)


async def test_no_first_token_in_time_is_a_timeout(fake: FakeProvider) -> None:
    fake.set_default(Script(first_token_delay=5, keepalive_interval=0.05))
    started = time.monotonic()
    _, err = await failure(openai_compat.stream(target_for(fake, first_token_timeout=0.3), REQUEST))
    assert err.kind is ErrorKind.TIMEOUT and time.monotonic() - started < 1.5


async def test_an_html_page_with_200_is_an_error_not_an_empty_answer(fake: FakeProvider) -> None:
    fake.set_default(Script(html_body=True))
    _, err = await failure(openai_compat.stream(target_for(fake), REQUEST))
    assert err.kind is ErrorKind.UNAVAILABLE and "base URL" in err.message


async def test_a_wrong_base_url_is_a_bad_request(fake: FakeProvider) -> None:
    target = Target(base_url=fake.url + "/v1/v1")  # the fake answers an unknown path with JSON 404
    _, err = await failure(openai_compat.stream(target, REQUEST))
    assert err.kind is ErrorKind.BAD_REQUEST


async def test_an_unreachable_server_is_unavailable() -> None:
    _, err = await failure(openai_compat.stream(Target("http://127.0.0.1:9/v1", connect_timeout=1), REQUEST))
    assert err.kind is ErrorKind.UNAVAILABLE


async def test_closing_the_stream_early_hangs_up_on_the_server(fake: FakeProvider) -> None:
    fake.set_default(Script(tokens=["tok"] * 100, tokens_per_second=20))
    async with aclosing(registry.stream("openai", target_for(fake), REQUEST)) as events:
        async for _ in events:
            break
    assert await asyncio.to_thread(fake.requests[0].client_disconnected.wait, 1)


async def test_connections_are_reused_across_requests(fake: FakeProvider) -> None:
    for _ in range(3):
        await collect(openai_compat.stream(target_for(fake), REQUEST))
    assert len({r.connection for r in fake.requests}) == 1


async def test_models_are_listed(fake: FakeProvider) -> None:
    fake.script_for_model("alpha", Script())
    models = await openai_compat.list_models(target_for(fake))
    assert [m.id for m in models] == ["alpha", "fake-model"]


async def test_registry_finds_the_family_by_name() -> None:
    assert registry.family("openai") is openai_compat
