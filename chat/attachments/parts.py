"""A branch's attachments as provider parts, and the checks a send with files must pass.

Before any upstream call: the files are the sender's (chat.access), within the per-message
limits, images only for a model that takes them, PDFs with no text only for a model that
reads PDFs itself; and a request holding documents must fit the model's context window
(its `context_window`, else PARLEY_DEFAULT_CONTEXT_TOKENS) — refused with the numbers,
never cut. Earlier images shown to a model that cannot see are named in words instead.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from django.contrib.auth.models import User

from chat import limits
from chat.access import access_attachments
from chat.attachments import files
from chat.generation.job import estimate_tokens
from chat.models import Attachment, ChatModel, Kind
from providers import content
from providers.base import ChatMessage, ChatRequest, DocumentPart, ImagePart, Part, TextPart


class Refused(Exception):
    """A send the model cannot take as it stands; ``code`` is the error frame's."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def for_send(user: User, ids: Sequence[str], conversation_id: object | None,
             model: ChatModel) -> list[Attachment]:
    """The files of a new message, checked for this model (raises NotFound or Refused)."""
    attachments = access_attachments(user, list(ids), conversation_id)
    if len(attachments) > limits.attachments_per_message():
        raise Refused("too_large", f"At most {limits.attachments_per_message()} files go with one message.")
    total = sum(a.size for a in attachments)
    if total > limits.attachment_message_bytes():
        raise Refused("too_large", f"These files come to {limits.megabytes(total)}; one message may carry "
                                   f"{limits.megabytes(limits.attachment_message_bytes())}.")
    images = [a.name for a in attachments if a.kind == Kind.IMAGE]
    if images and not model.takes_images():
        raise Refused("attachment_unsupported", f"{model.name} cannot take images ({', '.join(images)}). "
                                                "Pick a model that can, or remove the images.")
    blank = [a.name for a in attachments if a.kind == Kind.DOCUMENT and not a.text.strip()]
    if blank and not model.reads_pdfs():
        raise Refused("attachment_unsupported", f"No text could be read from {', '.join(blank)} (a scanned PDF?), "
                                                f"and {model.name} reads only the text of documents.")
    return attachments


def summaries(attachments: Iterable[Attachment]) -> list[dict[str, Any]]:
    return [a.summary() for a in attachments]


def of(attachments: Sequence[Attachment], model: ChatModel) -> tuple[Part, ...]:
    """The parts one message's files become for this model."""
    return tuple(_part(a, model) for a in attachments)


def for_rows(conversation_id: uuid.UUID, summaries_by_message: dict[uuid.UUID, list[dict[str, Any]]],
             model: ChatModel | None) -> dict[uuid.UUID, tuple[Part, ...]]:
    """Parts for the messages of a branch that had files (one query for all of them).

    Only this conversation's files are read: a summary naming any other id (an import
    written by hand) finds nothing and is told as removed.
    """
    ids = [s.get("id") for listed in summaries_by_message.values() for s in listed]
    wanted = {i for i in ids if isinstance(i, str) and _is_uuid(i)}
    rows = {str(a.id): a for a in Attachment.objects.filter(id__in=wanted, conversation_id=conversation_id)}
    out = {}
    for message_id, listed in summaries_by_message.items():
        out[message_id] = tuple(
            _part(rows[s["id"]], model) if s.get("id") in rows else _gone(s) for s in listed
        )
    return out


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _part(a: Attachment, model: ChatModel | None) -> Part:
    if a.kind == Kind.IMAGE:
        if model is not None and not model.takes_images():
            return TextPart(f"[An image, {a.name}, was attached here; this model cannot see images.]")
        return ImagePart(a.media_type, files.read(a.file.name), a.name)
    whole = a.media_type == "application/pdf" and model is not None and model.reads_pdfs()
    return DocumentPart(a.name, a.text or "(no text could be read from this document)", a.media_type,
                        files.read(a.file.name) if whole else None)


def _gone(summary: dict[str, Any]) -> Part:
    return TextPart(f"[A file, {summary.get('name', 'unnamed')}, was attached here and has since been removed.]")


# ---- the context window ------------------------------------------------------------------

def part_tokens(part: Part) -> int:
    if isinstance(part, ImagePart):
        return limits.IMAGE_TOKENS_MAX  # an upper bound: images are kept at most 2,048 px a side
    if isinstance(part, DocumentPart):
        text = estimate_tokens(content.document_text(part))
        if content.native_pdf(part) and part.data is not None:
            return max(text, _pages(part.data) * limits.PDF_PAGE_TOKENS)
        return text
    return estimate_tokens(part.text)


def _pages(data: bytes) -> int:
    """Pages of a PDF that was read once already (on upload): only its page tree is walked."""
    import io

    import pypdf

    try:
        return max(1, len(pypdf.PdfReader(io.BytesIO(data)).pages))
    except Exception:  # noqa: BLE001 — it was read on upload; should it fail now, count it as one page
        return 1


def message_tokens(message: ChatMessage) -> int:
    return estimate_tokens(message.content) + sum(part_tokens(p) for p in message.parts)


def check_context(model: ChatModel, request: ChatRequest) -> None:
    """Refuse a request with documents that the model's context window cannot hold."""
    documents = [p for m in request.messages for p in m.parts if isinstance(p, DocumentPart)]
    if not documents:
        return
    window = model.context_window or limits.default_context_tokens()
    needed = sum(message_tokens(m) for m in request.messages)
    answer = request.max_tokens or 0
    if needed + answer <= window:
        return
    biggest = max(documents, key=part_tokens)
    whose = "its context window" if model.context_window else "the default context window for models without one"
    room = f" plus up to {answer:,} for the answer" if answer else ""
    raise Refused(
        "context_length",
        f"{biggest.name} is about {part_tokens(biggest):,} tokens. With the rest of this conversation the model "
        f"would have to read about {needed:,} tokens{room}, but {model.name} reads at most {window:,} "
        f"({whose}). Remove the file, start a new chat, or pick a model with a larger window.",
    )
