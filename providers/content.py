"""What every family does alike with a turn's parts: their order, a document as text, base64.

Each family module maps parts to its own wire shape (OpenAI content parts, Anthropic
blocks, Gemini parts, Ollama's `images`); the text a document becomes is made here once,
so every family, the in-browser models (static/parley/attachments.js) and the context
estimate (chat/attachments/context.py) see the same words.
"""

from __future__ import annotations

import base64
import re

from providers.base import ChatMessage, DocumentPart, ImagePart, Part, TextPart

_UNSAFE_NAME = re.compile(r'[\x00-\x1f"<>]')


def pieces(message: ChatMessage) -> tuple[Part, ...]:
    """The turn's parts in order, then its content as the last text (when it has any)."""
    if not message.content:
        return message.parts
    return (*message.parts, TextPart(message.content))


def document_text(part: DocumentPart) -> str:
    """A document as the model reads it: its text inside a tag that carries the file name."""
    name = _UNSAFE_NAME.sub("_", part.name) or "document"
    return f'<document name="{name}">\n{part.text}\n</document>'


def text_of(part: Part) -> str:
    """A text or document part's words; an image has none."""
    if isinstance(part, TextPart):
        return part.text
    if isinstance(part, DocumentPart):
        return document_text(part)
    return ""


def flat_text(message: ChatMessage) -> str:
    """Every text and document of a turn joined by blank lines (for APIs that take one string)."""
    if not message.parts:
        return message.content
    return "\n\n".join(t for t in (text_of(p) for p in pieces(message)) if t)


def images(message: ChatMessage) -> list[ImagePart]:
    return [p for p in message.parts if isinstance(p, ImagePart)]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def data_url(media_type: str, data: bytes) -> str:
    return f"data:{media_type};base64,{b64(data)}"


def native_pdf(part: Part) -> bool:
    """A PDF whose file came along: the family may send the file instead of its text."""
    return isinstance(part, DocumentPart) and part.data is not None and part.media_type == "application/pdf"


# ---- for callers that receive OpenAI-shaped content (the OpenAI-compatible API) ---------------

_DATA_URL = re.compile(r"data:(image/(?:png|jpeg|webp|gif));base64,(.*)", re.DOTALL)


class UnsupportedPart(ValueError):
    """A content part this mapping does not take; the message says which, safe to show."""


def from_openai_content(content: object) -> tuple[str, tuple[Part, ...]]:
    """An OpenAI ``content`` (a string, or a list of ``text``/``image_url`` parts) as this
    module's (content, parts): text parts keep their place among the images as TextParts.

    Only base64 data URLs are taken for images: fetching a remote URL on a caller's behalf
    would let it make Parley reach any address. The bytes are decoded here and nothing more:
    a caller must still check them (chat.attachments.inspect re-encodes images) before sending.
    """
    if isinstance(content, str):
        return content, ()
    if not isinstance(content, list):
        raise UnsupportedPart("`content` must be a string or a list of parts.")
    parts: list[Part] = []
    for index, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            parts.append(TextPart(part["text"]))
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            found = _DATA_URL.fullmatch(url) if isinstance(url, str) else None
            if found is None:
                raise UnsupportedPart(f"content[{index}]: images must be base64 data URLs (PNG, JPEG, WebP, GIF).")
            try:
                data = base64.b64decode(found.group(2), validate=True)
            except ValueError:
                raise UnsupportedPart(f"content[{index}]: the image is not valid base64.") from None
            parts.append(ImagePart(found.group(1), data))
        else:
            raise UnsupportedPart(f"content[{index}]: parts of type {str(kind)[:40]!r} are not taken.")
    if len(parts) == 1 and isinstance(parts[0], TextPart):
        return parts[0].text, ()  # a lone text part is a plain turn: keep it as cheap as one
    return "", tuple(parts)
