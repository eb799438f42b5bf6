"""The one interface every provider family implements.

A family module exposes ``async def stream(target, request) -> AsyncIterator[Event]``.
Vendor-shaped chunks never cross this boundary: callers only ever see the small closed
set of events below and :class:`ProviderError`. Nothing here touches Django, so adapters
can be tested (and later reused by an OpenAI-compatible gateway) without a project.
"""

from __future__ import annotations

import dataclasses
import enum
import secrets
from collections.abc import AsyncIterator, Mapping
from typing import Literal, Protocol

Role = Literal["system", "user", "assistant"]


@dataclasses.dataclass(frozen=True, slots=True)
class TextPart:
    """Text placed among other parts (an API caller's interleaved content)."""

    text: str


@dataclasses.dataclass(frozen=True, slots=True)
class ImagePart:
    """An image the model should see: checked, re-encoded bytes and their media type.

    ``media_type`` is one of image/png, image/jpeg, image/webp, image/gif; each family
    encodes ``data`` itself (a data URL, a base64 source, inline data, an images array).
    """

    media_type: str
    data: bytes = dataclasses.field(repr=False)
    name: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class DocumentPart:
    """A document given as context: its name and its text, made on Parley's side.

    ``data`` is the original file, set only where the family reads that kind of file
    natively (Anthropic's PDF ``document`` blocks); every other family gets ``text``
    wrapped with the file name (``providers.content.document_text``).
    """

    name: str
    text: str = dataclasses.field(repr=False)
    media_type: str = "text/plain"
    data: bytes | None = dataclasses.field(default=None, repr=False)


Part = TextPart | ImagePart | DocumentPart
NO_PARTS: tuple[Part, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class ChatMessage:
    """One turn. ``parts`` (attachments, or an API caller's content array) come first, in
    order, and ``content`` after them as the turn's last text. A plain-text turn has no
    parts and costs what it always did: the shared empty tuple, one attribute test."""

    role: Role
    content: str
    parts: tuple[Part, ...] = NO_PARTS


Effort = Literal["low", "medium", "high"]


@dataclasses.dataclass(frozen=True, slots=True)
class Reasoning:
    """Thinking asked of the model, sent in each family's own shape (see docs/providers.md).

    ``enabled=False`` asks for no thinking where the API can say so. ``budget_tokens`` caps
    it where the API takes a budget (Anthropic's manual thinking, Gemini 2.5); ``effort`` is
    the level for APIs that take one (OpenAI-style ``reasoning_effort``, Anthropic's adaptive
    thinking, Gemini 3's ``thinkingLevel``, Ollama's gpt-oss).
    """

    enabled: bool = True
    budget_tokens: int | None = None
    effort: Effort | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class ChatRequest:
    """What Parley asks of a model; every field maps to each family's own names."""

    model: str
    messages: tuple[ChatMessage, ...]
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    reasoning: Reasoning | None = None  # None: ask nothing, the model's own default


@dataclasses.dataclass(frozen=True, slots=True)
class Target:
    """Where and how to call: resolved on the server from an admin's Provider record.

    ``api_key`` is the decrypted secret; it lives only in server memory for one request
    and is deliberately left out of ``repr`` so a traceback or log line cannot print it.
    """

    base_url: str
    api_key: str = dataclasses.field(default="", repr=False)
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict, repr=False)
    connect_timeout: float = 10.0
    # Longest silence (no content, keep-alive comments do not count) before we give up.
    read_timeout: float = 120.0
    first_token_timeout: float = 120.0
    # Family-specific switches from a preset (e.g. which max-tokens field to send).
    quirks: Mapping[str, object] = dataclasses.field(default_factory=dict)
    name: str = ""  # the Provider record's name, for admin-facing messages only


@dataclasses.dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclasses.dataclass(frozen=True, slots=True)
class ReasoningDelta:
    text: str


@dataclasses.dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int | None = None
    output_tokens: int | None = None  # thinking included: it is billed as output
    reasoning_tokens: int | None = None  # of the output, where the provider says


class FinishReason(str, enum.Enum):
    STOP = "stop"
    LENGTH = "length"  # the UI offers Continue
    CONTENT_FILTER = "content_filter"
    TOOL_CALLS = "tool_calls"
    OTHER = "other"


@dataclasses.dataclass(frozen=True, slots=True)
class Done:
    """The provider's own terminator arrived. A stream without one is a failure."""

    finish_reason: FinishReason = FinishReason.STOP
    detail: str = ""  # a user-safe explanation, e.g. why a content filter fired


Event = TextDelta | ReasoningDelta | Usage | Done


class ErrorKind(str, enum.Enum):
    AUTH = "auth"
    RATE_LIMIT = "rate_limit"
    OVERLOADED = "overloaded"
    CONTEXT_LENGTH = "context_length"
    CONTENT_FILTER = "content_filter"
    BAD_REQUEST = "bad_request"
    UNAVAILABLE = "unavailable"
    TIMEOUT = "timeout"
    INCOMPLETE = "incomplete"  # the stream ended without its terminator


_RETRYABLE = {ErrorKind.RATE_LIMIT, ErrorKind.OVERLOADED, ErrorKind.UNAVAILABLE, ErrorKind.TIMEOUT}

_USER_MESSAGES = {
    ErrorKind.AUTH: (
        "The model provider rejected Parley's credentials. An administrator needs to fix this provider's key."
    ),
    ErrorKind.RATE_LIMIT: "The model provider is rate-limiting requests. Try again shortly.",
    ErrorKind.OVERLOADED: "The model provider is overloaded right now. Try again shortly.",
    ErrorKind.CONTEXT_LENGTH: (
        "This conversation is too long for the model's context window. "
        "Start a new chat or pick a model with a larger window."
    ),
    ErrorKind.CONTENT_FILTER: "The model provider's content filter blocked this answer.",
    ErrorKind.BAD_REQUEST: "The model provider refused the request as invalid.",
    ErrorKind.UNAVAILABLE: "The model provider could not be reached or failed. Try again shortly.",
    ErrorKind.TIMEOUT: "The model provider took too long to answer.",
    ErrorKind.INCOMPLETE: "The model provider's stream was cut off before the answer finished.",
}


class ProviderError(Exception):
    """The only exception a family raises. ``message`` is safe to show to a user.

    ``detail`` is for the server log only, and never holds an upstream body verbatim
    (bodies can echo key fragments); ``ref`` ties the two together for an admin.
    ``usage`` is what the provider had reported when the stream failed (Anthropic counts
    the input at ``message_start``), so tokens already billed can still be recorded.
    """

    def __init__(
        self,
        kind: ErrorKind,
        message: str | None = None,
        *,
        detail: str = "",
        status: int | None = None,
        retry_after: float | None = None,
        usage: Usage | None = None,
    ) -> None:
        self.kind = kind
        self.message = message or _USER_MESSAGES[kind]
        self.detail = detail
        self.status = status
        self.retry_after = retry_after
        # What the provider reported before failing (input tokens from a stream's start).
        self.usage: Usage | None = usage
        self.ref = secrets.token_hex(4)
        super().__init__(f"{kind.value}: {self.message}")

    @property
    def retryable(self) -> bool:
        return self.kind in _RETRYABLE


@dataclasses.dataclass(frozen=True, slots=True)
class ModelInfo:
    """One entry of a provider's model list, in one shape for every family."""

    id: str
    display_name: str = ""
    context_window: int | None = None
    vision: bool | None = None  # takes images, where the model list says (None: it does not say)


class Family(Protocol):
    """What a family module looks like (checked structurally, never subclassed)."""

    def stream(self, target: Target, request: ChatRequest) -> AsyncIterator[Event]: ...

    async def list_models(self, target: Target) -> list[ModelInfo]: ...
