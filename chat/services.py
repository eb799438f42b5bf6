"""Every multi-step write Parley makes. Models stay declarative; consumers stay thin.

All functions here are synchronous ORM code; async callers wrap them with
database_sync_to_async. Writes happen per message, never per token.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections.abc import Callable
from typing import TypeVar

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, OperationalError, transaction
from django.utils import timezone

from chat.access import access_conversation, access_model
from chat.models import Conversation, Message, Reason, Role, Status
from providers.base import ChatMessage, ChatRequest, Target

log = logging.getLogger(__name__)
T = TypeVar("T")

TITLE_CHARS = 60


@dataclasses.dataclass
class Options:
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    system: str | None = None


@dataclasses.dataclass
class Posted:
    """A saved send. ``duplicate`` means the client id was seen before."""

    conversation: Conversation
    user_message: Message
    assistant: Message | None
    duplicate: bool


def with_db_retry(fn: Callable[[], T], *, attempts: int = 6, first_wait: float = 0.05) -> T:
    """Retry a write that failed because the database was briefly locked or unreachable.

    Callers never report success for a write that did not happen: the last error is raised.
    """
    wait = first_wait
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except OperationalError as exc:
            if attempt == attempts:
                raise
            log.warning("database write failed (%s), retry %d in %.2fs", exc, attempt, wait)
            time.sleep(wait)
            wait = min(wait * 2, 2.0)
    raise AssertionError("unreachable")


def _find_duplicate(user: AbstractBaseUser, conversation_id: str | None, client_id: uuid.UUID) -> Posted | None:
    if conversation_id:
        conversation = access_conversation(user, conversation_id)
    else:
        conversation = Conversation.objects.filter(owner=user, client_id=client_id).first()  # type: ignore[misc]
        if conversation is None:
            return None
    user_message = Message.objects.filter(conversation=conversation, client_id=client_id).first()
    if user_message is None:
        return None
    assistant = (
        Message.objects.filter(conversation=conversation, parent=user_message, role=Role.ASSISTANT)
        .order_by("created")
        .first()
    )
    return Posted(conversation, user_message, assistant, duplicate=True)


@dataclasses.dataclass
class Prepared:
    """A send checked and built but not yet written: the upstream call can start now."""

    user: AbstractBaseUser
    conversation: Conversation
    is_new: bool
    user_message: Message
    assistant: Message
    family: str
    target: Target
    request: ChatRequest


def prepare_send(
    user: AbstractBaseUser,
    *,
    client_id: uuid.UUID,
    conversation_id: str | None,
    model_id: str,
    content: str,
    options: Options,
) -> Prepared | Posted:
    """Check access and build the request, reading only; a known client id returns its Posted.

    A resend is caught here, before any upstream call (calls cost money); the unique
    constraints in do_save_send catch the rare true race.
    """
    model = access_model(user, model_id)
    turns: list[ChatMessage] = []
    parent_id = None
    if conversation_id:
        conversation = access_conversation(user, conversation_id)
        rows = list(conversation.messages.values_list("id", "role", "content", "status", "client_id"))
        if any(row[4] == client_id for row in rows):
            found = _find_duplicate(user, conversation_id, client_id)
            assert found is not None
            return found
        parent_id = rows[-1][0] if rows else None
        if conversation.system_prompt:
            turns.append(ChatMessage("system", conversation.system_prompt))
        # Error placeholders are skipped; stopped partial answers are kept, as the user saw them.
        turns += [ChatMessage(r[1], r[2]) for r in rows if r[2] and r[3] not in (Status.ERROR, Status.STREAMING)]
        is_new = False
    else:
        found = _find_duplicate(user, None, client_id)
        if found is not None:
            return found
        conversation = Conversation(
            owner=user,
            client_id=client_id,
            title=" ".join(content.split())[:TITLE_CHARS],
            system_prompt=options.system or "",
        )
        if conversation.system_prompt:
            turns.append(ChatMessage("system", conversation.system_prompt))
        is_new = True
    conversation.model = model
    turns.append(ChatMessage("user", content))
    user_message = Message(
        id=uuid.uuid4(), conversation=conversation, parent_id=parent_id, role=Role.USER,
        content=content, status=Status.COMPLETE, client_id=client_id,
    )
    assistant = Message(
        id=uuid.uuid4(), conversation=conversation, parent=user_message, role=Role.ASSISTANT,
        status=Status.STREAMING, model=model, model_name=model.name,
    )
    request = ChatRequest(
        model=model.model_id,
        messages=tuple(turns),
        temperature=options.temperature,
        max_tokens=options.max_tokens,
        top_p=options.top_p,
    )
    return Prepared(user, conversation, is_new, user_message, assistant, model.provider.family,
                    model.provider.target(), request)


def do_save_send(prepared: Prepared) -> Posted:
    """Write the user's message and the empty streaming answer in one transaction."""
    conversation = prepared.conversation
    try:
        with transaction.atomic():
            if prepared.is_new:
                conversation.save(force_insert=True)
            else:
                Conversation.objects.filter(id=conversation.id).update(model=conversation.model, updated=timezone.now())
            Message.objects.bulk_create([prepared.user_message, prepared.assistant])
    except IntegrityError:
        # The same client id was saved before (a resend whose ack was lost), or two raced.
        found = _find_duplicate(
            prepared.user, None if prepared.is_new else str(conversation.id), prepared.user_message.client_id
        )
        if found is None:
            raise
        return found
    return Posted(conversation, prepared.user_message, prepared.assistant, duplicate=False)


def do_checkpoint(message_id: uuid.UUID, content: str, reasoning: str, seq: int) -> None:
    """Save partial text so a crash loses at most one checkpoint interval."""
    with_db_retry(
        lambda: Message.objects.filter(id=message_id, status=Status.STREAMING).update(
            content=content, reasoning=reasoning, seq=seq, updated=timezone.now()
        )
    )


@dataclasses.dataclass
class Outcome:
    status: str
    reason: str
    content: str
    reasoning: str
    seq: int
    input_tokens: int | None = None
    output_tokens: int | None = None
    ttft_ms: int | None = None
    error_kind: str = ""
    error_message: str = ""
    error_ref: str = ""


def do_finish_message(message_id: uuid.UUID, conversation_id: uuid.UUID, outcome: Outcome) -> None:
    """Write an answer's final state. Retries through brief database trouble, then raises."""

    def write() -> None:
        now = timezone.now()
        with transaction.atomic():
            Message.objects.filter(id=message_id).update(updated=now, **dataclasses.asdict(outcome))
            Conversation.objects.filter(id=conversation_id).update(updated=now)

    with_db_retry(write)


def do_recover_orphans() -> int:
    """Mark answers left `streaming` by a process that died as incomplete.

    Run at start-up, before this process serves anything. (With several processes this
    must only touch the dead process's messages; see docs/architecture.md.)
    """
    return Message.objects.filter(status=Status.STREAMING).update(
        status=Status.INCOMPLETE, reason=Reason.SERVER_RESTART, updated=timezone.now()
    )
