"""One answer being generated: one asyncio task reading one provider stream.

It coalesces deltas into frames (the first at once, later ones per PARLEY_COALESCE_MS
window), keeps the text so any socket can catch up from a sequence number, checkpoints
partial text on a bounded interval, and always ends by writing a truthful final state —
complete, incomplete with a reason, or error — before it announces `end`. Closing a
socket does not stop it; only Stop, the time limit or a shutdown does.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from django.conf import settings

from chat.generation.job import Cached, Job, Outcome, Sink, estimate_tokens
from chat.models import Reason, Status
from chat.protocol import AnswerFrames, Frame
from providers import registry as provider_registry
from providers.base import Done, ErrorKind, Event, FinishReason, ProviderError, ReasoningDelta, TextDelta, Usage
from providers.streaming import merge_usage

log = logging.getLogger(__name__)

# Tasks that outlive their generation (late saves); held so they are not garbage-collected.
_background: set[asyncio.Task[None]] = set()
SAVE_LATER_ATTEMPTS = 40  # with the waits in _save_later: about five minutes

_FINISH_TO_REASON = {
    FinishReason.STOP: Reason.STOP,
    FinishReason.LENGTH: Reason.LENGTH,
    FinishReason.CONTENT_FILTER: Reason.CONTENT_FILTER,
    FinishReason.TOOL_CALLS: Reason.STOP,
    FinishReason.OTHER: Reason.STOP,
}


async def replay(answer: Cached) -> AsyncIterator[Event]:
    """A cached answer as the provider events it was made of, all at once."""
    if answer.reasoning:
        yield ReasoningDelta(answer.reasoning)
    yield TextDelta(answer.text)
    yield Usage(answer.input_tokens, answer.output_tokens)
    yield Done(FinishReason.LENGTH if answer.finish_reason == Reason.LENGTH else FinishReason.STOP)


async def outlast(task: asyncio.Future[Any]) -> None:
    """Wait for `task` to finish however it ends, even if we are cancelled meanwhile.

    (asyncio.shield would re-raise the task's own exception here, ending the caller early.)
    """
    while not task.done():
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait([task])


class Generation:
    def __init__(self, job: Job, sink: Sink) -> None:
        self.job = job
        self.sink = sink
        self.user_id = job.user_id
        self.conversation_id = job.conversation_id
        self.message_id = job.message_id
        self.frames = AnswerFrames(job.conversation_id, job.message_id)
        # Nothing is announced until the sink has saved what the answer starts with (for the
        # socket: `ack` means saved); tokens that arrive earlier wait in the pending buffers.
        self.opened = False
        self.open_task: asyncio.Task[dict[str, Any] | None] | None = None
        self.text: list[str] = [job.prefix] if job.prefix else []
        self.reasoning: list[str] = [job.prefix_reasoning] if job.prefix_reasoning else []
        self.seq = job.seq_base  # the last delta frame's number
        self.published_chars = len(job.prefix)
        self.published_reasoning_chars = len(job.prefix_reasoning)
        self._pending_text: list[str] = []
        self._pending_reasoning: list[str] = []
        self._timer: asyncio.TimerHandle | None = None
        self._window = settings.PARLEY_COALESCE_MS / 1000
        self._checkpoint_every = settings.PARLEY_CHECKPOINT_SECONDS
        self._checkpoint_chars = settings.PARLEY_CHECKPOINT_CHARS
        self._last_checkpoint = time.monotonic()
        self._chars_since_checkpoint = 0
        self.first_token_at: float | None = None
        self.chunks = 0  # streamed pieces, the usage estimate when a provider reports none
        self.usage = Usage()
        self.cancel_reason = Reason.STOPPED
        self.end_frame: Frame | None = None
        self.task: asyncio.Task[None] | None = None
        self.time_limit: asyncio.TimerHandle | None = None
        self.on_end: Callable[[], None] | None = None

    # --- what has been published ------------------------------------------------------
    def published_text(self) -> str:
        return "".join(self.text)[: self.published_chars]

    def published_reasoning(self) -> str:
        return "".join(self.reasoning)[: self.published_reasoning_chars]

    def catch_up(self) -> Frame:
        """For a resume: everything published so far as one `replace` delta.

        Always the whole text, never just the missed part: the resuming socket is already
        subscribed, so live frames may reach it before this reply, and a client can only
        trust a reply that does not depend on what else it has seen.
        """
        return self.frames.delta(self.seq, self.published_text(), self.published_reasoning(), replace=True)

    # --- tokens in, frames out --------------------------------------------------------
    def _add(self, text: str, reasoning: str) -> None:
        self.chunks += 1
        if self.first_token_at is None:
            self.first_token_at = time.monotonic()
        if text:
            self.text.append(text)
            self._pending_text.append(text)
        if reasoning:
            self.reasoning.append(reasoning)
            self._pending_reasoning.append(reasoning)
        self._chars_since_checkpoint += len(text) + len(reasoning)
        if not self.opened:
            return  # announced, with everything so far, once the sink has saved the start
        if self.seq == self.job.seq_base:
            self._flush()  # the first token goes out at once
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._window, self._flush)

    def _flush(self) -> None:
        self._timer = None
        if not (self._pending_text or self._pending_reasoning):
            return
        text = "".join(self._pending_text) if len(self._pending_text) != 1 else self._pending_text[0]
        reasoning = "".join(self._pending_reasoning)
        self._pending_text.clear()
        self._pending_reasoning.clear()
        self.seq += 1
        self.published_chars += len(text)
        self.published_reasoning_chars += len(reasoning)
        self.sink.publish(self.frames.delta(self.seq, text, reasoning))
        if (
            self._chars_since_checkpoint >= self._checkpoint_chars
            or time.monotonic() - self._last_checkpoint >= self._checkpoint_every
        ):
            self._last_checkpoint = time.monotonic()
            self._chars_since_checkpoint = 0
            self.sink.checkpoint(self.published_text(), self.published_reasoning(), self.seq)

    # --- the task ---------------------------------------------------------------------
    async def _open(self) -> dict[str, Any] | None:
        """Let the sink save the start while the provider already works on the answer."""
        try:
            message = await self.sink.open()
        except BaseException:
            self._abandon()
            raise
        if message is None:
            self._abandon()
            return None
        self.opened = True
        message = {
            **message, "content": self.published_text(), "reasoning": self.published_reasoning(), "seq": self.seq,
        }
        self.sink.publish(self.frames.start(message))
        self._flush()
        return message

    def _abandon(self) -> None:
        """A resend or a failed save: nobody will see this answer, so stop asking for it."""
        if self.task is not None:
            self.task.cancel()

    async def run(self) -> None:
        job = self.job
        done: Done | None = None
        error: ProviderError | None = None
        cancelled = False
        self.open_task = asyncio.create_task(self._open())
        try:
            # Let the save reach the database thread before httpx's synchronous request set-up
            # holds the loop: the two then overlap instead of queueing.
            await asyncio.sleep(0)
            await self.sink.before_upstream(self.open_task)
            if self.open_task.done() and (self.open_task.exception() is not None or self.open_task.result() is None):
                raise asyncio.CancelledError  # dropped before it started: never ask upstream at all
            if job.cached is not None:
                events = replay(job.cached)  # the response cache: nothing goes upstream
            else:
                events = provider_registry.stream(job.family, job.target, job.request)
            async with contextlib.aclosing(events):  # type: ignore[type-var]
                async for event in events:
                    kind = type(event)
                    if kind is TextDelta:
                        self._add(event.text, "")  # type: ignore[union-attr]
                    elif kind is ReasoningDelta:
                        self._add("", event.text)  # type: ignore[union-attr]
                    elif kind is Usage:
                        self._take_usage(event)  # type: ignore[arg-type]
                    elif kind is Done:
                        done = event  # type: ignore[assignment]
        except asyncio.CancelledError:
            cancelled = True
        except ProviderError as exc:
            error = exc
            if exc.usage is not None:
                self._take_usage(exc.usage)
        except Exception:
            error = ProviderError(ErrorKind.UNAVAILABLE, "Something went wrong while generating this answer.")
            log.exception("generation of message %s failed, ref=%s", self.message_id, error.ref)
        if await self._wait_for_open():
            await self._finish(done, error, cancelled)

    def _take_usage(self, usage: Usage) -> None:
        self.usage = merge_usage(self.usage, usage)

    async def _wait_for_open(self) -> bool:
        """True once the sink has saved the start; a dropped answer ends here."""
        assert self.open_task is not None
        await outlast(self.open_task)
        try:
            return self.open_task.result() is not None
        except Exception:
            log.exception("the sink of message %s failed to open", self.message_id)
            return False

    def _outcome(self, done: Done | None, error: ProviderError | None, cancelled: bool) -> Outcome:
        content, reasoning = "".join(self.text), "".join(self.reasoning)
        ttft = None
        if self.first_token_at is not None:
            ttft = round((self.first_token_at - self.job.received_at) * 1000)
        outcome = Outcome(
            status=Status.COMPLETE, reason=Reason.STOP, content=content, reasoning=reasoning, seq=self.seq,
            input_tokens=self.usage.input_tokens, output_tokens=self.usage.output_tokens,
            reasoning_tokens=self.usage.reasoning_tokens, ttft_ms=ttft,
            duration_ms=round((time.monotonic() - self.job.received_at) * 1000),
            cached=self.job.cached is not None,
        )
        # A provider that reports no usage (llama-cpp-python's server) is estimated, and says
        # so: a streamed chunk is about a token, a prompt about four characters a token.
        if outcome.output_tokens is None and self.chunks:
            outcome.output_tokens, outcome.usage_estimated = self.chunks, True
        if outcome.input_tokens is None and (self.chunks or self.usage.output_tokens is not None):
            prompt = "".join(m.content for m in self.job.request.messages)
            outcome.input_tokens, outcome.usage_estimated = estimate_tokens(prompt), True
        if cancelled:
            outcome.status, outcome.reason = Status.INCOMPLETE, self.cancel_reason
        elif error is None and done is None:
            error = ProviderError(ErrorKind.INCOMPLETE)
        elif error is None and done is not None:
            outcome.reason = _FINISH_TO_REASON[done.finish_reason]
            if done.finish_reason == FinishReason.CONTENT_FILTER:
                outcome.error_kind = "content_filter"
                outcome.error_message = done.detail or "The provider's content filter ended this answer."
            elif not content and not reasoning:
                # A model that says nothing is a failure the user should see, not an empty bubble.
                error = ProviderError(ErrorKind.UNAVAILABLE, "The model returned an empty answer.")
        if error is not None:
            log.warning(
                "provider error ref=%s provider=%s kind=%s status=%s detail=%s",
                error.ref, self.job.target.name, error.kind.value, error.status, error.detail,
            )
            outcome.status = Status.INCOMPLETE if content else Status.ERROR
            outcome.reason = Reason.ERROR
            outcome.error_kind, outcome.error_message, outcome.error_ref = error.kind.value, error.message, error.ref
        return outcome

    def _end_frame(self, outcome: Outcome) -> Frame:
        return self.frames.end(
            self.seq, outcome.status, outcome.reason, outcome.usage_json(), outcome.ttft_ms, outcome.error_json(),
            cached=outcome.cached,
        )

    async def _finish(self, done: Done | None, error: ProviderError | None, cancelled: bool) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._flush()
        outcome = self._outcome(done, error, cancelled)
        save = asyncio.ensure_future(self.sink.finish(outcome))
        await outlast(save)  # a Stop or shutdown arriving now must not lose the final write
        try:
            save.result()
        except Exception:
            ref = secrets.token_hex(4)
            log.exception("could not save message %s, ref=%s; retrying in the background", self.message_id, ref)
            # Keep trying to save what was generated; `end` says truthfully that it is not saved yet.
            later = asyncio.create_task(self._save_later(dataclasses.replace(outcome)))
            _background.add(later)
            later.add_done_callback(_background.discard)
            shown = dataclasses.replace(
                outcome, status=Status.ERROR, reason=Reason.ERROR, error_kind="unavailable", error_ref=ref,
                error_message="Parley could not save this answer yet; it keeps trying.",
            )
            self.end_frame = self._end_frame(shown)
            self.sink.publish(self.end_frame)
            return
        self.end_frame = self._end_frame(outcome)
        self.sink.publish(self.end_frame)
        self.sink.finished(outcome)

    async def _save_later(self, outcome: Outcome) -> None:
        """Retry a failed final write until the database is back, then announce the saved state."""
        for wait in [1.0, 2.0, 4.0] + [8.0] * SAVE_LATER_ATTEMPTS:
            await asyncio.sleep(wait)
            try:
                await self.sink.finish(outcome)
            except Exception as exc:  # noqa: BLE001 — whatever failed, keep retrying the save
                log.warning("message %s still not saved: %s", self.message_id, exc)
                continue
            self.end_frame = self._end_frame(outcome)
            self.sink.publish(self.end_frame)
            self.sink.finished(outcome)
            return
        log.error("gave up saving message %s; start-up recovery will mark it", self.message_id)
