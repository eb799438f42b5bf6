"""Error classification, Retry-After parsing and the retry policy, without a network."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from providers import http
from providers.base import Done, ErrorKind, Event, ProviderError, TextDelta


class FakeClock:
    """Sleeping advances time instantly, so back-off is tested without waiting."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def attempts(*outcomes: ProviderError | list[Event]) -> tuple[list[int], object]:
    """A stream_fn whose n-th call fails with, or yields, the n-th outcome."""
    calls: list[int] = []

    def stream_fn() -> AsyncIterator[Event]:
        outcome = outcomes[len(calls)]
        calls.append(1)

        async def run() -> AsyncIterator[Event]:
            if isinstance(outcome, ProviderError):
                raise outcome
            for event in outcome:
                if isinstance(event, ProviderError):
                    raise event
                yield event

        return run()

    return calls, stream_fn


async def drain(clock: FakeClock, stream_fn: object, **kwargs: object) -> list[Event]:
    return [e async for e in http.retrying(stream_fn, sleep=clock.sleep, clock=clock, rand=lambda: 0.5, **kwargs)]  # type: ignore[arg-type]


async def test_a_retryable_error_before_any_event_is_retried_with_growing_backoff() -> None:
    clock = FakeClock()
    err = ProviderError(ErrorKind.UNAVAILABLE)
    calls, fn = attempts(err, err, [TextDelta("ok"), Done()])
    assert await drain(clock, fn) == [TextDelta("ok"), Done()]
    assert len(calls) == 3 and clock.sleeps[1] > clock.sleeps[0] > 0


async def test_retry_after_is_honoured() -> None:
    clock = FakeClock()
    calls, fn = attempts(ProviderError(ErrorKind.RATE_LIMIT, retry_after=7.0), [Done()])
    await drain(clock, fn)
    assert clock.sleeps == [7.0] and len(calls) == 2


async def test_a_retry_after_beyond_the_budget_fails_at_once_instead_of_waiting() -> None:
    clock = FakeClock()
    calls, fn = attempts(ProviderError(ErrorKind.RATE_LIMIT, retry_after=60.0), [Done()])
    with pytest.raises(ProviderError):
        await drain(clock, fn)
    assert clock.sleeps == [] and len(calls) == 1


async def test_it_gives_up_after_the_last_attempt() -> None:
    clock = FakeClock()
    err = ProviderError(ErrorKind.OVERLOADED)
    calls, fn = attempts(err, err, err, [Done()])
    with pytest.raises(ProviderError):
        await drain(clock, fn)
    assert len(calls) == 3


async def test_a_permanent_error_is_not_retried() -> None:
    clock = FakeClock()
    calls, fn = attempts(ProviderError(ErrorKind.AUTH), [Done()])
    with pytest.raises(ProviderError):
        await drain(clock, fn)
    assert len(calls) == 1


async def test_nothing_is_retried_once_an_event_was_yielded() -> None:
    clock = FakeClock()
    calls, fn = attempts([TextDelta("a"), ProviderError(ErrorKind.UNAVAILABLE)], [Done()])  # type: ignore[list-item]
    seen: list[Event] = []
    with pytest.raises(ProviderError):
        async for event in http.retrying(fn, sleep=clock.sleep, clock=clock):  # type: ignore[arg-type]
            seen.append(event)
    assert seen == [TextDelta("a")] and len(calls) == 1


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [({"retry-after-ms": "1500", "retry-after": "9"}, 1.5), ({"retry-after": "2.5"}, 2.5), ({}, None)],
)
def test_retry_after_headers_are_parsed(headers: dict[str, str], seconds: float | None) -> None:
    assert http.parse_retry_after(headers) == seconds


def test_retry_after_as_an_http_date_is_parsed() -> None:
    assert http.parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0


def test_gemini_retry_info_in_the_body_is_used() -> None:
    payload = {
        "error": {
            "code": 429,
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}],
        }
    }
    assert http.parse_retry_after({}, payload) == 37.0


def test_an_exhausted_quota_is_an_admin_problem_not_a_retry() -> None:
    err = http.classify(429, {"error": {"type": "insufficient_quota"}}, '{"error": {"type": "insufficient_quota"}}')
    assert err.kind is ErrorKind.AUTH and not err.retryable and "billing" in err.message


def test_tgi_queue_full_429_is_overloaded() -> None:
    err = http.classify(429, {"error": "Model is overloaded", "error_type": "overloaded"}, "")
    assert err.kind is ErrorKind.OVERLOADED


def test_detail_keeps_identifier_like_types_and_drops_anything_else() -> None:
    err = http.classify(400, {"error": {"type": "invalid_request_error", "code": "sk-abc-123 leaked"}}, "")
    assert err.detail == "HTTP 400 type=invalid_request_error"


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        ({"error": {"code": 502, "message": "x"}}, ErrorKind.UNAVAILABLE),
        ({"type": "error", "error": {"type": "rate_limit_error"}}, ErrorKind.RATE_LIMIT),
        ({"error": {"code": 503, "status": "UNAVAILABLE"}}, ErrorKind.OVERLOADED),
        ({"error": {"message": "too long", "http_status_code": 422}}, ErrorKind.BAD_REQUEST),
        ({"error": "something broke"}, ErrorKind.UNAVAILABLE),
    ],
)
def test_in_stream_error_payloads_are_classified(payload: object, kind: ErrorKind) -> None:
    assert http.error_from_payload(payload).kind is kind


# llama.cpp's server (tools/server/server-context.cpp) sends this when its KV cache fills while
# decoding: send_error with the default ERROR_TYPE_SERVER, hence code 500 and type server_error.
LLAMA_CPP_CONTEXT_FULL = {"error": {"code": 500, "message": "Context size has been exceeded.", "type": "server_error"}}


def test_llama_cpp_context_size_exceeded_as_http_500_is_context_length_and_final() -> None:
    err = http.classify(500, LLAMA_CPP_CONTEXT_FULL, json.dumps(LLAMA_CPP_CONTEXT_FULL))
    assert err.kind is ErrorKind.CONTEXT_LENGTH and not err.retryable
    assert err.detail == "HTTP 500 type=server_error code=500"


def test_llama_cpp_context_size_exceeded_in_stream_is_context_length_and_final() -> None:
    err = http.error_from_payload(LLAMA_CPP_CONTEXT_FULL)
    assert err.kind is ErrorKind.CONTEXT_LENGTH and not err.retryable


def test_an_ordinary_500_stays_retryable() -> None:
    body = {"error": {"code": 500, "message": "Compute error.", "type": "server_error"}}
    assert http.classify(500, body, json.dumps(body)).retryable
