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

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, OperationalError, transaction
from django.utils import timezone

from chat.access import NotFound, access_conversation, access_message, access_model_entry
from chat.models import ChatModel, Conversation, Message, Reason, Role, Status, UserPreferences
from providers.base import ChatMessage, ChatRequest, Target

log = logging.getLogger(__name__)
T = TypeVar("T")

TITLE_CHARS = 60
AFTER_NEWEST = "newest"  # a send's default place: after the conversation's newest message


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
    """A send, regenerate or continue checked and built but not yet written.

    The upstream call can start from this while do_save_send writes it. ``user_message`` is
    new (a send) or already saved (regenerate, continue); ``assistant`` is new, or for a
    continue the saved answer that goes on, whose text so far is ``prefix``.
    """

    user: AbstractBaseUser
    conversation: Conversation
    is_new: bool
    user_message: Message
    assistant: Message
    family: str
    target: Target
    request: ChatRequest
    new_user_message: bool = True
    prefix: str = ""
    client_id: uuid.UUID | None = None


CONTINUE_PROMPT = "Continue your previous answer exactly where it stopped. Do not repeat any of it."

_Row = tuple[uuid.UUID, uuid.UUID | None, str, str, str, uuid.UUID | None]  # id, parent, role, content, status, client


def _rows(conversation: Conversation) -> dict[uuid.UUID, _Row]:
    fields = ("id", "parent_id", "role", "content", "status", "client_id")
    return {row[0]: row for row in conversation.messages.order_by("created").values_list(*fields)}


def _branch(rows: dict[uuid.UUID, _Row], leaf: uuid.UUID | None) -> list[_Row]:
    """The messages from the first one down to `leaf`, following parents (one branch)."""
    path: list[_Row] = []
    while leaf is not None and leaf in rows and len(path) <= len(rows):
        path.append(rows[leaf])
        leaf = rows[leaf][1]
    return path[::-1]


def _turns(conversation: Conversation, branch: list[_Row]) -> list[ChatMessage]:
    """What the model sees: the system prompt, then each turn of the branch that has text.

    Error placeholders are skipped; stopped partial answers are kept, as the user saw them.
    """
    turns = [ChatMessage("system", conversation.system_prompt)] if conversation.system_prompt else []
    turns += [ChatMessage(r[2], r[3]) for r in branch if r[3] and r[4] not in (Status.ERROR, Status.STREAMING)]
    return turns


def _request(model: ChatModel, turns: list[ChatMessage], options: Options, conversation: Conversation) -> ChatRequest:
    """Sampling settings come from the frame, else the conversation's own, else the admin's."""

    def pick(given: T | None, stored: T | None, default: T | None) -> T | None:
        return given if given is not None else stored if stored is not None else default

    return ChatRequest(
        model=model.model_id,
        messages=tuple(turns),
        temperature=pick(options.temperature, conversation.temperature, settings.PARLEY_DEFAULT_TEMPERATURE),
        max_tokens=pick(options.max_tokens, conversation.max_tokens, settings.PARLEY_DEFAULT_MAX_TOKENS),
        top_p=options.top_p,
        reasoning=model.reasoning_request(),
    )


def _new_answer(conversation: Conversation, parent: Message, model: ChatModel, client_id: uuid.UUID | None) -> Message:
    return Message(
        id=uuid.uuid4(), conversation=conversation, parent=parent, role=Role.ASSISTANT,
        status=Status.STREAMING, model=model, model_name=model.name, client_id=client_id,
    )


def prepare_send(
    user: AbstractBaseUser,
    *,
    client_id: uuid.UUID,
    conversation_id: str | None,
    model_id: str,
    content: str,
    options: Options,
    parent: str | None = AFTER_NEWEST,
) -> Prepared | Posted:
    """Check access and build the request, reading only; a known client id returns its Posted.

    A resend is caught here, before any upstream call (calls cost money); the unique
    constraints in do_save_send catch the rare true race.
    """
    entry = access_model_entry(user, model_id)
    model = entry.model
    if conversation_id:
        conversation = access_conversation(user, conversation_id)
        rows = _rows(conversation)
        if any(row[5] == client_id for row in rows.values()):
            found = _find_duplicate(user, conversation_id, client_id)
            assert found is not None
            return found
        if parent == AFTER_NEWEST:
            parent_id = next(reversed(rows)) if rows else None
        elif parent is None:
            parent_id = None
        else:
            parent_id = uuid.UUID(parent)
            if parent_id not in rows:
                raise NotFound("No such message in this conversation.")
        branch = _branch(rows, parent_id)
        is_new = False
    else:
        found = _find_duplicate(user, None, client_id)
        if found is not None:
            return found
        system = options.system
        if system is None:
            prefs = UserPreferences.objects.filter(user=user).only("default_system_prompt").first()
            system = prefs.default_system_prompt if prefs else ""
        conversation = Conversation(
            owner=user, client_id=client_id, title=" ".join(content.split())[:TITLE_CHARS],
            system_prompt=system, temperature=options.temperature, max_tokens=options.max_tokens,
        )
        parent_id, branch, is_new = None, [], True
    conversation.model = model
    turns = _turns(conversation, branch) + [ChatMessage("user", content)]
    user_message = Message(
        id=uuid.uuid4(), conversation=conversation, parent_id=parent_id, role=Role.USER,
        content=content, status=Status.COMPLETE, client_id=client_id,
    )
    return Prepared(
        user, conversation, is_new, user_message, _new_answer(conversation, user_message, model, None),
        model.provider.family, entry.target, _request(model, turns, options, conversation),
        client_id=client_id,
    )


def prepare_regenerate(
    user: AbstractBaseUser, *, client_id: uuid.UUID, message_id: str, model_id: str | None, options: Options
) -> Prepared | Posted:
    """A new answer beside an earlier one (same user message): the old one stays a sibling."""
    earlier = access_message(user, message_id)
    conversation = earlier.conversation
    if earlier.role != Role.ASSISTANT or earlier.parent_id is None:
        raise NotFound("Only an answer can be regenerated.")
    repeat = conversation.messages.filter(client_id=client_id, role=Role.ASSISTANT).first()
    if repeat is not None:
        return Posted(conversation, repeat.parent, repeat, duplicate=True)  # type: ignore[arg-type]
    entry = access_model_entry(user, model_id or earlier.model_id)
    model = entry.model
    rows = _rows(conversation)
    user_message = Message.objects.get(id=earlier.parent_id)
    turns = _turns(conversation, _branch(rows, user_message.id))
    conversation.model = model
    return Prepared(
        user, conversation, False, user_message, _new_answer(conversation, user_message, model, client_id),
        model.provider.family, entry.target, _request(model, turns, options, conversation),
        new_user_message=False, client_id=client_id,
    )


def prepare_continue(user: AbstractBaseUser, *, client_id: uuid.UUID, message_id: str) -> Prepared:
    """Ask the same model to carry on an answer that stopped early; it grows in place."""
    answer = access_message(user, message_id)
    conversation = answer.conversation
    if answer.role != Role.ASSISTANT or answer.status == Status.STREAMING or not answer.content:
        raise NotFound("Only an answer with some text that has stopped can be continued.")
    if answer.status == Status.COMPLETE and answer.reason != Reason.LENGTH:
        raise NotFound("This answer is finished; regenerate it instead.")
    entry = access_model_entry(user, answer.model_id)
    model = entry.model
    branch = _branch(_rows(conversation), answer.id)
    turns = _turns(conversation, branch) + [ChatMessage("user", CONTINUE_PROMPT)]
    return Prepared(
        user, conversation, False, Message.objects.get(id=answer.parent_id), answer,
        model.provider.family, entry.target, _request(model, turns, Options(), conversation),
        new_user_message=False, prefix=answer.content, client_id=client_id,
    )


def do_save_send(prepared: Prepared) -> Posted:
    """Write what a send, regenerate or continue starts with, in one transaction."""
    conversation = prepared.conversation
    try:
        with transaction.atomic():
            if prepared.is_new:
                conversation.save(force_insert=True)
            else:
                Conversation.objects.filter(id=conversation.id).update(model=conversation.model, updated=timezone.now())
            if prepared.prefix:
                Message.objects.filter(id=prepared.assistant.id).update(
                    status=Status.STREAMING, reason="", error_kind="", error_message="", error_ref="",
                    updated=timezone.now(),
                )
                prepared.assistant.status = Status.STREAMING
            elif prepared.new_user_message:
                Message.objects.bulk_create([prepared.user_message, prepared.assistant])
            else:
                prepared.assistant.save(force_insert=True)
    except IntegrityError:
        # The same client id was saved before (a resend whose ack was lost), or two raced.
        if prepared.new_user_message:
            found = _find_duplicate(
                prepared.user, None if prepared.is_new else str(conversation.id), prepared.user_message.client_id
            )
        else:
            repeat = Message.objects.filter(conversation=conversation, client_id=prepared.client_id).first()
            found = Posted(conversation, prepared.user_message, repeat, duplicate=True) if repeat else None
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
    usage_estimated: bool = False
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
