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
from chat.models import ChatModel, Conversation, Message, Reason, Role, Status
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
    """The outcome of a send. ``duplicate`` means the client id was seen before."""

    conversation: Conversation
    user_message: Message
    assistant: Message | None
    duplicate: bool
    family: str = ""
    target: Target | None = None
    request: ChatRequest | None = None


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


def _history(conversation: Conversation) -> tuple[ChatMessage, ...]:
    """What the model sees: the system prompt, then every turn that has text.

    Error placeholders are skipped; stopped partial answers are kept, as the user saw them.
    """
    turns: list[ChatMessage] = []
    if conversation.system_prompt:
        turns.append(ChatMessage("system", conversation.system_prompt))
    for role, content, status in conversation.messages.exclude(status=Status.STREAMING).values_list(
        "role", "content", "status"
    ):
        if status != Status.ERROR and content:
            turns.append(ChatMessage(role, content))
    return tuple(turns)


def do_post_user_message(
    user: AbstractBaseUser,
    *,
    client_id: uuid.UUID,
    conversation_id: str | None,
    model_id: str,
    content: str,
    options: Options,
) -> Posted:
    """Save the user's message and an empty streaming answer, or find the earlier send."""
    duplicate = _find_duplicate(user, conversation_id, client_id)
    if duplicate:
        return duplicate
    model = access_model(user, model_id)
    try:
        with transaction.atomic():
            if conversation_id:
                conversation = access_conversation(user, conversation_id)
                conversation.model = model
                conversation.save(update_fields=["model", "updated"])
            else:
                conversation = Conversation.objects.create(
                    owner=user,
                    client_id=client_id,
                    model=model,
                    title=" ".join(content.split())[:TITLE_CHARS],
                    system_prompt=options.system or "",
                )
            previous = conversation.messages.order_by("-created").only("id").first()
            user_message = Message.objects.create(
                conversation=conversation,
                parent=previous,
                role=Role.USER,
                content=content,
                status=Status.COMPLETE,
                client_id=client_id,
            )
            history = _history(conversation)
            assistant = Message.objects.create(
                conversation=conversation,
                parent=user_message,
                role=Role.ASSISTANT,
                status=Status.STREAMING,
                model=model,
                model_name=model.name,
            )
    except IntegrityError:
        # Two sends with one client id raced each other; the other one won.
        found = _find_duplicate(user, conversation_id, client_id)
        if found is None:
            raise
        return found
    request = ChatRequest(
        model=model.model_id,
        messages=history,
        temperature=options.temperature,
        max_tokens=options.max_tokens,
        top_p=options.top_p,
    )
    return Posted(
        conversation,
        user_message,
        assistant,
        duplicate=False,
        family=model.provider.family,
        target=model.provider.target(),
        request=request,
    )


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


def usable_model_list(user: AbstractBaseUser) -> list[ChatModel]:
    from chat.access import usable_models

    return list(usable_models(user).order_by("provider__name", "display_name", "model_id"))
