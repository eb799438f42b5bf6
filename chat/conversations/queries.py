"""Reading conversations: the sidebar's pages and search, and one conversation whole."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from django.db.models import Q

from chat.access import access_conversation
from chat.limits import Invalid
from chat.models import Conversation, Message
from chat.serializers import conversation_json, conversation_settings_json, message_json

PAGE_SIZE = 50
# Pinned conversations all come with the first page; more than this is not a pin any more.
PINNED_MAX = 200


def parse_cursor(raw: str | None) -> tuple[datetime, uuid.UUID | None] | None:
    """`next` from an earlier page: "<iso-time>~<id>", or a bare ISO time (protocol v1)."""
    if not raw:
        return None
    when, _, ident = raw.partition("~")
    try:
        return datetime.fromisoformat(when), uuid.UUID(ident) if ident else None
    except ValueError:
        raise Invalid("`before` must be the `next` value of an earlier page.") from None


def conversation_page(user: Any, before: tuple[datetime, uuid.UUID | None] | None, query: str = "") -> dict[str, Any]:
    """One page, newest first: one query, plus one for the pinned ones on an unfiltered first page.

    The cursor carries the id as a tie-breaker: two conversations updated in the same
    microsecond (an import, a bulk load) would otherwise be skipped or repeated.
    """
    qs = Conversation.objects.filter(owner=user, deleted_at__isnull=True).order_by("-updated", "-id")
    pinned: list[Conversation] | None = None
    if query:
        in_messages = Message.objects.filter(conversation__owner=user, content__icontains=query)
        qs = qs.filter(Q(title__icontains=query) | Q(id__in=in_messages.values("conversation_id")))
    else:
        if before is None:
            pinned = list(qs.filter(pinned=True)[:PINNED_MAX])
        qs = qs.filter(pinned=False)
    if before is not None:
        when, ident = before
        qs = qs.filter(Q(updated__lt=when) | Q(updated=when, id__lt=ident)) if ident else qs.filter(updated__lt=when)
    page = list(qs[: PAGE_SIZE + 1])
    more = len(page) > PAGE_SIZE
    page = page[:PAGE_SIZE]
    data: dict[str, Any] = {
        "conversations": [conversation_json(c) for c in page],
        "next": f"{page[-1].updated.isoformat()}~{page[-1].id}" if more else None,
    }
    if pinned is not None:
        data["pinned"] = [conversation_json(c) for c in pinned]
    return data


def conversation_detail(user: Any, conversation_id: object) -> dict[str, Any]:
    """One conversation with its settings and every message (all branches)."""
    conversation = access_conversation(user, conversation_id)
    return {
        "conversation": conversation_json(conversation),
        "settings": conversation_settings_json(conversation),
        "messages": [message_json(m) for m in conversation.messages.all()],
    }
