"""The API as a caller of the generation core: its Sink, and the rows it keeps when asked.

The core publishes the same frames it gives the chat socket; ApiSink queues the ones that
carry text or the end for the view, which turns them into OpenAI's shapes. Nothing is saved
but the usage record, unless the token asks to keep its calls in the user's history: then
the call becomes a conversation (its turns, and the answer checkpointed and finished like a
chat answer).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import uuid
from typing import Any

from channels.db import database_sync_to_async
from django.db import transaction

from chat import cluster, metering, response_cache, sql, store
from chat.generation import Outcome
from chat.models import ChatModel, Conversation, Message, Role, Source, Status, TitleSource
from chat.protocol import Frame
from chat.sending import TITLE_CHARS, warn_if_near_budget
from providers.base import ChatRequest
from providers.content import flat_text

log = logging.getLogger(__name__)


class ApiSink:
    """Frames for one HTTP response; the usage record (and, if asked, the rows) at the end."""

    def __init__(
        self,
        user: Any,
        model: ChatModel,
        request: ChatRequest,
        save_history: bool,
        cache: response_cache.Plan = response_cache.OFF,
    ) -> None:
        self.user = user
        self.cache = cache
        self.model = model
        self.request = request
        self.save_history = save_history
        self.conversation_id = uuid.uuid4()
        self.message_id = uuid.uuid4()
        # Deltas and the end, for the view; None once the generation is over (however it ended).
        self.frames: asyncio.Queue[Frame | None] = asyncio.Queue()
        self.outcome: Outcome | None = None
        self.failed_ref = ""

    async def open(self) -> dict[str, Any] | None:
        if self.save_history:
            try:
                await database_sync_to_async(save_start)(
                    self.user, self.model, self.request, self.conversation_id, self.message_id
                )
            except Exception:
                self.failed_ref = secrets.token_hex(4)
                log.exception("could not save the API call as a conversation, ref=%s", self.failed_ref)
                return None
        return {"id": str(self.message_id), "role": Role.ASSISTANT, "status": Status.STREAMING}

    async def before_upstream(self, opened: asyncio.Task[dict[str, Any] | None]) -> None:
        return None

    def publish(self, frame: Frame) -> None:
        if frame.type != "start":
            self.frames.put_nowait(frame)

    def checkpoint(self, content: str, reasoning: str, seq: int) -> None:
        if self.save_history:
            store.checkpoint_later(self.message_id, content, reasoning, seq)

    async def finish(self, outcome: Outcome) -> None:
        self.outcome = outcome
        saved = self.message_id if self.save_history else None
        usage = metering.record(self.user, Source.API, self.model, outcome, message_id=saved, cached=outcome.cached)
        if self.save_history:
            await store.finishes.submit((self.message_id, self.conversation_id, outcome, usage))
        elif usage is not None:
            await store.usage_records.submit(usage)

    def finished(self, outcome: Outcome) -> None:
        warn_if_near_budget(self.user)  # the user's open chat tabs hear it too
        response_cache.keep_answer(self.cache, outcome)

    def closed(self) -> None:
        self.frames.put_nowait(None)


def save_start(
    user: Any, model: ChatModel, request: ChatRequest, conversation_id: uuid.UUID, message_id: uuid.UUID
) -> None:
    """The call as a conversation: its system text, each turn in order, the answer streaming.

    Images sent through the API are not kept (the turn keeps its text): they were never
    uploaded as the user's files.
    """
    system = "\n\n".join(m.content for m in request.messages if m.role == "system")
    turns = [m for m in request.messages if m.role != "system"]
    opening = next((flat_text(m) for m in turns if m.role == "user"), "")
    conversation = Conversation(
        id=conversation_id,
        owner=user,
        title=" ".join(opening.split())[:TITLE_CHARS] or "API call",
        system_prompt=system,
        model=model,
        temperature=request.temperature,
        max_tokens=request.max_tokens,
        title_source=TitleSource.USER,  # scripts' calls get no generated title (no extra upstream call)
    )
    rows: list[Message] = []
    parent: uuid.UUID | None = None
    for turn in turns:
        row = Message(
            id=uuid.uuid4(),
            conversation=conversation,
            parent_id=parent,
            role=turn.role,
            content=flat_text(turn),
            status=Status.COMPLETE,
        )
        if turn.role == Role.ASSISTANT:
            row.model, row.model_name = model, model.name
        rows.append(row)
        parent = row.id
    rows.append(
        Message(
            id=message_id,
            conversation=conversation,
            parent_id=parent,
            role=Role.ASSISTANT,
            status=Status.STREAMING,
            model=model,
            model_name=model.name,
            worker=cluster.worker_id(),
        )
    )
    with transaction.atomic():
        sql.insert([conversation])
        sql.insert(rows)
