"""The same promises, kept by every family, over real HTTP against the fake upstream."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from contextlib import aclosing
from typing import Any

import pytest

from providers import registry
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
from tests.fakeprovider import FakeProvider, Script, wire

REQUEST = ChatRequest(
    model="fake-model", messages=(ChatMessage("system", "Be brief."), ChatMessage("user", "echo these words"))
)
CANARY = "sk-canary-123"


@dataclasses.dataclass(frozen=True)
class Family:
    name: str
    module: Any
    suffix: str  # appended to the fake's URL to make the preset-style base URL
    path: str


# Every registered family, as the fake serves it: a family added to the registry without a
# fake wire fails collection here (see test_families_declared_once.py).
FAMILIES = [
    Family(name, registry.family(name), wire.FAMILIES[name].base_suffix, wire.FAMILIES[name].chat_path)
    for name in registry.FAMILIES
]


@pytest.fixture(params=FAMILIES, ids=[f.name for f in FAMILIES])
def family(request: pytest.FixtureRequest) -> Family:
    return request.param  # type: ignore[no-any-return]


def target(fake: FakeProvider, family: Family, **kwargs: Any) -> Target:
    return Target(base_url=fake.url + family.suffix, api_key="sk-test", **kwargs)


async def run(family: Family, tgt: Target, retry: bool = False) -> list[object]:
    events = registry.stream(family.name, tgt, REQUEST) if retry else family.module.stream(tgt, REQUEST)
    return [event async for event in events]


async def fail(family: Family, tgt: Target, retry: bool = False) -> tuple[list[object], ProviderError]:
    seen: list[object] = []
    events = registry.stream(family.name, tgt, REQUEST) if retry else family.module.stream(tgt, REQUEST)
    with pytest.raises(ProviderError) as caught:
        async for event in events:
            seen.append(event)
    return seen, caught.value


def text_of(events: list[object]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


async def test_a_normal_stream_gives_the_exact_text_usage_and_done(fake: FakeProvider, family: Family) -> None:
    fake.set_default(Script(tokens=["Hel", "lo", ", **wörld**", "\n\n- x"], usage=(17, 4)))
    events = await run(family, target(fake, family))
    assert text_of(events) == "Hello, **wörld**\n\n- x"
    assert events[-2:] == [Usage(17, 4), Done(FinishReason.STOP)]
    assert fake.requests[0].path == family.path


async def test_echo_answers_with_the_last_user_message(fake: FakeProvider, family: Family) -> None:
    fake.set_default(Script(echo=True))
    assert text_of(await run(family, target(fake, family))) == "echo these words"


async def test_reasoning_is_kept_apart_from_the_answer(fake: FakeProvider, family: Family) -> None:
    fake.set_default(Script(reasoning=["Think", "ing."], tokens=["Answer"]))
    events = await run(family, target(fake, family))
    assert "".join(e.text for e in events if isinstance(e, ReasoningDelta)) == "Thinking."
    assert text_of(events) == "Answer"


@pytest.mark.parametrize(
    ("scripted", "reason"),
    [("length", FinishReason.LENGTH), ("content_filter", FinishReason.CONTENT_FILTER)],
)
async def test_finish_reasons_arrive_as_done(
    fake: FakeProvider, family: Family, scripted: str, reason: FinishReason
) -> None:
    if family.name == "ollama" and reason is FinishReason.CONTENT_FILTER:
        pytest.skip("Ollama has no content filter")
    fake.set_default(Script(tokens=["partial"], finish_reason=scripted))
    events = await run(family, target(fake, family))
    done = events[-1]
    assert isinstance(done, Done) and done.finish_reason is reason
    if reason is FinishReason.CONTENT_FILTER:
        assert done.detail  # the user is told why the answer stopped


@pytest.mark.parametrize(
    ("status", "kind"), [(401, ErrorKind.AUTH), (503, ErrorKind.OVERLOADED), (500, ErrorKind.UNAVAILABLE)]
)
async def test_error_statuses_map_to_kinds(fake: FakeProvider, family: Family, status: int, kind: ErrorKind) -> None:
    fake.set_default(Script(status=status))
    _, err = await fail(family, target(fake, family))
    assert err.kind is kind


async def test_429_is_retried_after_retry_after(fake: FakeProvider, family: Family) -> None:
    fake.enqueue(Script(status=429, headers={"Retry-After": "1"}))
    started = time.monotonic()
    events = await run(family, target(fake, family), retry=True)
    assert text_of(events) == "Hello" and len(fake.requests) == 2
    assert time.monotonic() - started >= 0.95


async def test_a_500_is_retried_then_succeeds(fake: FakeProvider, family: Family) -> None:
    fake.enqueue(Script(status=500))
    assert text_of(await run(family, target(fake, family), retry=True)) == "Hello"
    assert len(fake.requests) == 2


async def test_an_error_event_after_200_is_an_error_and_never_retried(fake: FakeProvider, family: Family) -> None:
    fake.set_default(Script(tokens=["a", "b"], error_event_after=1))
    seen, err = await fail(family, target(fake, family), retry=True)
    assert text_of(seen) == "a" and not any(isinstance(e, Done) for e in seen)
    assert len(fake.requests) == 1
    if family.name == "anthropic":
        assert err.kind is ErrorKind.OVERLOADED


async def test_an_error_event_before_any_token_is_retried(fake: FakeProvider, family: Family) -> None:
    fake.enqueue(Script(error_event_after=0))
    assert text_of(await run(family, target(fake, family), retry=True)) == "Hello"
    assert len(fake.requests) == 2


async def test_a_dropped_connection_mid_stream_is_incomplete(fake: FakeProvider, family: Family) -> None:
    fake.set_default(Script(tokens=["a", "b", "c"], drop_after=2))
    seen, err = await fail(family, target(fake, family), retry=True)
    assert text_of(seen) == "ab" and err.kind is ErrorKind.INCOMPLETE and len(fake.requests) == 1


async def test_a_missing_terminator_is_incomplete(fake: FakeProvider, family: Family) -> None:
    fake.set_default(Script(tokens=["a"], no_terminator=True))
    seen, err = await fail(family, target(fake, family))
    assert text_of(seen) == "a" and err.kind is ErrorKind.INCOMPLETE


async def test_a_stall_times_out_within_the_read_timeout_despite_keepalives(fake: FakeProvider, family: Family) -> None:
    fake.set_default(Script(tokens=["a", "b"], stall_after=1, keepalive_interval=0.05))
    started = time.monotonic()
    seen, err = await fail(family, target(fake, family, read_timeout=0.4))
    assert text_of(seen) == "a" and err.kind is ErrorKind.TIMEOUT
    assert time.monotonic() - started < 1.4
    assert await asyncio.to_thread(fake.requests[0].client_disconnected.wait, 1)


async def test_no_first_token_in_time_is_a_timeout(fake: FakeProvider, family: Family) -> None:
    fake.set_default(Script(first_token_delay=10, keepalive_interval=0.05))
    started = time.monotonic()
    _, err = await fail(family, target(fake, family, first_token_timeout=0.3))
    assert err.kind is ErrorKind.TIMEOUT and time.monotonic() - started < 1.3


async def test_an_html_page_with_200_is_an_error(fake: FakeProvider, family: Family) -> None:
    fake.set_default(Script(html_body=True))
    _, err = await fail(family, target(fake, family))
    assert err.kind is ErrorKind.UNAVAILABLE


async def test_a_malformed_line_is_an_error(fake: FakeProvider, family: Family) -> None:
    fake.set_default(Script(tokens=["a", "b"], malformed_after=1))
    seen, err = await fail(family, target(fake, family))
    assert text_of(seen) == "a" and err.kind is ErrorKind.UNAVAILABLE


@pytest.mark.parametrize("where", ["status", "in-stream"])
async def test_upstream_error_text_never_reaches_the_error(fake: FakeProvider, family: Family, where: str) -> None:
    body = {"error": {"message": f"Incorrect API key provided: {CANARY}", "type": "invalid_request_error"}}
    if family.name == "ollama":
        body = {"error": f"bad key {CANARY}"}
    fake.set_default(
        Script(status=401, error_body=body) if where == "status" else Script(error_event_after=1, error_body=body)
    )
    _, err = await fail(family, target(fake, family))
    for text in (str(err), err.message, err.detail):
        assert CANARY not in text


async def test_closing_the_stream_early_hangs_up_within_a_second(fake: FakeProvider, family: Family) -> None:
    fake.set_default(Script(tokens=["tok"] * 200, tokens_per_second=20))
    async with aclosing(registry.stream(family.name, target(fake, family), REQUEST)) as events:
        async for _ in events:
            break
    assert await asyncio.to_thread(fake.requests[0].client_disconnected.wait, 1)


async def test_models_are_listed(fake: FakeProvider, family: Family) -> None:
    for name in ("alpha", "beta", "gamma"):
        fake.script_for_model(name, Script())
    models = await family.module.list_models(target(fake, family))
    assert [m.id for m in models] == ["alpha", "beta", "fake-model", "gamma"]


async def test_a_finished_stream_leaves_its_connection_reusable(fake: FakeProvider, family: Family) -> None:
    for _ in range(3):
        await run(family, target(fake, family))
    assert len({r.connection for r in fake.requests}) == 1


# What each family has reported by the time a stream fails after its first delta: Anthropic
# counts the input at message_start, Gemini puts the prompt count on every chunk; OpenAI-style
# servers and Ollama report usage only at the very end, so there is nothing to pass on.
USAGE_BEFORE_THE_END = {
    "anthropic": Usage(17, 1),
    "gemini": Usage(17, None),
    "openai": None,
    "ollama": None,
}


@pytest.mark.parametrize("fault", ["error_event_after", "drop_after"])
async def test_the_usage_reported_before_a_failure_travels_with_the_error(
    fake: FakeProvider, family: Family, fault: str
) -> None:
    fake.set_default(Script(tokens=["a", "b"], usage=(17, 2), **{fault: 1}))
    seen, err = await fail(family, target(fake, family), retry=True)
    assert text_of(seen) == "a"
    assert err.usage == USAGE_BEFORE_THE_END[family.name]


async def test_an_error_before_the_stream_carries_no_usage(fake: FakeProvider, family: Family) -> None:
    fake.set_default(Script(status=400))
    _, err = await fail(family, target(fake, family))
    assert err.usage is None
