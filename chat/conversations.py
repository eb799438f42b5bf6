"""The sidebar's endpoints: list and search, rename, pin, settings, delete and restore,
export and import. Every object goes through chat.access; writes are in
chat.conversation_services.

Edits are POSTs to action URLs (`…/edit/`, `…/delete/`) rather than PATCH and DELETE on the
conversation URL, so a plain form could drive them and the read endpoint stays GET-only.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_POST

from chat import conversation_services as cs
from chat.access import access_conversation
from chat.models import Conversation, Message
from chat.serializers import conversation_json, conversation_settings_json

PAGE_SIZE = 50
# Pinned conversations all come with the first page; more than this is not a pin any more.
PINNED_MAX = 200


def _error(message: str, status: int = 400) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def parse_cursor(raw: str | None) -> tuple[datetime, uuid.UUID | None] | None:
    """`next` from an earlier page: "<iso-time>~<id>", or a bare ISO time (protocol v1)."""
    if not raw:
        return None
    when, _, ident = raw.partition("~")
    try:
        return datetime.fromisoformat(when), uuid.UUID(ident) if ident else None
    except ValueError:
        raise cs.Invalid("`before` must be the `next` value of an earlier page.") from None


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


@require_GET
@login_required
def api_conversations(request: HttpRequest) -> HttpResponse:
    """GET /api/conversations/?before=<next>&q=<words>: the sidebar list, or search results."""
    query = " ".join(request.GET.get("q", "").split())[:200]
    try:
        before = parse_cursor(request.GET.get("before"))
    except cs.Invalid as exc:
        return _error(str(exc))
    return JsonResponse(conversation_page(request.user, before, query))


def _json_body(request: HttpRequest) -> Any:
    try:
        return json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise cs.Invalid("The request body must be JSON.") from None


def _detail(conversation: Conversation) -> dict[str, Any]:
    return {"conversation": conversation_json(conversation), "settings": conversation_settings_json(conversation)}


@require_POST
@login_required
def edit_conversation(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    """POST JSON {title?, pinned?, model?, system_prompt?, temperature?, max_tokens?}."""
    try:
        changes = cs.parse_changes(_json_body(request))
        conversation = cs.do_change_conversation(request.user, conversation_id, changes)  # type: ignore[arg-type]
    except cs.Invalid as exc:
        return _error(str(exc))
    return JsonResponse(_detail(conversation))


@require_POST
@login_required
def delete_conversation(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    undo_until = cs.do_delete_conversation(request.user, conversation_id)  # type: ignore[arg-type]
    return JsonResponse({"deleted": str(conversation_id), "undo_until": undo_until.isoformat()})


@require_POST
@login_required
def restore_conversation(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    try:
        conversation = cs.do_restore_conversation(request.user, conversation_id)  # type: ignore[arg-type]
    except cs.Invalid as exc:
        return _error(str(exc), status=410)
    return JsonResponse({"conversation": conversation_json(conversation)})


# --- Export and import -----------------------------------------------------------------------


def export_doc(conversation: Conversation, messages: list[Message]) -> dict[str, Any]:
    """The JSON export of one conversation; import_conversation reads exactly this."""
    return {
        "format": "parley.conversation",
        "version": 1,
        "conversation": {
            "title": conversation.title,
            "created": conversation.created.isoformat(),
            "updated": conversation.updated.isoformat(),
            "model": conversation.model.name if conversation.model else None,
            "system_prompt": conversation.system_prompt,
            "temperature": conversation.temperature,
            "max_tokens": conversation.max_tokens,
            "pinned": conversation.pinned,
        },
        "messages": [
            {
                "id": str(m.id), "parent": str(m.parent_id) if m.parent_id else None, "role": m.role,
                "content": m.content, "reasoning": m.reasoning, "status": m.status, "reason": m.reason,
                "model": m.model_name or None, "created": m.created.isoformat(),
                "usage": {"input_tokens": m.input_tokens, "output_tokens": m.output_tokens},
            }
            for m in messages
        ],
    }


def export_markdown(conversation: Conversation, messages: list[Message]) -> str:
    lines = [f"# {conversation.title or 'Untitled'}", ""]
    if conversation.system_prompt:
        lines += ["**System prompt**", "", conversation.system_prompt, ""]
    for m in messages:
        who = "You" if m.role == "user" else (m.model_name or "Assistant")
        lines += [f"## {who}", "", m.content, ""]
        if m.status != "complete":
            lines += [f"*({m.status}{', ' + m.reason if m.reason else ''})*", ""]
    return "\n".join(lines).rstrip() + "\n"


def _download(body: str, filename: str, content_type: str) -> HttpResponse:
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _filename(conversation: Conversation, ext: str) -> str:
    return f"{slugify(conversation.title)[:60] or 'conversation'}.{ext}"


@require_GET
@login_required
def export_conversation(request: HttpRequest, conversation_id: uuid.UUID, fmt: str) -> HttpResponse:
    """GET /api/conversations/<id>/export.md or export.json, as a download."""
    conversation = access_conversation(request.user, conversation_id)
    messages = list(conversation.messages.all())
    if fmt == "md":
        return _download(export_markdown(conversation, messages), _filename(conversation, "md"), "text/markdown; charset=utf-8")
    body = json.dumps(export_doc(conversation, messages), ensure_ascii=False, indent=1)
    return _download(body, _filename(conversation, "json"), "application/json")


def read_import(request: HttpRequest) -> Any:
    """The export to import: a JSON body, or a `file` field of a form. Size-capped before parsing."""
    cap = settings.PARLEY_IMPORT_MAX_BYTES
    upload = request.FILES.get("file")
    if upload is not None:
        if upload.size is not None and upload.size > cap:
            raise cs.Invalid(f"The file is larger than {cap:,} bytes.")
        raw = upload.read(cap + 1)
    else:
        if int(request.headers.get("Content-Length") or 0) > cap:
            raise cs.Invalid(f"The file is larger than {cap:,} bytes.")
        raw = request.body
    if len(raw) > cap:
        raise cs.Invalid(f"The file is larger than {cap:,} bytes.")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise cs.Invalid("The file is not valid JSON.") from None


@require_POST
@login_required
def import_conversation(request: HttpRequest) -> HttpResponse:
    """POST an export (JSON body or `file`): 201 with the new conversation, or 400 and nothing saved."""
    try:
        conversation = cs.do_import_conversation(request.user, read_import(request))  # type: ignore[arg-type]
    except cs.Invalid as exc:
        return _error(str(exc))
    return JsonResponse({"conversation": conversation_json(conversation)}, status=201)


def export_everything(user: Any) -> dict[str, Any]:
    """All of a user's data: account, preferences, every live conversation. Three queries."""
    prefs = cs.preferences_for(user)
    conversations = list(
        Conversation.objects.filter(owner=user, deleted_at__isnull=True)
        .select_related("model__provider").prefetch_related("messages").order_by("created")
    )
    return {
        "format": "parley.export",
        "version": 1,
        "account": {"username": user.get_username(), "email": user.email, "date_joined": user.date_joined.isoformat()},
        "preferences": {
            "display_name": prefs.display_name, "theme": prefs.theme,
            "default_model": prefs.default_model.name if prefs.default_model else None,
            "default_system_prompt": prefs.default_system_prompt,
        },
        "conversations": [export_doc(c, list(c.messages.all())) for c in conversations],
    }


@require_GET
@login_required
def export_all(request: HttpRequest) -> HttpResponse:
    """GET /api/export/: everything of the signed-in user as one JSON download."""
    body = json.dumps(export_everything(request.user), ensure_ascii=False, indent=1)
    return _download(body, f"parley-{slugify(request.user.get_username()) or 'export'}.json", "application/json")
