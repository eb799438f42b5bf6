"""The chat WebSocket: authorise, parse, dispatch. Long work runs elsewhere.

Channels handles one socket's frames one at a time, so nothing here waits on a model:
a `send` saves the message and hands the answer to chat.generation's registry, whose
task outlives this socket. Frames go out through a per-socket outbox drained by one
writer task, so a generation never waits on a socket.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from chat import frames
from chat.access import ModelUnavailable, NotFound, access_conversation, access_message
from chat.generation import hub, registry
from chat.serializers import replay_frames, saved_end_frame
from chat.services import Posted, Prepared, prepare_continue, prepare_regenerate, prepare_send

log = logging.getLogger(__name__)

# A socket this far behind is closed (the client reconnects and resumes) rather than
# letting one slow reader grow the server's memory without bound.
OUTBOX_LIMIT = 2000
CLOSE_NOT_SIGNED_IN = 4401
CLOSE_TOO_SLOW = 4408


class ChatConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        """Accept only a signed-in user (the Origin check happened in asgi.py)."""
        self.user = self.scope.get("user")
        if self.user is None or not self.user.is_authenticated:
            await self.close(code=CLOSE_NOT_SIGNED_IN)
            return
        self.outbox: asyncio.Queue[str | int] = asyncio.Queue()
        self.writer = asyncio.create_task(self._drain())
        await self.accept()
        hub.subscribe(self.user.id, self.deliver)
        self.reply({"type": "hello", "protocol": frames.PROTOCOL_VERSION, "user": self.user.get_username()})

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Channels' dispatch minus its `close_old_connections` hop before every frame.

        That hop runs on the one database thread, so under load a Stop or a ping queued
        behind a hundred streams' saves and checkpoints (Stop p99 over 1 s). Every query
        here already goes through database_sync_to_async, which closes stale connections
        before and after each call, so the hop bought nothing.
        """
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def disconnect(self, code: int) -> None:
        """Leave running generations alone: they belong to the server, not to this socket."""
        if getattr(self, "writer", None) is not None:
            hub.unsubscribe(self.user.id, self.deliver)
            self.writer.cancel()

    def deliver(self, item: str | int) -> None:
        """Queue a frame (or a close code) for this socket; never blocks a generation."""
        if isinstance(item, str) and self.outbox.qsize() >= OUTBOX_LIMIT:
            item = CLOSE_TOO_SLOW
        if isinstance(item, int):
            hub.unsubscribe(self.user.id, self.deliver)
        self.outbox.put_nowait(item)

    def reply(self, frame: dict[str, Any]) -> None:
        self.deliver(json.dumps(frame, separators=(",", ":")))

    async def _drain(self) -> None:
        while True:
            item = await self.outbox.get()
            if isinstance(item, int):
                await self.close(code=item)
                return
            await self.send(text_data=item)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Dispatch one frame; every failure becomes an `error` frame on an open socket."""
        received_at = time.monotonic()
        try:
            command = frames.parse(text_data)
            if isinstance(command, frames.Send):
                await self.on_send(command, received_at)
            elif isinstance(command, frames.Regenerate):
                await self.on_regenerate(command, received_at)
            elif isinstance(command, frames.Continue):
                await self.on_continue(command, received_at)
            elif isinstance(command, frames.Stop):
                await self.on_stop(command)
            elif isinstance(command, frames.Resume):
                await self.on_resume(command)
            else:
                self.reply({"type": "pong"})
        except frames.FrameError as exc:
            self.reply(exc.frame())

    async def on_send(self, command: frames.Send, received_at: float) -> None:
        await self._start(
            command.client_id, command.conversation, received_at,
            lambda: prepare_send(
                self.user, client_id=command.client_id, conversation_id=command.conversation,
                model_id=command.model, content=command.content, options=command.options, parent=command.parent,
            ),
        )

    async def on_regenerate(self, command: frames.Regenerate, received_at: float) -> None:
        conversation = await self._conversation_of(command.message, command.client_id)
        await self._start(
            command.client_id, conversation, received_at,
            lambda: prepare_regenerate(
                self.user, client_id=command.client_id, message_id=command.message,
                model_id=command.model, options=command.options,
            ),
        )

    async def on_continue(self, command: frames.Continue, received_at: float) -> None:
        conversation = await self._conversation_of(command.message, command.client_id)
        await self._start(
            command.client_id, conversation, received_at,
            lambda: prepare_continue(self.user, client_id=command.client_id, message_id=command.message),
        )

    async def _conversation_of(self, message_id: str, client_id: uuid.UUID) -> str:
        try:
            message = await database_sync_to_async(access_message)(self.user, message_id)
        except NotFound:
            raise frames.FrameError("not_found", "No such message.", str(client_id)) from None
        return str(message.conversation_id)

    async def _start(
        self, client_id: uuid.UUID, conversation: str | None, received_at: float,
        prepare: Callable[[], Prepared | Posted],
    ) -> None:
        """Claim the conversation, check and build the request, then hand it to the registry."""
        refused = registry.admission()
        if refused is not None:
            message, retry_after = refused
            raise frames.FrameError("server_busy", message, str(client_id), retry_after=retry_after)
        conversation_id = uuid.UUID(conversation) if conversation else None
        if conversation_id is not None and not registry.reserve(conversation_id, self.user.id):
            if await self._is_resend(client_id, conversation_id):
                conversation_id = None  # prepare finds the earlier send and re-acks it
            else:
                raise frames.FrameError(
                    "busy", "An answer is still being generated in this conversation. Stop it or wait.",
                    str(client_id),
                )
        try:
            # Read-only, so it may run on any worker thread: a burst of sends is checked in
            # parallel instead of queueing behind every write on Channels' one ORM thread.
            prepared = await database_sync_to_async(prepare, thread_sensitive=False)()
        except ModelUnavailable:
            raise frames.FrameError("model_unavailable", "That model is not available to you.", str(client_id)) from None
        except NotFound as exc:
            # The access layer's messages are written for users and say nothing about others' data.
            raise frames.FrameError("not_found", str(exc), str(client_id)) from None
        finally:
            if conversation_id is not None:
                registry.release(conversation_id, self.user.id)
        if isinstance(prepared, Posted):
            self._replay(prepared, client_id)
            return
        # The upstream call starts now; the messages are saved alongside it (see Generation.save).
        registry.start(prepared, self.user.id, received_at, self.deliver)

    async def _is_resend(self, client_id: uuid.UUID, conversation_id: uuid.UUID) -> bool:
        from chat.models import Message

        # Not .aexists(): only database_sync_to_async closes stale connections (see dispatch).
        return await database_sync_to_async(
            Message.objects.filter(
                client_id=client_id, conversation__owner=self.user, conversation_id=conversation_id
            ).exists
        )()

    def _replay(self, posted: Posted, client_id: uuid.UUID) -> None:
        """Answer a resend: the same ack, then the answer as it stands (live if still running)."""
        generation = registry.get_by_message(posted.assistant.id) if posted.assistant else None
        for frame in replay_frames(posted, client_id):
            self.reply(frame)
        if generation is not None:
            catch_up = generation.catch_up(0)
            if catch_up is not None:
                self.reply(catch_up)

    async def on_stop(self, command: frames.Stop) -> None:
        conversation_id = uuid.UUID(command.conversation)
        if registry.stop(self.user.id, conversation_id):
            return
        # Nothing running: still say "not found" for someone else's conversation.
        try:
            await database_sync_to_async(access_conversation)(self.user, conversation_id)
        except NotFound:
            raise frames.FrameError("not_found", "No such conversation.") from None

    async def on_resume(self, command: frames.Resume) -> None:
        message_id = uuid.UUID(command.message)
        generation = registry.get_by_message(message_id)
        if generation is not None and generation.user_id == self.user.id:
            catch_up = generation.catch_up(command.after_seq)
            if catch_up is not None:
                self.reply(catch_up)
            if generation.end_frame is not None:
                self.reply(generation.end_frame)
            return
        try:
            message = await database_sync_to_async(access_message)(self.user, message_id)
        except NotFound:
            raise frames.FrameError("not_found", "No such message.") from None
        # Finished (or orphaned) already: send the saved text and its end.
        self.reply(
            {
                "type": "delta",
                "conversation": str(message.conversation_id),
                "message": str(message.id),
                "seq": message.seq,
                "text": message.content,
                "reasoning": message.reasoning,
                "replace": True,
            }
        )
        self.reply(saved_end_frame(message))

