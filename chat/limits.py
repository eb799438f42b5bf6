"""Every size limit Parley enforces on user input, and the checks that apply them.

One set of numbers, used by every path that accepts the same thing (a socket frame, an
edit, an import, an in-browser exchange), so a system prompt refused by one is refused by
all. Checks raise Invalid with a message a user can act on; nothing is ever cut silently.
Limits that admins tune come from settings, read on each call so tests can override them.
"""

from __future__ import annotations

import json
import math
from typing import Any

from django.conf import settings

TITLE_CHARS = 200
SYSTEM_PROMPT_CHARS = 20_000
MAX_TOKENS = 1_000_000
TEMPERATURE = (0.0, 2.0)
TOP_P = (0.0, 1.0)
IMPORT_MESSAGES = 10_000
MODEL_NAME_CHARS = 200
# Generous for a message of PARLEY_MAX_MESSAGE_CHARS (4 bytes a character at worst) plus
# its options; anything bigger is refused before it is parsed.
FRAME_BYTES_PER_CHAR = 4
FRAME_OVERHEAD_BYTES = 4 * SYSTEM_PROMPT_CHARS + 16_384


class Invalid(ValueError):
    """Input a user can fix; the message says how and is safe to show."""


def message_chars() -> int:
    return int(settings.PARLEY_MAX_MESSAGE_CHARS)


def stored_message_chars() -> int:
    """An answer may be longer than a question: imports and exchanges allow ten times more."""
    return message_chars() * 10


def import_bytes() -> int:
    return int(settings.PARLEY_IMPORT_MAX_BYTES)


def frame_bytes() -> int:
    """The largest WebSocket frame Parley reads (its own limit, answered with `too_large`)."""
    return message_chars() * FRAME_BYTES_PER_CHAR + FRAME_OVERHEAD_BYTES


def loads(raw: bytes | str, what: str = "The request body") -> Any:
    """Parse JSON, turning every way it can fail into Invalid (never a 500).

    Deep nesting (``[`` × 100,000) makes the decoder raise RecursionError, which is not a
    ValueError: uncaught, it crashed the request or the socket.
    """
    try:
        return json.loads(raw)
    except RecursionError:
        raise Invalid(f"{what} is nested too deeply.") from None
    except (ValueError, UnicodeDecodeError):
        raise Invalid(f"{what} is not valid JSON.") from None


def text(value: object, name: str, limit: int, *, required: bool = False, where: str = "") -> str:
    """A string of at most ``limit`` characters that can be stored (no lone surrogates)."""
    at = f"{where}: " if where else ""
    if not isinstance(value, str):
        raise Invalid(f"{at}`{name}` must be a string.")
    if required and not value.strip():
        raise Invalid(f"{at}`{name}` is empty.")
    if len(value) > limit:
        raise Invalid(f"{at}`{name}` is longer than {limit:,} characters.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        # JSON can carry "\ud800" escapes; no database can store the result.
        raise Invalid(f"{at}`{name}` contains characters that are not valid Unicode.") from None
    return value


def number(value: object, name: str, low: float, high: float, *, whole: bool = False) -> float | int | None:
    """None, or a finite number in [low, high] (a whole one if ``whole``). `true` is not a number."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise Invalid(f"`{name}` must be a number.")
    if whole and not float(value).is_integer():
        raise Invalid(f"`{name}` must be a whole number.")
    if not low <= value <= high:
        raise Invalid(f"`{name}` must be between {low:g} and {high:g}.")
    return int(value) if whole else float(value)


def temperature(value: object, name: str = "temperature") -> float | None:
    return number(value, name, *TEMPERATURE)  # type: ignore[return-value]


def top_p(value: object, name: str = "top_p") -> float | None:
    return number(value, name, *TOP_P)  # type: ignore[return-value]


def max_tokens(value: object, name: str = "max_tokens") -> int | None:
    return number(value, name, 1, MAX_TOKENS, whole=True)  # type: ignore[return-value]


def system_prompt(value: object, name: str = "system_prompt") -> str:
    return text(value, name, SYSTEM_PROMPT_CHARS)


def title(value: object, name: str = "title") -> str:
    """A title with its whitespace folded; empty is refused."""
    folded = " ".join(text(value, name, 10 * TITLE_CHARS).split())
    if not folded:
        raise Invalid(f"`{name}` must be a non-empty string.")
    if len(folded) > TITLE_CHARS:
        raise Invalid(f"`{name}` is longer than {TITLE_CHARS} characters.")
    return folded


# ---- attachments (chat/attachments/) --------------------------------------------------------
# A decompression bomb is refused before it is decoded: 50 megapixels is a 7,000 × 7,000 photo.
IMAGE_MAX_PIXELS = 50_000_000
PDF_MAX_PAGES = 2_000
# More text than any model's context: a bigger document could never be sent whole.
DOCUMENT_MAX_CHARS = 4_000_000
# What a model is charged for an image, as far as the context check goes: about (w × h) / 750
# tokens (Anthropic's rule; OpenAI's tiles and Gemini's 258 a tile come out at or below it),
# and never more than a 1,568-pixel square image costs, since every API shrinks larger ones.
IMAGE_TOKENS_MAX = 1_600
# A PDF read natively costs its pages as images besides its text.
PDF_PAGE_TOKENS = 1_500


def attachment_bytes() -> int:
    """The largest single file, as uploaded (an image is checked before it is re-encoded)."""
    return int(settings.PARLEY_ATTACHMENT_MAX_BYTES)


def attachments_per_message() -> int:
    return int(settings.PARLEY_ATTACHMENTS_PER_MESSAGE)


def attachment_message_bytes() -> int:
    """All the files of one message together, as stored."""
    return int(settings.PARLEY_ATTACHMENT_MESSAGE_BYTES)


def attachment_user_bytes() -> int:
    """Everything one user keeps, as stored."""
    return int(settings.PARLEY_ATTACHMENT_USER_BYTES)


def attachment_user_files() -> int:
    return int(settings.PARLEY_ATTACHMENT_USER_FILES)


def image_max_edge() -> int:
    """Images are shrunk to this many pixels on their long side when kept (0: never)."""
    return int(settings.PARLEY_IMAGE_MAX_EDGE)


def default_context_tokens() -> int:
    """A model's context window when its admin has not given one (ChatModel.context_window)."""
    return int(settings.PARLEY_DEFAULT_CONTEXT_TOKENS)


def import_archive_bytes() -> int:
    """An export zip with its attachments (its conversation.json is still held to import_bytes)."""
    return int(settings.PARLEY_IMPORT_MAX_ARCHIVE_BYTES)


def megabytes(n: int) -> str:
    """A size in the unit people read: 48 kB, 4.2 MB, 120 MB."""
    if n < 1_000_000:
        return f"{max(1, round(n / 1000))} kB"
    return f"{n / 1_000_000:,.1f} MB" if n < 10_000_000 else f"{n / 1_000_000:,.0f} MB"
