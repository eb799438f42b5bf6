"""Writes on whole conversations: rename, pin, settings, soft delete and restore."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from chat import limits
from chat.access import access_conversation, access_model
from chat.limits import Invalid
from chat.models import Conversation, TitleSource, UserPreferences

UNSET: Any = object()


@dataclasses.dataclass
class Changes:
    """A partial edit: only fields that are not UNSET change. None clears a setting."""

    title: str | None = None
    pinned: bool | None = None
    model: str | None = None
    system_prompt: str | None = None
    temperature: Any = UNSET
    max_tokens: Any = UNSET


def parse_changes(doc: object) -> Changes:
    """Validate an edit from the page; unknown fields are ignored (forward compatibility)."""
    if not isinstance(doc, dict):
        raise Invalid("Send a JSON object.")
    changes = Changes()
    if "title" in doc:
        changes.title = limits.title(doc["title"])
    if "pinned" in doc:
        if not isinstance(doc["pinned"], bool):
            raise Invalid("`pinned` must be true or false.")
        changes.pinned = doc["pinned"]
    if "model" in doc:
        if not isinstance(doc["model"], str):
            raise Invalid("`model` must be a model id.")
        changes.model = doc["model"]
    if "system_prompt" in doc:
        changes.system_prompt = limits.system_prompt(doc["system_prompt"])
    if "temperature" in doc:
        changes.temperature = limits.temperature(doc["temperature"])
    if "max_tokens" in doc:
        changes.max_tokens = limits.max_tokens(doc["max_tokens"])
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
