"""The sidebar's endpoints: list and search, one conversation, rename, pin, settings, delete
and restore, export and import.

Edits are POSTs to action URLs (`…/edit/`, `…/delete/`) rather than PATCH and DELETE on the
conversation URL, so a plain form could drive them and the read endpoint stays GET-only.
"""

from __future__ import annotations

import json
import uuid

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_POST

from chat import limits
from chat.access import access_conversation
from chat.attachments import transfer as attachment_transfer
from chat.conversations import queries, transfer, writes
from chat.limits import Invalid
from chat.models import Conversation
from chat.serializers import conversation_json, conversation_settings_json


def error(message: str, status: int = 400) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


@require_GET
@login_required
def api_conversations(request: HttpRequest) -> HttpResponse:
    """GET /api/conversations/?before=<next>&q=<words>: the sidebar list, or search results."""
    query = " ".join(request.GET.get("q", "").split())[:200]
    try:
        before = queries.parse_cursor(request.GET.get("before"))
    except Invalid as exc:
        return error(str(exc))
    return JsonResponse(queries.conversation_page(request.user, before, query))


@require_GET
@login_required
def api_conversation(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    """GET /api/conversations/<id>/: the conversation, its settings and every message."""
    return JsonResponse(queries.conversation_detail(request.user, conversation_id))


def _detail(conversation: Conversation) -> dict[str, object]:
    return {"conversation": conversation_json(conversation), "settings": conversation_settings_json(conversation)}


@require_POST
@login_required
def edit_conversation(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    """POST JSON {title?, pinned?, model?, system_prompt?, temperature?, max_tokens?}."""
    try:
        changes = writes.parse_changes(limits.loads(request.body or b"{}"))
        conversation = writes.do_change_conversation(request.user, conversation_id, changes)  # type: ignore[arg-type]
    except Invalid as exc:
        return error(str(exc))
    return JsonResponse(_detail(conversation))


@require_POST
@login_required
def delete_conversation(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    undo_until = writes.do_delete_conversation(request.user, conversation_id)  # type: ignore[arg-type]
    return JsonResponse({"deleted": str(conversation_id), "undo_until": undo_until.isoformat()})


@require_POST
@login_required
def restore_conversation(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    try:
        conversation = writes.do_restore_conversation(request.user, conversation_id)  # type: ignore[arg-type]
    except Invalid as exc:
        return error(str(exc), status=410)
    return JsonResponse({"conversation": conversation_json(conversation)})


def _download(body: str, filename: str, content_type: str) -> HttpResponse:
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _filename(conversation: Conversation, ext: str) -> str:
    return f"{slugify(conversation.title)[:60] or 'conversation'}.{ext}"


@require_GET
@login_required
def export_conversation(request: HttpRequest, conversation_id: uuid.UUID, fmt: str) -> HttpResponseBase:
    """GET /api/conversations/<id>/export.md, export.json or export.zip (with files), as a download."""
    conversation = access_conversation(request.user, conversation_id)
    messages = list(conversation.messages.all())
    if fmt == "md":
        def on_server(summary: dict[str, object]) -> str:
            return request.build_absolute_uri(transfer.server_link(summary))

        body = transfer.export_markdown(conversation, messages, on_server)
        return _download(body, _filename(conversation, "md"), "text/markdown; charset=utf-8")
    body = json.dumps(transfer.export_doc(conversation, messages), ensure_ascii=False, indent=1)
    if fmt == "zip":
        markdown = transfer.export_markdown(conversation, messages, attachment_transfer.member)
        archive = attachment_transfer.export_zip(conversation, messages, body, markdown)
        return FileResponse(archive, as_attachment=True, filename=_filename(conversation, "zip"),
                            content_type="application/zip")
    return _download(body, _filename(conversation, "json"), "application/json")


@require_POST
@login_required
async def import_conversation(request: HttpRequest) -> HttpResponse:
    """POST an export (JSON body or `file`): 201 with the new conversation, or 400 and nothing saved."""
    user = await request.auser()
    try:
        conversation = await transfer.import_conversation(user, transfer.read_import(request))
    except Invalid as exc:
        return error(str(exc))
    return JsonResponse({"conversation": conversation_json(conversation)}, status=201)


@require_GET
@login_required
def export_all(request: HttpRequest) -> HttpResponse:
    """GET /api/export/: everything of the signed-in user as one JSON download."""
    body = json.dumps(transfer.export_everything(request.user), ensure_ascii=False, indent=1)
    return _download(body, f"parley-{slugify(request.user.get_username()) or 'export'}.json", "application/json")
