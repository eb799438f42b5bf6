"""Per-family request building and chunk parsing, as pure functions, plus family-only behaviour."""

from __future__ import annotations

import pytest

from providers import anthropic, gemini, ollama, openai_compat
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
    model="m",
    messages=(
        ChatMessage("system", "Be terse."),
        ChatMessage("user", "Hi"),
        ChatMessage("assistant", "Hello"),
        ChatMessage("user", "Again"),
    ),
    temperature=0.3,
    max_tokens=64,
    top_p=0.9,
    stop=("END",),
)
BARE = ChatRequest(model="m", messages=(ChatMessage("user", "Hi"),))


# ---- Anthropic --------------------------------------------------------------------------------


def test_anthropic_puts_the_system_prompt_on_top_and_maps_settings() -> None:
    body = anthropic.build_body(Target("http://x"), REQUEST)
    assert body["system"] == "Be terse."
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert (body["max_tokens"], body["temperature"], body["top_p"], body["stop_sequences"]) == (
        64,
        0.3,
        0.9,
        ["END"],
    )


def test_anthropic_always_sends_max_tokens_because_the_api_requires_it() -> None:
    assert anthropic.build_body(Target("http://x"), BARE)["max_tokens"] == anthropic.DEFAULT_MAX_TOKENS
    assert "system" not in anthropic.build_body(Target("http://x"), BARE)


def test_anthropic_authenticates_with_x_api_key_and_a_version() -> None:
    headers = anthropic.headers_for(Target("http://x", api_key="k"))
    assert headers["x-api-key"] == "k" and headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in headers


def test_anthropic_thinking_and_text_deltas_are_told_apart() -> None:
    thinking = {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "thinking_delta", "thinking": "hmm"},
    }
    text = {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Hi"}}
    signature = {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "signature_delta", "signature": "x"},
    }
    assert anthropic.parse_event("content_block_delta", thinking) == [ReasoningDelta("hmm")]
    assert anthropic.parse_event("content_block_delta", text) == [TextDelta("Hi")]
    assert anthropic.parse_event("content_block_delta", signature) == []


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("end_turn", FinishReason.STOP),
        ("max_tokens", FinishReason.LENGTH),
        ("refusal", FinishReason.CONTENT_FILTER),
        ("tool_use", FinishReason.TOOL_CALLS),
        ("stop_sequence", FinishReason.STOP),
    ],
)
def test_anthropic_stop_reasons_map_to_ours(raw: str, reason: FinishReason) -> None:
    events = anthropic.parse_event(
        "message_delta",
        {"type": "message_delta", "delta": {"stop_reason": raw}, "usage": {"output_tokens": 9}},
    )
    assert events[0] == Usage(None, 9)
    assert isinstance(events[1], Done) and events[1].finish_reason is reason


def test_anthropic_in_stream_overload_is_an_overloaded_error() -> None:
    with pytest.raises(ProviderError) as caught:
        anthropic.parse_event(
            "error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
        )
    assert caught.value.kind is ErrorKind.OVERLOADED and caught.value.retryable


async def test_anthropic_usage_takes_input_from_the_start_and_output_from_the_last_delta(
    fake: FakeProvider,
) -> None:
    fake.set_default(Script(tokens=["a", "b", "c"], usage=(33, 3)))
    events = [e async for e in anthropic.stream(Target(fake.url), BARE)]
    assert [e for e in events if isinstance(e, Usage)] == [Usage(33, 3)]


# ---- Gemini -----------------------------------------------------------------------------------


def test_gemini_uses_user_and_model_roles_a_system_instruction_and_generation_config() -> None:
    body = gemini.build_body(Target("http://x"), REQUEST)
    assert body["systemInstruction"] == {"parts": [{"text": "Be terse."}]}
    assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]
    assert body["generationConfig"] == {
        "temperature": 0.3,
        "maxOutputTokens": 64,
        "topP": 0.9,
        "stopSequences": ["END"],
    }


def test_gemini_separates_thought_parts_from_text_parts() -> None:
    chunk = {"candidates": [{"content": {"parts": [{"text": "plan", "thought": True}, {"text": "Hi"}, {"text": "!"}]}}]}
    assert gemini.parse_chunk(chunk) == [ReasoningDelta("plan"), TextDelta("Hi"), TextDelta("!")]


def test_gemini_counts_thoughts_as_output_tokens_and_reports_them_apart() -> None:
    chunk = {"usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 7, "thoughtsTokenCount": 20}}
    assert gemini.parse_chunk(chunk) == [Usage(5, 27, 20)]


def test_openai_reasoning_tokens_are_read_from_the_completion_details() -> None:
    chunk = {
        "choices": [],
        "usage": {"prompt_tokens": 9, "completion_tokens": 40, "completion_tokens_details": {"reasoning_tokens": 32}},
    }
    assert openai_compat.parse_chunk(chunk) == [Usage(9, 40, 32)]


@pytest.mark.parametrize("reason", ["SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII"])
def test_gemini_blocking_finish_reasons_end_as_a_content_filter_with_a_reason(reason: str) -> None:
    events = gemini.parse_chunk({"candidates": [{"finishReason": reason}]})
    assert len(events) == 1 and isinstance(events[0], Done)
    assert events[0].finish_reason is FinishReason.CONTENT_FILTER and events[0].detail


def test_gemini_max_tokens_is_length() -> None:
    assert gemini.parse_chunk({"candidates": [{"finishReason": "MAX_TOKENS"}]}) == [Done(FinishReason.LENGTH)]


def test_a_blocked_gemini_prompt_is_a_content_filter() -> None:
    events = gemini.parse_chunk({"promptFeedback": {"blockReason": "SAFETY"}})
    assert isinstance(events[0], Done) and events[0].finish_reason is FinishReason.CONTENT_FILTER
    assert "prompt" in events[0].detail


async def test_a_gemini_answer_blocked_before_any_text_is_an_error_not_an_empty_answer(
    fake: FakeProvider,
) -> None:
    fake.set_default(Script(tokens=[], finish_reason="SAFETY"))
    with pytest.raises(ProviderError) as caught:
        [e async for e in gemini.stream(Target(fake.url), BARE)]
    assert caught.value.kind is ErrorKind.CONTENT_FILTER and "safety" in caught.value.message


async def test_a_gemini_recitation_after_some_text_ends_with_the_reason(fake: FakeProvider) -> None:
    fake.set_default(Script(tokens=["Once upon"], finish_reason="RECITATION"))
    events = [e async for e in gemini.stream(Target(fake.url), BARE)]
    assert events[0] == TextDelta("Once upon")
    assert isinstance(events[-1], Done) and events[-1].finish_reason is FinishReason.CONTENT_FILTER
    assert "recitation" in events[-1].detail


async def test_gemini_sends_the_key_in_a_header_and_asks_for_sse(fake: FakeProvider) -> None:
    [e async for e in gemini.stream(Target(fake.url, api_key="g-key"), BARE)]
    sent = fake.requests[0]
    assert sent.headers["x-goog-api-key"] == "g-key" and sent.query == {"alt": ["sse"]}


async def test_a_gemini_bad_key_400_is_an_auth_error(fake: FakeProvider) -> None:
    body = {
        "error": {
            "code": 400,
            "message": "API key not valid. Please pass a valid API key.",
            "status": "INVALID_ARGUMENT",
            "details": [{"reason": "API_KEY_INVALID"}],
        }
    }
    fake.set_default(Script(status=400, error_body=body))
    with pytest.raises(ProviderError) as caught:
        [e async for e in gemini.stream(Target(fake.url), BARE)]
    assert caught.value.kind is ErrorKind.AUTH


# ---- Ollama -----------------------------------------------------------------------------------


def test_ollama_puts_settings_in_options() -> None:
    body = ollama.build_body(Target("http://x"), REQUEST)
    assert body["options"] == {"temperature": 0.3, "num_predict": 64, "top_p": 0.9, "stop": ["END"]}
    assert body["messages"][0] == {"role": "system", "content": "Be terse."} and body["stream"] is True


def test_ollama_reads_thinking_content_and_the_final_counts() -> None:
    assert ollama.parse_line({"message": {"content": "", "thinking": "hm"}, "done": False}) == [ReasoningDelta("hm")]
    final = {
        "message": {"content": ""},
        "done": True,
        "done_reason": "length",
        "prompt_eval_count": 4,
        "eval_count": 9,
    }
    assert ollama.parse_line(final) == [Usage(4, 9), Done(FinishReason.LENGTH)]


def test_ollama_missing_counts_mean_zero() -> None:
    assert ollama.parse_line({"done": True, "done_reason": "stop"})[0] == Usage(0, 0)


def test_an_ollama_error_line_raises() -> None:
    with pytest.raises(ProviderError):
        ollama.parse_line({"error": "model runner has unexpectedly stopped"})


async def test_an_ollama_model_that_is_not_pulled_gets_a_clear_message(fake: FakeProvider) -> None:
    fake.set_default(Script(status=404, error_body={"error": 'model "m" not found, try pulling it first'}))
    with pytest.raises(ProviderError) as caught:
        [e async for e in ollama.stream(Target(fake.url), BARE)]
    assert caught.value.kind is ErrorKind.BAD_REQUEST and "model" in caught.value.message
