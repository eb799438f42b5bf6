"""Every lookup of a user's object goes through here, and fails the same way for
"does not exist" and "belongs to someone else", so ids leak nothing."""

from __future__ import annotations

import uuid

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Q, QuerySet
from django.http import Http404

from chat import catalog_cache
from chat.models import Attachment, ChatModel, Conversation, Message

AnyUser = User | AnonymousUser


class NotFound(Http404):
    """Raised for anything the user may not see; views turn it into a 404."""


class ModelUnavailable(NotFound):
    """The model does not exist, is disabled, or is not open to this user."""


def _as_uuid(value: object) -> uuid.UUID:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except (TypeError, ValueError, AttributeError):
        raise NotFound("No such object.") from None


def access_conversation(user: AnyUser, conversation_id: object, *, deleted: bool = False) -> Conversation:
    """A live conversation of this user; `deleted=True` finds one in its undo window instead."""
    if not user.is_authenticated:
        raise NotFound("No such conversation.")
    try:
        return Conversation.objects.get(id=_as_uuid(conversation_id), owner=user, deleted_at__isnull=not deleted)
    except Conversation.DoesNotExist:
        raise NotFound("No such conversation.") from None


def access_message(user: AnyUser, message_id: object) -> Message:
    if not user.is_authenticated:
        raise NotFound("No such message.")
    try:
        return Message.objects.select_related("conversation").get(
            id=_as_uuid(message_id), conversation__owner=user, conversation__deleted_at__isnull=True
        )
    except Message.DoesNotExist:
        raise NotFound("No such message.") from None


def access_attachment(user: AnyUser, attachment_id: object) -> Attachment:
    """A file of this user: not yet sent, or in a live conversation of theirs (not one in its
    undo window, whose messages are hidden too)."""
    if not user.is_authenticated:
        raise NotFound("No such file.")
    try:
        return Attachment.objects.get(
            Q(conversation__isnull=True) | Q(conversation__deleted_at__isnull=True),
            id=_as_uuid(attachment_id), owner=user,
        )
    except Attachment.DoesNotExist:
        raise NotFound("No such file.") from None


def access_attachments(user: AnyUser, ids: list[str], conversation_id: object | None) -> list[Attachment]:
    """The files a message is sent with, in the order given: each one this user's, and either
    not sent yet or already in this same conversation (an edit sends them again). One query."""
    if not ids:
        return []
    if not user.is_authenticated:
        raise NotFound("No such file.")
    wanted = [_as_uuid(i) for i in ids]
    here = Q(conversation__isnull=True)
    if conversation_id is not None:
        here |= Q(conversation_id=_as_uuid(conversation_id))
    found = {a.id: a for a in Attachment.objects.filter(here, id__in=wanted, owner=user)}
    if len(found) != len(set(wanted)):
        raise NotFound("A file attached to this message is gone (removed, or sent in another conversation).")
    return [found[i] for i in wanted]


def usable_models(user: AnyUser) -> QuerySet[ChatModel]:
    """Models this user may pick: enabled, on an enabled provider, open to one of their groups."""
    if not user.is_authenticated:
        return ChatModel.objects.none()
    return (
        ChatModel.objects.filter(enabled=True, provider__enabled=True)
        .filter(Q(groups__isnull=True) | Q(groups__in=user.groups.all()))  # type: ignore[union-attr]
        .select_related("provider")
        .distinct()
    )


def access_model(user: AnyUser, model_id: object) -> ChatModel:
    """The model if this user may call it (checked on every send, from chat.catalog_cache)."""
    return access_model_entry(user, model_id).model


def access_model_entry(user: AnyUser, model_id: object) -> catalog_cache.Entry:
    """The model with its provider's Target, if this user may call it."""
    if not user.is_authenticated:
        raise ModelUnavailable("That model is not available to you.")
    entry = catalog_cache.model_entry(str(_as_uuid(model_id)))
    if entry is None or (entry.groups and not entry.groups & catalog_cache.user_groups(user)):
        raise ModelUnavailable("That model is not available to you.")
    return entry
