"""Parsing client frames (protocol v1) into typed commands, with user-facing errors.

Pure functions: no database, no socket. A bad frame becomes a FrameError whose code and
message go back to the client in an `error` frame; the socket stays open.
"""

from __future__ import annotations

import dataclasses
import json
import math
import uuid
from typing import Any

from django.conf import settings

from chat.services import AFTER_NEWEST, Options

PROTOCOL_VERSION = 1


class FrameError(Exception):
    def __init__(self, code: str, message: str, client_id: str | None = None, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.client_id, self.retry_after = code, message, client_id, retry_after

    def frame(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "error", "code": self.code, "message": self.message}
        if self.client_id:
            out["client_id"] = self.client_id
        if self.retry_after is not None:
            out["retry_after"] = self.retry_after
        return out


# `parent` absent: after the conversation's newest message. None: a new first message (an
# edit of the first one). An id: after that message (an edit further down: a new branch).

@dataclasses.dataclass
class Send:
    client_id: uuid.UUID
    conversation: str | None
    model: str
    content: str
    options: Options = dataclasses.field(default_factory=Options)
    parent: str | None = AFTER_NEWEST


@dataclasses.dataclass
class Regenerate:
    """Another answer to the same user message (also how Retry after an error works)."""

    client_id: uuid.UUID
    message: str
    model: str | None = None
    options: Options = dataclasses.field(default_factory=Options)


@dataclasses.dataclass
class Continue:
    """Carry on an answer that stopped early (length limit, Stop, error, restart)."""

    client_id: uuid.UUID
    message: str


@dataclasses.dataclass
class Stop:
    conversation: str


@dataclasses.dataclass
class Resume:
    message: str
    after_seq: int


@dataclasses.dataclass
class Ping:
    pass


Command = Send | Regenerate | Continue | Stop | Resume | Ping


def _uuid_field(frame: dict[str, Any], name: str, client_id: str | None = None) -> str:
    value = frame.get(name)
    if isinstance(value, str):
        try:
            return str(uuid.UUID(value))
        except ValueError:
            pass
    raise FrameError("bad_frame", f"`{name}` must be a UUID.", client_id)


def _number(options: dict[str, Any], name: str, lo: float, hi: float, client_id: str) -> float | None:
    value = options.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise FrameError("bad_frame", f"`options.{name}` must be a number.", client_id)
    if not lo <= value <= hi:
        raise FrameError("bad_frame", f"`options.{name}` must be between {lo:g} and {hi:g}.", client_id)
    return float(value)


def _options(frame: dict[str, Any], client_id: str) -> Options:
    options = frame.get("options") or {}
    if not isinstance(options, dict):
        raise FrameError("bad_frame", "`options` must be an object.", client_id)
    max_tokens = _number(options, "max_tokens", 1, 1_000_000, client_id)
    if max_tokens is not None and not float(max_tokens).is_integer():
        raise FrameError("bad_frame", "`options.max_tokens` must be a whole number.", client_id)
    system = options.get("system")
    if system is not None and not isinstance(system, str):
        raise FrameError("bad_frame", "`options.system` must be text.", client_id)
    return Options(
        temperature=_number(options, "temperature", 0, 2, client_id),
        max_tokens=int(max_tokens) if max_tokens is not None else None,
        top_p=_number(options, "top_p", 0, 1, client_id),
        system=system,
    )


def _send(frame: dict[str, Any]) -> Send:
    client_id = _uuid_field(frame, "client_id")
    conversation = frame.get("conversation")
    if conversation is not None:
        conversation = _uuid_field(frame, "conversation", client_id)
    model = frame.get("model")
    if not isinstance(model, str) or not model:
        raise FrameError("bad_frame", "`model` is required.", client_id)
    content = frame.get("content")
    if not isinstance(content, str) or not content.strip():
        raise FrameError("bad_frame", "The message is empty.", client_id)
    if len(content) > settings.PARLEY_MAX_MESSAGE_CHARS:
        raise FrameError(
            "too_large",
            f"The message is longer than {settings.PARLEY_MAX_MESSAGE_CHARS:,} characters.",
            client_id,
        )
    parent: str | None = AFTER_NEWEST
    if "parent" in frame:
        parent = None if frame["parent"] is None else _uuid_field(frame, "parent", client_id)
        if conversation is None:
            raise FrameError("bad_frame", "`parent` needs a `conversation`.", client_id)
    return Send(uuid.UUID(client_id), conversation, model, content, _options(frame, client_id), parent)


def _regenerate(frame: dict[str, Any]) -> Regenerate:
    client_id = _uuid_field(frame, "client_id")
    message = _uuid_field(frame, "message", client_id)
    model = frame.get("model")
    if model is not None and (not isinstance(model, str) or not model):
        raise FrameError("bad_frame", "`model` must be a model id.", client_id)
    return Regenerate(uuid.UUID(client_id), message, model, _options(frame, client_id))


def _continue(frame: dict[str, Any]) -> Continue:
    client_id = _uuid_field(frame, "client_id")
    return Continue(uuid.UUID(client_id), _uuid_field(frame, "message", client_id))


def parse(text: str | None) -> Command:
    if text is None:
        raise FrameError("bad_frame", "Frames must be JSON text, not binary.")
    try:
        frame = json.loads(text)
    except ValueError:
        raise FrameError("bad_frame", "The frame is not valid JSON.") from None
    if not isinstance(frame, dict):
        raise FrameError("bad_frame", "A frame must be a JSON object.")
    kind = frame.get("type")
    if kind == "send":
        return _send(frame)
    if kind == "regenerate":
        return _regenerate(frame)
    if kind == "continue":
        return _continue(frame)
    if kind == "stop":
        return Stop(conversation=_uuid_field(frame, "conversation"))
    if kind == "resume":
        after = frame.get("after_seq", 0)
        if isinstance(after, bool) or not isinstance(after, int) or after < 0:
            raise FrameError("bad_frame", "`after_seq` must be a whole number.")
        return Resume(message=_uuid_field(frame, "message"), after_seq=after)
    if kind == "ping":
        return Ping()
    raise FrameError("unknown_type", f"Unknown frame type {str(kind)[:40]!r}.")
