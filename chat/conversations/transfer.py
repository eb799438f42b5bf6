"""The export format, exporting, and importing it back (checked whole before anything is written).

An import is written in small transactions so it never holds the database's one writer
(SQLite) or Channels' one database thread for long: the conversation is created hidden,
its messages go in chunks of IMPORT_CHUNK, each chunk a separate hop to the database
thread so other users' sends and checkpoints go in between, and only then is it shown.
A failure midway deletes what was written; the user sees all of it or none of it.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

from channels.db import database_sync_to_async
from django.http import HttpRequest
from django.utils import timezone

from chat import limits
from chat.attachments import transfer as attachment_transfer
from chat.conversations.writes import preferences_for
from chat.limits import Invalid
from chat.models import Conversation, Message, Reason, Role, Status, TitleSource

FORMAT = "parley.conversation"
VERSION = 1
IMPORT_CHUNK = 200

_ROLES = {Role.USER, Role.ASSISTANT, Role.SYSTEM}
_STATUSES = {s for s in Status if s != Status.STREAMING}
_REASONS = set(Reason) | {""}


# ---- export -------------------------------------------------------------------------------

def export_doc(conversation: Conversation, messages: list[Message]) -> dict[str, Any]:
    """The JSON export of one conversation; import reads exactly this."""
    return {
        "format": FORMAT,
        "version": VERSION,
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
                # Names, types and sizes; the bytes travel only in export.zip (chat/attachments/transfer.py).
                **({"attachments": m.attachments} if m.attachments else {}),
            }
            for m in messages
        ],
    }


def server_link(summary: dict[str, Any]) -> str:
    return f"/api/attachments/{summary['id']}/"


def export_markdown(conversation: Conversation, messages: list[Message], link: Any = server_link) -> str:
    """`link(summary)` is where a file opens: on the server, or beside the .md in the zip."""
    lines = [f"# {conversation.title or 'Untitled'}", ""]
    if conversation.system_prompt:
        lines += ["**System prompt**", "", conversation.system_prompt, ""]
    for m in messages:
        who = "You" if m.role == "user" else (m.model_name or "Assistant")
        lines += [f"## {who}", "", m.content, ""]
        if m.attachments:
            lines += [*attachment_transfer.markdown_links(m.attachments, link), ""]
        if m.status != "complete":
            lines += [f"*({m.status}{', ' + m.reason if m.reason else ''})*", ""]
    return "\n".join(lines).rstrip() + "\n"


def export_everything(user: Any) -> dict[str, Any]:
    """All of a user's data: account, preferences, every live conversation. Three queries."""
    prefs = preferences_for(user)
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


# ---- reading an import ------------------------------------------------------------------------

def read_import(request: HttpRequest) -> Any:
    """The export to import: a JSON body, or a `file` field of a form. Size-capped before parsing.

    A zip (export.zip, with files) comes back as (document, archive) for import_conversation.
    """
    cap = limits.import_bytes()
    too_large = Invalid(f"The file is larger than {cap:,} bytes.")
    upload = request.FILES.get("file")
    if upload is not None:
        if attachment_transfer.is_zip(upload.read(4)):
            archive_cap = limits.import_archive_bytes()
            if upload.size is not None and upload.size > archive_cap:
                raise Invalid(f"The zip is larger than {limits.megabytes(archive_cap)}.")
            upload.seek(0)
            return attachment_transfer.open_archive(upload)
        upload.seek(0)
        if upload.size is not None and upload.size > cap:
            raise too_large
        raw = upload.read(cap + 1)
    else:
        if int(request.headers.get("Content-Length") or 0) > cap:
            raise too_large
        raw = request.body
    if len(raw) > cap:
        raise too_large
    return limits.loads(raw, "The file")


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
    limit = limits.stored_message_chars()
    model = doc.get("model")
    files = attachment_transfer.summaries(doc.get("attachments"), where) if role == Role.USER else []
    return {
        "attachments": files,
        "old_id": old_id, "parent": parent, "role": role, "status": status, "reason": reason,
        "content": limits.text(doc.get("content", ""), "content", limit, where=where),
        "reasoning": limits.text(doc.get("reasoning", ""), "reasoning", limit, where=where),
        "model_name": limits.text(model, "model", limits.MODEL_NAME_CHARS, where=where) if model is not None else "",
    }


def parse_import(doc: object) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Check a whole exported conversation before anything is written."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise Invalid(f'Not a Parley conversation export (expected "format": "{FORMAT}").')
    if doc.get("version") != VERSION:
        raise Invalid(f"Unsupported export version; this Parley reads version {VERSION}.")
    conv = doc.get("conversation")
    if not isinstance(conv, dict):
        raise Invalid("`conversation` must be an object.")
    raw = doc.get("messages")
    if not isinstance(raw, list) or not raw:
        raise Invalid("`messages` must be a non-empty list.")
    if len(raw) > limits.IMPORT_MESSAGES:
        raise Invalid(f"Too many messages: at most {limits.IMPORT_MESSAGES:,} per conversation.")
    title = limits.text(conv.get("title", ""), "conversation.title", 10 * limits.TITLE_CHARS)
    head = {
        "title": limits.title(title, "conversation.title") if title.strip() else "",
        "system_prompt": limits.system_prompt(conv.get("system_prompt", ""), "conversation.system_prompt"),
        "temperature": limits.temperature(conv.get("temperature"), "conversation.temperature"),
        "max_tokens": limits.max_tokens(conv.get("max_tokens"), "conversation.max_tokens"),
    }
    seen: set[str] = set()
    messages = []
    for index, item in enumerate(raw):
        message = _message(item, index, seen)
        if message["old_id"]:
            seen.add(message["old_id"])
        messages.append(message)
    return head, messages


# ---- writing an import ----------------------------------------------------------------------

def _create_hidden(user: Any, head: dict[str, Any], messages: list[dict[str, Any]]) -> Conversation:
    first_user = next((m["content"] for m in messages if m["role"] == Role.USER), "")
    title = head["title"] or " ".join(first_user.split())[:60] or "Imported conversation"
    return Conversation.objects.create(  # type: ignore[no-any-return]
        owner=user, title=title, title_source=TitleSource.USER, system_prompt=head["system_prompt"],
        temperature=head["temperature"], max_tokens=head["max_tokens"], deleted_at=timezone.now(),
    )


def _write_chunk(
    conversation: Conversation, chunk: list[tuple[uuid.UUID, uuid.UUID | None, dict[str, Any], Any]]
) -> None:
    rows = [
        Message(
            id=new_id, conversation=conversation, parent_id=parent_id, role=m["role"], content=m["content"],
            reasoning=m["reasoning"], status=m["status"], reason=m["reason"], model_name=m["model_name"],
            attachments=m.get("kept_attachments", []),
        )
        for new_id, parent_id, m, _ in chunk
    ]
    Message.objects.bulk_create(rows)
    # Messages are ordered by `created`, which auto_now_add gives a whole chunk alike: space
    # them a microsecond apart in export order (bulk_update skips auto_now_add).
    for row, (_, _, _, created) in zip(rows, chunk, strict=True):
        row.created = created
    Message.objects.bulk_update(rows, ["created"])


def _reveal(conversation: Conversation) -> None:
    Conversation.objects.filter(id=conversation.id).update(deleted_at=None, updated=timezone.now())


async def import_conversation(user: Any, doc: object) -> Conversation:
    """Create a conversation from an export, all or nothing, new ids throughout.

    `doc` may be (document, zip) from read_import: the zip's files are checked before
    anything is written, and stored with the conversation while it is still hidden.
    """
    archive = None
    if isinstance(doc, tuple):
        doc, archive = doc
    head, messages = parse_import(doc)
    file_plans = await asyncio.to_thread(attachment_transfer.plan, user, messages, archive) if any(
        m["attachments"] for m in messages) else [[] for _ in messages]
    conversation = await database_sync_to_async(_create_hidden)(user, head, messages)
    try:
        for m, files in zip(messages, file_plans, strict=True):
            if files:
                m["kept_attachments"] = await asyncio.to_thread(attachment_transfer.write, user, conversation.id, files)
        now = timezone.now()
        new_ids: dict[str, uuid.UUID] = {}
        planned = []
        for offset, m in enumerate(messages):
            new_id = uuid.uuid4()
            if m["old_id"]:
                new_ids[m["old_id"]] = new_id
            parent_id = new_ids.get(m["parent"]) if m["parent"] else None
            planned.append((new_id, parent_id, m, now + timedelta(microseconds=offset)))
        for start in range(0, len(planned), IMPORT_CHUNK):
            await database_sync_to_async(_write_chunk)(conversation, planned[start : start + IMPORT_CHUNK])
        await database_sync_to_async(_reveal)(conversation)
    except BaseException:
        await database_sync_to_async(Conversation.objects.filter(id=conversation.id).delete)()
        raise
    conversation.deleted_at = None
    return conversation
