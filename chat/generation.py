"""Answers being generated: owned by the server process, not by the socket that asked.

A Generation is one asyncio task reading one provider stream. It coalesces deltas into
frames (the first at once, later ones per PARLEY_COALESCE_MS window), keeps every frame
so any socket can catch up from a sequence number, checkpoints partial text on a bounded
interval, and always ends by writing a truthful final state — complete, incomplete with
a reason, or error — before it announces `end`. Closing a socket does not stop it; only
`stop` (from any of the user's sockets) or a server shutdown does.

Frames reach sockets through the Hub, which fans a frame (serialised once) out to every
socket of the user. Delivery never blocks a generation: each socket has its own outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import secrets
import time
import uuid
from collections.abc import Callable
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings

from chat import titles
from chat.models import Reason, Status, TitleSource
from chat.serializers import ack_frame, message_json, replay_frames
from chat.services import Outcome, Posted, Prepared, do_checkpoint, do_finish_message, do_save_send
from providers import registry as provider_registry
from providers.base import Done, ErrorKind, FinishReason, ProviderError, ReasoningDelta, TextDelta, Usage

log = logging.getLogger(__name__)

# A socket's inbox: a serialised frame, or an int close code.
Deliver = Callable[[str | int], None]


# Tasks that outlive their generation (late saves); held so they are not garbage-collected.
_background: set[asyncio.Task[None]] = set()
SAVE_LATER_ATTEMPTS = 40  # with the waits in _save_later: about five minutes


async def _outlast(task: asyncio.Future[Any]) -> None:
    """Wait for `task` to finish however it ends, even if we are cancelled meanwhile.

    (asyncio.shield would re-raise the task's own exception here, ending the caller early.)
    """
    while not task.done():
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait([task])


def _error_json(outcome: Outcome) -> dict[str, str] | None:
    if not outcome.error_kind:
        return None
    return {"kind": outcome.error_kind, "message": outcome.error_message, "ref": outcome.error_ref}


class Hub:
    """Per-user fan-out of serialised frames to that user's open sockets."""

    def __init__(self) -> None:
        self._sockets: dict[int, set[Deliver]] = {}

    def subscribe(self, user_id: int, deliver: Deliver) -> None:
        self._sockets.setdefault(user_id, set()).add(deliver)

    def unsubscribe(self, user_id: int, deliver: Deliver) -> None:
        sockets = self._sockets.get(user_id)
        if sockets is not None:
            sockets.discard(deliver)
            if not sockets:
                del self._sockets[user_id]

    def publish(self, user_id: int, frame: dict[str, Any]) -> None:
        sockets = self._sockets.get(user_id)
        if sockets:
            text = json.dumps(frame, separators=(",", ":"))
            for deliver in tuple(sockets):
                deliver(text)

    def close_all(self, code: int) -> None:
        """Ask every open socket to close (after the frames already queued for it)."""
        for sockets in list(self._sockets.values()):
            for deliver in tuple(sockets):
                deliver(code)

    def socket_count(self) -> int:
        return sum(len(s) for s in self._sockets.values())


_FINISH_TO_REASON = {
    FinishReason.STOP: Reason.STOP,
    FinishReason.LENGTH: Reason.LENGTH,
    FinishReason.CONTENT_FILTER: Reason.CONTENT_FILTER,
    FinishReason.TOOL_CALLS: Reason.STOP,
    FinishReason.OTHER: Reason.STOP,
}


class Generation:
    def __init__(self, prepared: Prepared, user_id: int, hub: Hub, received_at: float, reply: Deliver) -> None:
        self.prepared = prepared
        self.message_id: uuid.UUID = prepared.assistant.id
        self.conversation_id: uuid.UUID = prepared.conversation.id
        self.user_id = user_id
        self.hub = hub
        self.received_at = received_at
        # Frames for the socket that sent this, when the save finds it was a resend.
        self.reply = reply
        # Nothing is announced until the user's message is saved (an `ack` means saved);
        # tokens that arrive earlier wait in the pending buffers.
        self.saved: Posted | None = None
        self.save_task: asyncio.Task[Posted] | None = None
        # A continuation grows a saved answer: its text and frame numbers go on from there.
        self.prefix = prepared.prefix
        self.seq_base = prepared.assistant.seq if prepared.prefix else 0
        self.text: list[str] = [prepared.prefix] if prepared.prefix else []
        self.prefix_reasoning = prepared.assistant.reasoning if prepared.prefix else ""
        self.reasoning: list[str] = [self.prefix_reasoning] if self.prefix_reasoning else []
        self.frames: list[dict[str, Any]] = []
        self._pending_text: list[str] = []
        self._pending_reasoning: list[str] = []
        self._timer: asyncio.TimerHandle | None = None
        self._window = settings.PARLEY_COALESCE_MS / 1000
        self._checkpoint_every = settings.PARLEY_CHECKPOINT_SECONDS
        self._checkpoint_chars = settings.PARLEY_CHECKPOINT_CHARS
        self._last_checkpoint = time.monotonic()
        self._chars_since_checkpoint = 0
        self._checkpoint_task: asyncio.Task[None] | None = None
        self.first_token_at: float | None = None
        self.chunks = 0  # streamed pieces, the usage estimate when a provider reports none
        self.usage = Usage()
        self.cancel_reason = Reason.STOPPED
        self.end_frame: dict[str, Any] | None = None
        self.task: asyncio.Task[None] | None = None
        self.time_limit: asyncio.TimerHandle | None = None

    # --- frames -----------------------------------------------------------------------
    @property
    def seq(self) -> int:
        return self.seq_base + len(self.frames)

    def published_text(self) -> str:
        return self.prefix + "".join(f["text"] for f in self.frames)

    def published_reasoning(self) -> str:
        return self.prefix_reasoning + "".join(f.get("reasoning", "") for f in self.frames)

    def start_frame(self) -> dict[str, Any]:
        # Only what frames already carried: pending text follows in the next delta.
        message = message_json(self.prepared.assistant)
        message["content"] = self.published_text()
        message["reasoning"] = self.published_reasoning()
        message["seq"] = self.seq
        return {"type": "start", "conversation": str(self.conversation_id), "message": message}

    def catch_up(self, after_seq: int) -> dict[str, Any] | None:
        """For a resume: the whole text so far as one `replace` delta, or None if nothing was missed.

        Always the whole text, never just the missed part: the resuming socket is already
        subscribed, so live frames may reach it before this reply, and a client can only
        trust a reply that does not depend on what else it has seen.
        """
        if after_seq >= self.seq:
            return None
        frame: dict[str, Any] = {
            "type": "delta",
            "conversation": str(self.conversation_id),
            "message": str(self.message_id),
            "seq": self.seq,
            "text": self.published_text(),
            "replace": True,
        }
        reasoning = self.published_reasoning()
        if reasoning:
            frame["reasoning"] = reasoning
        return frame

    def _add(self, text: str = "", reasoning: str = "") -> None:
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
        if self.saved is None:
            return  # announced, with everything so far, once the save commits
        if not self.frames:
            self._flush()  # the first token goes out at once
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._window, self._flush)

    def _flush(self) -> None:
        self._timer = None
        if not (self._pending_text or self._pending_reasoning):
            return
        frame: dict[str, Any] = {
            "type": "delta",
            "conversation": str(self.conversation_id),
            "message": str(self.message_id),
            "seq": self.seq + 1,
            "text": "".join(self._pending_text),
        }
        if self._pending_reasoning:
            frame["reasoning"] = "".join(self._pending_reasoning)
        self._pending_text.clear()
        self._pending_reasoning.clear()
        self.frames.append(frame)
        self.hub.publish(self.user_id, frame)
        self._maybe_checkpoint()

    def _maybe_checkpoint(self) -> None:
        due = (
            time.monotonic() - self._last_checkpoint >= self._checkpoint_every
            or self._chars_since_checkpoint >= self._checkpoint_chars
        )
        if not due or (self._checkpoint_task is not None and not self._checkpoint_task.done()):
            return
        self._last_checkpoint = time.monotonic()
        self._chars_since_checkpoint = 0
        self._checkpoint_task = asyncio.create_task(self._checkpoint("".join(self.text), "".join(self.reasoning), self.seq))

    async def _checkpoint(self, content: str, reasoning: str, seq: int) -> None:
        try:
            await database_sync_to_async(do_checkpoint)(self.message_id, content, reasoning, seq)
        except Exception:
            # A missed checkpoint only widens what a crash could lose; the final write retries.
            log.exception("checkpoint of message %s failed", self.message_id)

    # --- the task ---------------------------------------------------------------------
    async def save(self) -> Posted:
        """Write the user's message while the provider is already working on the answer."""
        try:
            posted = await database_sync_to_async(do_save_send)(self.prepared)
        except Exception:
            self._abandon()
            raise
        if posted.duplicate:
            self._abandon()
            return posted
        self.saved = posted
        self.hub.publish(self.user_id, ack_frame(posted, self.prepared.client_id))
        self.hub.publish(self.user_id, self.start_frame())
        self._flush()
        return posted

    def _abandon(self) -> None:
        """A resend or a failed save: nobody will see this answer, so stop asking for it."""
        if self.task is not None:
            self.task.cancel()

    async def run(self) -> None:
        prepared = self.prepared
        done: Done | None = None
        error: ProviderError | None = None
        cancelled = False
        self.save_task = asyncio.create_task(self.save())
        try:
            # Let the save reach the database thread before httpx's synchronous request set-up
            # holds the loop: the two then overlap instead of queueing.
            await asyncio.sleep(0)
            events = provider_registry.stream(prepared.family, prepared.target, prepared.request)
            async with contextlib.aclosing(events):
                async for event in events:
                    if isinstance(event, TextDelta):
                        self._add(text=event.text)
                    elif isinstance(event, ReasoningDelta):
                        self._add(reasoning=event.text)
                    elif isinstance(event, Usage):
                        self.usage = Usage(
                            event.input_tokens if event.input_tokens is not None else self.usage.input_tokens,
                            event.output_tokens if event.output_tokens is not None else self.usage.output_tokens,
                        )
                    elif isinstance(event, Done):
                        done = event
        except asyncio.CancelledError:
            cancelled = True
        except ProviderError as exc:
            error = exc
        except Exception:
            error = ProviderError(ErrorKind.UNAVAILABLE, "Something went wrong while generating this answer.")
            log.exception("generation of message %s failed, ref=%s", self.message_id, error.ref)
        if await self._wait_for_save():
            await self._finish(done, error, cancelled)

    async def _wait_for_save(self) -> bool:
        """True once the messages are saved; a resend or failed save is answered here instead."""
        assert self.save_task is not None
        await _outlast(self.save_task)
        try:
            posted = self.save_task.result()
        except Exception:
            ref = secrets.token_hex(4)
            log.exception("could not save the message for conversation %s, ref=%s", self.conversation_id, ref)
            self.reply(json.dumps({
                "type": "error", "code": "unavailable", "client_id": str(self.prepared.client_id),
                "message": f"Parley could not save your message. Try again. (ref {ref})",
            }))
            return False
        if posted.duplicate:
            for frame in replay_frames(posted, self.prepared.client_id):
                self.reply(json.dumps(frame))
            return False
        return True

    def _outcome(self, done: Done | None, error: ProviderError | None, cancelled: bool) -> Outcome:
        content, reasoning = "".join(self.text), "".join(self.reasoning)
        ttft = None
        if self.first_token_at is not None:
            ttft = round((self.first_token_at - self.received_at) * 1000)
        outcome = Outcome(
            status=Status.COMPLETE,
            reason=Reason.STOP,
            content=content,
            reasoning=reasoning,
            seq=self.seq,
            input_tokens=self.usage.input_tokens,
            output_tokens=self.usage.output_tokens,
            ttft_ms=ttft,
        )
        if outcome.output_tokens is None and self.chunks:
            outcome.output_tokens, outcome.usage_estimated = self.chunks, True
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
                error = ProviderError(
                    ErrorKind.UNAVAILABLE, "The model returned an empty answer."
                )
        if error is not None:
            log.warning(
                "provider error ref=%s provider=%s kind=%s status=%s detail=%s",
                error.ref,
                self.prepared.target.name,
                error.kind.value,
                error.status,
                error.detail,
            )
            outcome.status = Status.INCOMPLETE if content else Status.ERROR
            outcome.reason = Reason.ERROR
            outcome.error_kind, outcome.error_message, outcome.error_ref = error.kind.value, error.message, error.ref
        return outcome

    async def _finish(self, done: Done | None, error: ProviderError | None, cancelled: bool) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._flush()
        outcome = self._outcome(done, error, cancelled)
        save = asyncio.ensure_future(
            database_sync_to_async(do_finish_message)(self.message_id, self.conversation_id, outcome)
        )
        await _outlast(save)  # a Stop or shutdown arriving now must not lose the final write
        try:
            save.result()
        except Exception:
            ref = secrets.token_hex(4)
            log.exception("could not save message %s, ref=%s; retrying in the background", self.message_id, ref)
            # Keep trying to save what was generated; `end` says truthfully that it is not saved yet.
            later = asyncio.create_task(self._save_later(dataclasses.replace(outcome)))
            _background.add(later)
            later.add_done_callback(_background.discard)
            outcome.status, outcome.reason = Status.ERROR, Reason.ERROR
            outcome.error_kind, outcome.error_ref = "unavailable", ref
            outcome.error_message = "Parley could not save this answer yet; it keeps trying."
        self.end_frame = {
            "type": "end",
            "conversation": str(self.conversation_id),
            "message": str(self.message_id),
            "seq": self.seq,
            "status": outcome.status,
            "reason": outcome.reason,
            "usage": {
                "input_tokens": outcome.input_tokens,
                "output_tokens": outcome.output_tokens,
                "estimated": outcome.usage_estimated,
            },
            "ttft_ms": outcome.ttft_ms,
            "error": _error_json(outcome),
        }
        self.hub.publish(self.user_id, self.end_frame)
        if outcome.status == Status.COMPLETE and self.prepared.conversation.title_source == TitleSource.FIRST_MESSAGE:
            titles.schedule(self.conversation_id, self.user_id)  # in the background; never delays an answer

    async def _save_later(self, outcome: Outcome) -> None:
        """Retry a failed final write until the database is back, then announce the saved state."""
        for wait in [1.0, 2.0, 4.0] + [8.0] * SAVE_LATER_ATTEMPTS:
            await asyncio.sleep(wait)
            try:
                await database_sync_to_async(do_finish_message)(self.message_id, self.conversation_id, outcome)
            except Exception as exc:
                log.warning("message %s still not saved: %s", self.message_id, exc)
                continue
            assert self.end_frame is not None
            self.end_frame = {**self.end_frame, "status": outcome.status, "reason": outcome.reason,
                              "error": _error_json(outcome)}
            self.hub.publish(self.user_id, self.end_frame)
            return
        log.error("gave up saving message %s; start-up recovery will mark it", self.message_id)


class Registry:
    """The process's running generations, by conversation and by message."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self._by_conversation: dict[uuid.UUID, Generation] = {}
        self._by_message: dict[uuid.UUID, Generation] = {}
        self._reserved: dict[uuid.UUID, int] = {}
        # False once shutdown begins: new answers are refused instead of being cut short.
        self.accepting = True

    def admission(self) -> tuple[str, int] | None:
        """Why a new answer cannot start now, and when to retry — or None if it can.

        Above PARLEY_MAX_ACTIVE_GENERATIONS a clear "busy, retry in N s" beats everybody's
        answers slowing down together.
        """
        if not self.accepting:
            return "Parley is restarting. Try again in a few seconds.", settings.PARLEY_BUSY_RETRY_SECONDS
        if len(self._by_message) + len(self._reserved) >= settings.PARLEY_MAX_ACTIVE_GENERATIONS:
            seconds = settings.PARLEY_BUSY_RETRY_SECONDS
            return f"Parley is busy right now. Try again in {seconds} s.", seconds
        return None

    def active_count(self) -> int:
        return len(self._by_message)

    def is_busy(self, conversation_id: uuid.UUID, user_id: int) -> bool:
        """Busy for its owner only: anyone else must learn nothing about the conversation."""
        generation = self._by_conversation.get(conversation_id)
        owner = generation.user_id if generation else self._reserved.get(conversation_id)
        return owner == user_id

    def reserve(self, conversation_id: uuid.UUID, user_id: int) -> bool:
        """Claim a conversation before the database write, so two sends cannot both start."""
        if self.is_busy(conversation_id, user_id):
            return False
        self._reserved.setdefault(conversation_id, user_id)
        return True

    def release(self, conversation_id: uuid.UUID, user_id: int) -> None:
        if self._reserved.get(conversation_id) == user_id:
            del self._reserved[conversation_id]

    def get_by_message(self, message_id: uuid.UUID) -> Generation | None:
        return self._by_message.get(message_id)

    def get_by_conversation(self, conversation_id: uuid.UUID) -> Generation | None:
        return self._by_conversation.get(conversation_id)

    def start(self, prepared: Prepared, user_id: int, received_at: float, reply: Deliver) -> Generation:
        generation = Generation(prepared, user_id, self.hub, received_at, reply)
        self._reserved.pop(generation.conversation_id, None)
        self._by_conversation[generation.conversation_id] = generation
        self._by_message[generation.message_id] = generation
        generation.task = asyncio.create_task(self._run(generation), name=f"generation-{generation.message_id}")
        # An admin cap on one answer's length in time: a runaway stream cannot hold a slot forever.
        generation.time_limit = asyncio.get_running_loop().call_later(
            settings.PARLEY_MAX_GENERATION_SECONDS, self.stop, user_id, generation.conversation_id, Reason.TIME_LIMIT
        )
        return generation

    async def _run(self, generation: Generation) -> None:
        try:
            await generation.run()
        finally:
            if generation.time_limit is not None:
                generation.time_limit.cancel()
            self._by_conversation.pop(generation.conversation_id, None)
            self._by_message.pop(generation.message_id, None)

    def stop(self, user_id: int, conversation_id: uuid.UUID, reason: str = Reason.STOPPED) -> bool:
        generation = self._by_conversation.get(conversation_id)
        if generation is None or generation.user_id != user_id or generation.task is None:
            return False
        generation.cancel_reason = Reason(reason)
        generation.task.cancel()
        return True

    async def shutdown(self, grace: float = 5.0) -> None:
        """Save every running answer as incomplete (server_restart) within `grace` seconds."""
        tasks = []
        for generation in list(self._by_message.values()):
            if generation.task is not None:
                generation.cancel_reason = Reason.SERVER_RESTART
                generation.task.cancel()
                tasks.append(generation.task)
        if tasks:
            await asyncio.wait(tasks, timeout=grace)


hub = Hub()
registry = Registry(hub)
