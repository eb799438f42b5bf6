"""Attachments in exports and imports.

Export: `export.zip` holds `conversation.json` (the same document as export.json), a
`conversation.md` whose links open the files beside it, and each file at
`attachments/<id>/<name>`. export.json alone lists the files (names, types, sizes) without
their bytes, and export.md links them on the server (for their owner only).

Import: a zip is read member by member, never unpacked: `conversation.json` is held to
PARLEY_IMPORT_MAX_BYTES, each file to the per-file limit (read with a cap, whatever the
zip claims), and every file is checked again as an upload would be (its bytes decide what
it is; images are re-encoded), then the owner's room is checked for all of them together —
all before anything is written. A plain JSON import keeps the files' names, marked missing.
"""

from __future__ import annotations

import io
import tempfile
import uuid
import zipfile
from typing import IO, Any

from chat import limits
from chat.attachments import files, writes
from chat.attachments.inspect import Inspected, inspect, safe_name
from chat.limits import Invalid
from chat.models import Attachment, Conversation, Message

ARCHIVE_DOC = "conversation.json"
ARCHIVE_MARKDOWN = "conversation.md"
ZIP_MAGIC = b"PK\x03\x04"
_ALREADY_COMPRESSED = {"image/png", "image/jpeg", "image/webp", "image/gif", "application/pdf"}


def member(summary: dict[str, Any]) -> str:
    return f"attachments/{summary['id']}/{safe_name(str(summary.get('name', 'file')))}"


# ---- export -------------------------------------------------------------------------------

def export_zip(conversation: Conversation, messages: list[Message], doc: str, markdown: str) -> IO[bytes]:
    """The zip, spooled to disk past a few MB; the caller streams it and closes it."""
    out = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115 (the response closes it)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(ARCHIVE_DOC, doc)
        archive.writestr(ARCHIVE_MARKDOWN, markdown)
        stored = {str(a.id): a for a in Attachment.objects.filter(conversation=conversation)}
        for message in messages:
            for summary in message.attachments or []:
                found = stored.get(summary.get("id"))
                if found is None:
                    continue
                kind = zipfile.ZIP_STORED if found.media_type in _ALREADY_COMPRESSED else zipfile.ZIP_DEFLATED
                archive.writestr(zipfile.ZipInfo(member(summary)), files.read(found.file.name), compress_type=kind)
    out.seek(0)
    return out


def markdown_links(summaries: list[dict[str, Any]], link: Any) -> list[str]:
    """Markdown lines for a message's files; `link(summary)` gives each one's address."""
    lines = []
    for s in summaries:
        name = str(s.get("name", "file")).replace("]", "\\]")
        bang = "!" if s.get("kind") == "image" else ""
        lines.append(f"{bang}[{name}]({link(s)})")
    return lines


# ---- import ----------------------------------------------------------------------------------

def is_zip(head: bytes) -> bool:
    return head.startswith(ZIP_MAGIC)


def open_archive(upload: IO[bytes]) -> tuple[Any, zipfile.ZipFile]:
    """The export document of a zip, and the zip for its files; Invalid if it is not one."""
    try:
        archive = zipfile.ZipFile(upload)
        info = archive.getinfo(ARCHIVE_DOC)
    except (zipfile.BadZipFile, KeyError, OSError):
        raise Invalid(f"Not a Parley export zip (it must hold {ARCHIVE_DOC}).") from None
    cap = limits.import_bytes()
    if info.file_size > cap:
        raise Invalid(f"{ARCHIVE_DOC} is larger than {cap:,} bytes.")
    return limits.loads(_read(archive, ARCHIVE_DOC, cap), "The file"), archive


def _read(archive: zipfile.ZipFile, name: str, cap: int) -> bytes:
    try:
        with archive.open(name) as f:
            data = f.read(cap + 1)  # what the zip says of sizes is not trusted
    except (zipfile.BadZipFile, OSError, RuntimeError, EOFError):
        raise Invalid(f"{name} in the zip is damaged.") from None
    if len(data) > cap:
        raise TooLargeInZip(name, cap)
    return data


class TooLargeInZip(writes.TooLarge):
    def __init__(self, name: str, cap: int) -> None:
        super().__init__(f"{name} in the zip is larger than {limits.megabytes(cap)}.")


def summaries(doc: object, where: str) -> list[dict[str, Any]]:
    """A message's `attachments` from an export: names and ids only, checked."""
    if doc is None:
        return []
    if not isinstance(doc, list) or len(doc) > limits.attachments_per_message():
        raise Invalid(f"{where}: `attachments` must be a list of at most {limits.attachments_per_message()}.")
    out = []
    for item in doc:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not isinstance(item.get("name"), str):
            raise Invalid(f"{where}: each attachment needs an `id` and a `name`.")
        out.append({"id": item["id"], "name": safe_name(item["name"]), "kind": str(item.get("kind", ""))[:10]})
    return out


Planned = list[tuple[dict[str, Any], Inspected | None]]


def plan(user: Any, messages: list[dict[str, Any]], archive: zipfile.ZipFile | None) -> list[Planned]:
    """Read and check every file of an import (off the database thread), before any write."""
    out: list[Planned] = []
    total = 0
    names = set(archive.namelist()) if archive is not None else set()
    for message in messages:
        row: Planned = []
        for summary in message["attachments"]:
            path = member(summary)
            if archive is None or path not in names:
                row.append((summary, None))
                continue
            data = _read(archive, path, limits.attachment_bytes())  # its message names the member
            try:
                kept = inspect(summary["name"], data)
            except Invalid as exc:
                raise Invalid(f"{path}: {exc}") from None
            total += len(kept.data)
            row.append((summary, kept))
        out.append(row)
    if total:
        writes.check_room(user, total)
    return out


def write(user: Any, conversation_id: uuid.UUID, planned: Planned) -> list[dict[str, Any]]:
    """Store one message's files in the new conversation; the summaries its row keeps."""
    kept_summaries = []
    for summary, kept in planned:
        if kept is None:
            kept_summaries.append({"id": str(uuid.uuid4()), "name": summary["name"],
                                   "kind": summary["kind"], "missing": True})
            continue
        attachment = writes.store(user, kept, conversation_id=conversation_id)
        kept_summaries.append(attachment.summary())
    return kept_summaries


def reader(raw: bytes) -> IO[bytes]:
    return io.BytesIO(raw)
