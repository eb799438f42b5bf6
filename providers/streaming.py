"""The one loop every family's ``stream()`` runs: read items, hold back usage and Done.

A family supplies two pure functions. ``read(item)`` turns one decoded wire item into
events, or returns END for the family's terminator (``[DONE]``, ``message_stop``).
``finish(done, shown, eof)`` decides, once the items stop, whether the stream ended
properly: it returns the Done to hand out or raises ProviderError (a stream without its
terminator is INCOMPLETE). Text and reasoning deltas go out as they come; usage (the
latest value of each field wins, never a sum) and Done always come last.

Usage seen before a failure is not lost: it rides on the ProviderError (``error.usage``),
so an answer cut off mid-stream is still metered with the input tokens the provider
reported at its start.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Final, TypeVar

from providers import http
from providers.base import Done, Event, ProviderError, ReasoningDelta, Target, TextDelta, Usage


class _End:
    __slots__ = ()

    def __repr__(self) -> str:
        return "END"


END: Final = _End()
T = TypeVar("T")


def merge_usage(old: Usage | None, new: Usage) -> Usage:
    if old is None:
        return new
    return Usage(
        new.input_tokens if new.input_tokens is not None else old.input_tokens,
        new.output_tokens if new.output_tokens is not None else old.output_tokens,
        new.reasoning_tokens if new.reasoning_tokens is not None else old.reasoning_tokens,
    )


async def run(
    target: Target,
    url: str,
    body: dict[str, Any],
    headers: Mapping[str, str],
    decoder: http.Decoder[T],
    read: Callable[[T], list[Event] | _End],
    finish: Callable[[Done | None, bool, bool], Done],
    *,
    is_content: Callable[[T], bool] | None = None,
    is_final: Callable[[T], bool] | None = None,
    stop_at_done: bool = False,
) -> AsyncIterator[Event]:
    """POST ``body`` to ``url`` and yield the family's events (see the module docstring)."""
    usage: Usage | None = None
    done: Done | None = None
    shown = False
    eof = True
    try:
        async with http.stream_items(
            target, url, body, headers, decoder, is_content or http.is_content, is_final
        ) as items:
            async for item in items:
                events = read(item)
                if events is END:
                    eof = False
                    break
                for event in events:  # type: ignore[union-attr]
                    if type(event) is TextDelta or type(event) is ReasoningDelta:
                        shown = True
                        yield event
                    elif type(event) is Usage:
                        usage = merge_usage(usage, event)  # type: ignore[arg-type]
                    elif type(event) is Done:
                        done = event  # type: ignore[assignment]
                if stop_at_done and done is not None:
                    eof = False
                    break
        done = finish(done, shown, eof)
    except ProviderError as err:
        if usage is not None and err.usage is None:
            err.usage = usage
        raise
    if usage is not None:
        yield usage
    yield done
