"""Writes on whole conversations: rename, pin, settings, soft delete and restore, import.

Kept apart from chat.services, which owns the send path (messages and answers). Every function
takes the user and goes through chat.access, so a foreign id is a 404 like a missing one.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from chat.access import access_conversation, access_model
from chat.models import Conversation, Message, Reason, Role, Status, TitleSource, UserPreferences

TITLE_MAX = 200
SYSTEM_PROMPT_MAX = 20_000
MAX_TOKENS_LIMIT = 1_000_000


UNSET: Any = object()


class Invalid(ValueError):
    """Input a user can fix; the message says how and is safe to show."""


@dataclasses.dataclass
class Changes:
    """A partial edit: only fields that are not UNSET change. None clears a setting."""

    title: str | None = None
    pinned: bool | None = None
    model: str | None = None
    system_prompt: str | None = None
    temperature: Any = UNSET
    max_tokens: Any = UNSET


def _number(value: object, name: str, kind: type, low: float, high: float) -> Any:
    if value is None:
        return None
    # bool is an int in Python; `true` is not a temperature.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not float(value).is_integer()):
        raise Invalid(f"`{name}` must be a number.")
    if not low <= value <= high:
        raise Invalid(f"`{name}` must be between {low:g} and {high:g}.")
    return kind(value)


def parse_changes(doc: object) -> Changes:
    """Validate an edit from the page; unknown fields are ignored (forward compatibility)."""
    if not isinstance(doc, dict):
        raise Invalid("Send a JSON object.")
    changes = Changes()
    if "title" in doc:
        title = doc["title"]
        if not isinstance(title, str) or not " ".join(title.split()):
            raise Invalid("`title` must be a non-empty string.")
        changes.title = " ".join(title.split())[:TITLE_MAX]
    if "pinned" in doc:
        if not isinstance(doc["pinned"], bool):
            raise Invalid("`pinned` must be true or false.")
        changes.pinned = doc["pinned"]
    if "model" in doc:
        if not isinstance(doc["model"], str):
            raise Invalid("`model` must be a model id.")
        changes.model = doc["model"]
    if "system_prompt" in doc:
        if not isinstance(doc["system_prompt"], str) or len(doc["system_prompt"]) > SYSTEM_PROMPT_MAX:
            raise Invalid(f"`system_prompt` must be a string of at most {SYSTEM_PROMPT_MAX} characters.")
        changes.system_prompt = doc["system_prompt"]
    if "temperature" in doc:
        changes.temperature = _number(doc["temperature"], "temperature", float, 0, 2)
    if "max_tokens" in doc:
        changes.max_tokens = _number(doc["max_tokens"], "max_tokens", int, 1, MAX_TOKENS_LIMIT)
    return changes


def do_change_conversation(user: User, conversation_id: object, changes: Changes) -> Conversation:
    """Apply an edit. Renaming marks the title as the user's, so no generated title replaces it.

    Pinning and settings do not move a conversation in the newest-first list: `updated` is left
    alone (a queryset update skips auto_now).
    """
    conversation = access_conversation(user, conversation_id)
    fields: dict[str, Any] = {}
    if changes.title is not None:
        fields.update(title=changes.title, title_source=TitleSource.USER)
    if changes.pinned is not None:
        fields["pinned"] = changes.pinned
    if changes.model is not None:
        fields["model"] = access_model(user, changes.model)
    if changes.system_prompt is not None:
        fields["system_prompt"] = changes.system_prompt
    if changes.temperature is not UNSET:
        fields["temperature"] = changes.temperature
    if changes.max_tokens is not UNSET:
        fields["max_tokens"] = changes.max_tokens
    if fields:
        Conversation.objects.filter(id=conversation.id).update(**fields)
        for name, value in fields.items():
            setattr(conversation, name, value)
    return conversation


def undo_window() -> timedelta:
    return timedelta(seconds=settings.PARLEY_DELETE_UNDO_SECONDS)


def do_delete_conversation(user: User, conversation_id: object) -> datetime:
    """Hide a conversation at once; it can be restored until the returned time.

    Conversations whose window has passed are purged here, for this user, rather than by a
    scheduler Parley does not have: deleting is when old deletions stop mattering.
    """
    conversation = access_conversation(user, conversation_id)
    now = timezone.now()
    with transaction.atomic():
        Conversation.objects.filter(owner=user, deleted_at__lt=now - undo_window()).delete()
        Conversation.objects.filter(id=conversation.id).update(deleted_at=now)
    return now + undo_window()


def do_restore_conversation(user: User, conversation_id: object) -> Conversation:
    conversation = access_conversation(user, conversation_id, deleted=True)
    assert conversation.deleted_at is not None
    if conversation.deleted_at < timezone.now() - undo_window():
        raise Invalid("This conversation was deleted too long ago to restore.")
    Conversation.objects.filter(id=conversation.id).update(deleted_at=None)
    conversation.deleted_at = None
    return conversation


def preferences_for(user: User) -> UserPreferences:
    """The user's preferences, unsaved defaults if they never changed any."""
    try:
        return UserPreferences.objects.select_related("default_model").get(user=user)
    except UserPreferences.DoesNotExist:
        return UserPreferences(user=user)


# --- Import -------------------------------------------------------------------------------

_ROLES = {Role.USER, Role.ASSISTANT, Role.SYSTEM}
_STATUSES = {s for s in Status if s != Status.STREAMING}
_REASONS = set(Reason) | {""}


def _text(doc: dict[str, Any], key: str, where: str, limit: int, default: str = "") -> str:
    value = doc.get(key, default)
    if not isinstance(value, str):
        raise Invalid(f"{where}: `{key}` must be a string.")
    if len(value) > limit:
        raise Invalid(f"{where}: `{key}` is longer than {limit} characters.")
    return value


def _message(doc: object, index: int, ids: set[str]) -> dict[str, Any]:
    where = f"messages[{index}]"
    if not isinstance(doc, dict):
        raise Invalid(f"{where} must be an object.")
    role = doc.get("role")
    if role not in _ROLES:
        raise Invalid(f"{where}: `role` must be user, assistant or system.")
    status = doc.get("status", Status.COMPLETE)
    if status not in _STATUSES:
        raise Invalid(f"{where}: `status` must be complete, incomplete or error.")
    reason = doc.get("reason") or ""
    if reason not in _REASONS:
        raise Invalid(f"{where}: unknown `reason`.")
    parent = doc.get("parent")
    if parent is not None and parent not in ids:
        raise Invalid(f"{where}: `parent` must name an earlier message.")
    old_id = doc.get("id")
    if old_id is not None and not isinstance(old_id, str):
        raise Invalid(f"{where}: `id` must be a string.")
    limit = settings.PARLEY_MAX_MESSAGE_CHARS * 10
    return {
        "old_id": old_id, "parent": parent, "role": role, "status": status, "reason": reason,
        "content": _text(doc, "content", where, limit),
        "reasoning": _text(doc, "reasoning", where, limit),
        "model_name": _text(doc, "model", where, 200) if doc.get("model") is not None else "",
    }


def parse_import(doc: object) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Check a whole exported conversation before anything is written."""
    if not isinstance(doc, dict) or doc.get("format") != "parley.conversation":
        raise Invalid('Not a Parley conversation export (expected "format": "parley.conversation").')
    if doc.get("version") != 1:
        raise Invalid("Unsupported export version; this Parley reads version 1.")
    conv = doc.get("conversation")
    if not isinstance(conv, dict):
        raise Invalid("`conversation` must be an object.")
    raw = doc.get("messages")
    if not isinstance(raw, list) or not raw:
        raise Invalid("`messages` must be a non-empty list.")
    if len(raw) > 10_000:
        raise Invalid("Too many messages: at most 10,000 per conversation.")
    head = {
        "title": " ".join(_text(conv, "title", "conversation", TITLE_MAX).split()),
        "system_prompt": _text(conv, "system_prompt", "conversation", SYSTEM_PROMPT_MAX),
        "temperature": _number(conv.get("temperature"), "temperature", float, 0, 2),
        "max_tokens": _number(conv.get("max_tokens"), "max_tokens", int, 1, MAX_TOKENS_LIMIT),
    }
    seen: set[str] = set()
    messages = []
    for index, item in enumerate(raw):
        message = _message(item, index, seen)
        if message["old_id"]:
            seen.add(message["old_id"])
        messages.append(message)
    return head, messages


def do_import_conversation(user: User, doc: object) -> Conversation:
    """Create a conversation from an export, all or nothing. New ids throughout."""
    head, messages = parse_import(doc)
    first_user = next((m["content"] for m in messages if m["role"] == Role.USER), "")
    title = head["title"] or " ".join(first_user.split())[:60] or "Imported conversation"
    now = timezone.now()
    with transaction.atomic():
        conversation = Conversation.objects.create(
            owner=user, title=title, title_source=TitleSource.USER, system_prompt=head["system_prompt"],
            temperature=head["temperature"], max_tokens=head["max_tokens"],
        )
        new_ids: dict[str, uuid.UUID] = {}
        rows = []
        for m in messages:
            new_id = uuid.uuid4()
            if m["old_id"]:
                new_ids[m["old_id"]] = new_id
            rows.append(Message(
                id=new_id, conversation=conversation, parent_id=new_ids.get(m["parent"]) if m["parent"] else None,
                role=m["role"], content=m["content"], reasoning=m["reasoning"], status=m["status"],
                reason=m["reason"], model_name=m["model_name"],
            ))
        Message.objects.bulk_create(rows)
        # Messages are ordered by `created`, which auto_now_add may give two rows alike: space
        # them a microsecond apart in export order (bulk_update skips auto_now_add).
        for offset, row in enumerate(rows):
            row.created = now + timedelta(microseconds=offset)
        Message.objects.bulk_update(rows, ["created"], batch_size=500)
    return conversation
