"""The chat WebSocket: authorise, parse, dispatch from a table. Long work runs elsewhere.

Channels handles one socket's frames one at a time, so nothing here waits on a model:
a `send` is handed to chat.sending, whose generation outlives this socket. Frames go out
through a per-socket outbox drained by one writer task, so a generation never waits on a
socket.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from chat import cluster, protocol, revocation, sending
from chat.access import NotFound, access_conversation, access_message
from chat.generation import hub, registry
from chat.protocol import FrameError
from chat.serializers import message_json
from chatsite import private_apis

log = logging.getLogger(__name__)

# A socket this far behind is closed (the client reconnects and resumes) rather than
# letting one slow reader grow the server's memory without bound.
OUTBOX_LIMIT = 2000
CLOSE_NOT_SIGNED_IN = revocation.CLOSE_SIGNED_OUT
CLOSE_TOO_SLOW = 4408
CLOSE_TOO_MANY_SOCKETS = 4429


class ChatConsumer(AsyncWebsocketConsumer):
    direct: Callable[[str], None] | None = None

    async def connect(self) -> None:
        """Serve only a signed-in user (the Origin check happened in asgi.py).

        Anyone else is accepted and then closed with 4401: a refused handshake reaches the
        page as a bare 1006, which it cannot tell from a network failure and so retries
        for ever, while 4401 tells it to say "signed out" and stop.
        """
        self.user = self.scope.get("user")
        if self.user is None or not self.user.is_authenticated:
            await self.accept()
            await self.close(code=CLOSE_NOT_SIGNED_IN)
            return
        limit = settings.PARLEY_USER_MAX_SOCKETS
        if limit and hub.socket_count(self.user.id) >= limit:
            # Counted per process: the load balancer keeps one user's sockets on one process.
            await self.accept()
            await self.send(text_data=protocol.error(
                "too_many_sockets", f"You have {limit} Parley tabs open. Close one and this tab reconnects.",
            ).json())
            await self.close(code=CLOSE_TOO_MANY_SOCKETS)
            return
        self.outbox: asyncio.Queue[str | int] = asyncio.Queue()
        self.writer = asyncio.create_task(self._drain())
        await self.accept()
        # Frames straight to Daphne when nothing waits before them (see private_apis); a
        # slow reader is cut by `serve` past PARLEY_MAX_UNSENT_BYTES, not by the outbox.
        self.direct = private_apis.direct_text_sender(self.base_send)
        hub.subscribe(self.user.id, self.deliver)
        revocation.watch.add(self.deliver, self.user, self.scope["session"].session_key)
        if cluster.current is not None:
            cluster.current.socket_opened(self.user.id)
        self.deliver(protocol.hello(self.user.get_username(), cluster.worker_id()).json())

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
            revocation.watch.discard(self.deliver)
            if cluster.current is not None:
                cluster.current.socket_closed(self.user.id)
            self.writer.cancel()

    def deliver(self, item: str | int) -> None:
        """Send a frame (or queue it, or a close code) for this socket; never blocks a generation."""
        if self.direct is not None and type(item) is str and self.outbox.empty():
            try:
                self.direct(item)
            except Exception:
                log.debug("a frame for a closing socket was dropped", exc_info=True)
            return
        if isinstance(item, str) and self.outbox.qsize() >= OUTBOX_LIMIT:
            item = CLOSE_TOO_SLOW
        if isinstance(item, int):
            hub.unsubscribe(self.user.id, self.deliver)
        self.outbox.put_nowait(item)

    def reply(self, frame: protocol.Frame) -> None:
        self.deliver(frame.json())

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
        command: protocol.Command | None = None
        try:
            command = protocol.parse(text_data)
            await HANDLERS[type(command)](self, command, received_at)
        except FrameError as exc:
            self.reply(exc.frame())
        except revocation.SignedOut:
            self.deliver(revocation.CLOSE_SESSION_CHANGED)
        except Exception:
            # An unexpected failure is the server's fault: say so, with a reference for the
            # admin's log, and keep the socket open rather than dropping it with 1011.
            ref = secrets.token_hex(4)
            log.exception("frame handling failed, ref=%s", ref)
            client_id = getattr(command, "client_id", None)
            self.reply(protocol.error(
                "unavailable", f"Something went wrong on the server. Try again. (ref {ref})", client_id, ref=ref
            ))

    # --- handlers, one per command --------------------------------------------------------
    async def on_send(self, command: protocol.Send, received_at: float) -> None:
        user = self.user
        await sending.start(
            user, command.client_id, command.conversation, received_at,
            lambda: sending.prepare_send(user, command), self.deliver, self._check_session,
        )

    async def on_regenerate(self, command: protocol.Regenerate, received_at: float) -> None:
        user = self.user
        conversation = await self._conversation_of(command.message, command.client_id)
        await sending.start(
            user, command.client_id, conversation, received_at,
            lambda: sending.prepare_regenerate(user, command), self.deliver, self._check_session,
        )

    async def on_continue(self, command: protocol.Continue, received_at: float) -> None:
        user = self.user
        conversation = await self._conversation_of(command.message, command.client_id)
        await sending.start(
            user, command.client_id, conversation, received_at,
            lambda: sending.prepare_continue(user, command), self.deliver, self._check_session,
        )

    async def _conversation_of(self, message_id: str, client_id: uuid.UUID) -> str:
        try:
            message = await database_sync_to_async(access_message)(self.user, message_id)
        except NotFound:
            raise FrameError("not_found", "No such message.", client_id) from None
        return str(message.conversation_id)

    def _check_session(self) -> None:
        revocation.check_session(self.scope)

    async def on_stop(self, command: protocol.Stop, received_at: float) -> None:
        await database_sync_to_async(self._check_session, thread_sensitive=False)()
        conversation_id = uuid.UUID(command.conversation)
        if registry.stop(self.user.id, conversation_id):
            return
        if cluster.current is not None and await cluster.current.route_stop(self.user.id, conversation_id):
            return  # running in another process: its owner stops it
        # Nothing running: still say "not found" for someone else's conversation.
        try:
            await database_sync_to_async(access_conversation)(self.user, conversation_id)
        except NotFound:
            raise FrameError("not_found", "No such conversation.") from None

    async def on_resume(self, command: protocol.Resume, received_at: float) -> None:
        """One `replace` delta with the whole text so far (and `end` if it has ended)."""
        message_id = uuid.UUID(command.message)
        generation = registry.get_by_message(message_id)
        if generation is not None and generation.user_id == self.user.id:
            self.reply(generation.catch_up())
            if generation.end_frame is not None:
                self.reply(generation.end_frame)
            return
        if cluster.current is not None and await cluster.current.route_resume(self.user.id, message_id):
            return  # running in another process: its owner's reply has been delivered here
        try:
            message = await database_sync_to_async(access_message)(self.user, message_id)
        except NotFound:
            raise FrameError("not_found", "No such message.") from None
        # Finished (or orphaned) already: the saved text wins over whatever the tab saw.
        for frame in protocol.saved_answer(message_json(message)):
            self.reply(frame)

    async def on_ping(self, command: protocol.Ping, received_at: float) -> None:
        self.reply(protocol.PONG)


Handler = Callable[[ChatConsumer, Any, float], Awaitable[None]]
HANDLERS: dict[type, Handler] = {
    protocol.Send: ChatConsumer.on_send,
    protocol.Regenerate: ChatConsumer.on_regenerate,
    protocol.Continue: ChatConsumer.on_continue,
    protocol.Stop: ChatConsumer.on_stop,
    protocol.Resume: ChatConsumer.on_resume,
    protocol.Ping: ChatConsumer.on_ping,
}
