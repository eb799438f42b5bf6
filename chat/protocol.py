"""Protocol v1 of the chat socket, in one place: every command parsed, every frame built.

docs/protocol.md describes the same frames for people. Parsing is pure (no database, no
socket): a bad command becomes a FrameError, answered with an `error` frame on a socket
that stays open. Outgoing frames are `Frame` objects: their data for callers that read
fields (an HTTP API maps them to its own shape), and their JSON text, made once however
many sockets receive it. Delta frames, one per token at worst, splice their fixed part
(conversation and message ids), serialised once per answer, around the changing text.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from typing import Any

from chat import limits

PROTOCOL_VERSION = 1
AFTER_NEWEST = "newest"  # a send's default place: after the conversation's newest message


def _dumps(data: Any) -> str:
    # ASCII escapes, not raw UTF-8: a provider may split a surrogate pair across two chunks,
    # and a lone surrogate cannot be encoded as UTF-8 on the wire; escaped, the page rejoins it.
    return json.dumps(data, separators=(",", ":"))


class Frame:
    """One outgoing frame: `data` for callers that read it, `json()` for the wire."""

    __slots__ = ("_json", "data")

    def __init__(self, data: dict[str, Any], encoded: str | None = None) -> None:
        self.data = data
        self._json = encoded

    @property
    def type(self) -> str:
        return str(self.data["type"])

    def json(self) -> str:
        if self._json is None:
            self._json = _dumps(self.data)
        return self._json

    def __repr__(self) -> str:
        return f"Frame({self.json()[:120]})"


# ---- errors --------------------------------------------------------------------------

class FrameError(Exception):
    """A command refused; `frame()` is the `error` frame that says why."""

    def __init__(
        self, code: str, message: str, client_id: object = None, retry_after: int | None = None
    ) -> None:
        super().__init__(message)
        self.code, self.message, self.retry_after = code, message, retry_after
        self.client_id = str(client_id) if client_id else None

    def frame(self) -> Frame:
        return error(self.code, self.message, self.client_id, self.retry_after)


# ---- commands ------------------------------------------------------------------------

@dataclasses.dataclass
class Options:
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    system: str | None = None


@dataclasses.dataclass
class Send:
    """A new user message. `parent`: AFTER_NEWEST, None (a new first message: an edit of the
    first one) or a message id (an edit further down: a new branch)."""

    client_id: uuid.UUID
    conversation: str | None
    model: str
    content: str
    options: Options = dataclasses.field(default_factory=Options)
    parent: str | None = AFTER_NEWEST
    attachments: tuple[str, ...] = ()  # ids from POST /api/attachments/, in the order shown


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
# Commands that change something: the socket re-checks its session before each one.
STATE_CHANGING = (Send, Regenerate, Continue, Stop)


def _uuid_field(frame: dict[str, Any], name: str, client_id: str | None = None) -> str:
    value = frame.get(name)
    if isinstance(value, str):
        try:
            return str(uuid.UUID(value))
        except ValueError:
            pass
    raise FrameError("bad_frame", f"`{name}` must be a UUID.", client_id)


def _options(frame: dict[str, Any], client_id: str) -> Options:
    options = frame.get("options") or {}
    if not isinstance(options, dict):
        raise FrameError("bad_frame", "`options` must be an object.", client_id)
    try:
        system = options.get("system")
        return Options(
            temperature=limits.temperature(options.get("temperature"), "options.temperature"),
            max_tokens=limits.max_tokens(options.get("max_tokens"), "options.max_tokens"),
            top_p=limits.top_p(options.get("top_p"), "options.top_p"),
            system=None if system is None else limits.system_prompt(system, "options.system"),
        )
    except limits.Invalid as exc:
        code = "too_large" if "longer than" in str(exc) else "bad_frame"
        raise FrameError(code, str(exc), client_id) from None


def _model(frame: dict[str, Any], client_id: str, required: bool) -> str | None:
    model = frame.get("model")
    if model is None and not required:
        return None
    if not isinstance(model, str) or not model:
        raise FrameError("bad_frame", "`model` is required.", client_id)
    try:
        return str(uuid.UUID(model))
    except ValueError:
        # A model the catalogue cannot have is unavailable, not a missing object.
        raise FrameError("model_unavailable", "That model is not available to you.", client_id) from None


def _send(frame: dict[str, Any]) -> Send:
    client_id = _uuid_field(frame, "client_id")
    conversation = frame.get("conversation")
    if conversation is not None:
        conversation = _uuid_field(frame, "conversation", client_id)
    if not isinstance(frame.get("model"), str) or not frame["model"]:
        raise FrameError("bad_frame", "`model` is required.", client_id)
    attachments = _attachments(frame, client_id)
    content = frame.get("content", "")
    if not isinstance(content, str) or (not content.strip() and not attachments):
        raise FrameError("bad_frame", "The message is empty.", client_id)
    try:
        limits.text(content, "content", limits.message_chars())
    except limits.Invalid:
        if len(content) > limits.message_chars():
            raise FrameError(
                "too_large", f"The message is longer than {limits.message_chars():,} characters.", client_id
            ) from None
        raise FrameError(
            "bad_frame", "The message contains characters that are not valid Unicode.", client_id
        ) from None
    parent: str | None = AFTER_NEWEST
    if "parent" in frame:
        parent = None if frame["parent"] is None else _uuid_field(frame, "parent", client_id)
        if conversation is None:
            raise FrameError("bad_frame", "`parent` needs a `conversation`.", client_id)
    options = _options(frame, client_id)
    model = _model(frame, client_id, required=True)
    assert model is not None
    return Send(uuid.UUID(client_id), conversation, model, content, options, parent, attachments)


def _attachments(frame: dict[str, Any], client_id: str) -> tuple[str, ...]:
    """`attachments`: ids of files uploaded before the send, each once, at most the limit."""
    raw = frame.get("attachments") or []
    if not isinstance(raw, list):
        raise FrameError("bad_frame", "`attachments` must be a list of ids.", client_id)
    if len(raw) > limits.attachments_per_message():
        raise FrameError("too_large", f"At most {limits.attachments_per_message()} files go with one message.",
                         client_id)
    ids: list[str] = []
    for value in raw:
        try:
            ids.append(str(uuid.UUID(value)) if isinstance(value, str) else "")
        except ValueError:
            ids.append("")
        if not ids[-1]:
            raise FrameError("bad_frame", "`attachments` must be a list of ids.", client_id)
    if len(set(ids)) != len(ids):
        raise FrameError("bad_frame", "A file is attached twice.", client_id)
    return tuple(ids)


def _regenerate(frame: dict[str, Any]) -> Regenerate:
    client_id = _uuid_field(frame, "client_id")
    message = _uuid_field(frame, "message", client_id)
    model = _model(frame, client_id, required=False)
    return Regenerate(uuid.UUID(client_id), message, model, _options(frame, client_id))


def _continue(frame: dict[str, Any]) -> Continue:
    client_id = _uuid_field(frame, "client_id")
    return Continue(uuid.UUID(client_id), _uuid_field(frame, "message", client_id))


def _resume(frame: dict[str, Any]) -> Resume:
    after = frame.get("after_seq", 0)
    if isinstance(after, bool) or not isinstance(after, int) or after < 0:
        raise FrameError("bad_frame", "`after_seq` must be a whole number.")
    return Resume(message=_uuid_field(frame, "message"), after_seq=after)


_PARSERS = {
    "send": _send,
    "regenerate": _regenerate,
    "continue": _continue,
    "stop": lambda frame: Stop(conversation=_uuid_field(frame, "conversation")),
    "resume": _resume,
    "ping": lambda frame: Ping(),
}


def parse(text: str | None) -> Command:
    """One client frame → a typed command, or FrameError."""
    if text is None:
        raise FrameError("bad_frame", "Frames must be JSON text, not binary.")
    if len(text) > limits.frame_bytes():
        # Still read it, for its client id: the sender can then tell which message was refused.
        try:
            big = limits.loads(text, "The frame")
        except limits.Invalid:
            big = None
        client_id = big.get("client_id") if isinstance(big, dict) and isinstance(big.get("client_id"), str) else None
        raise FrameError("too_large", f"The message is too long ({len(text):,} characters in all).", client_id)
    try:
        frame = limits.loads(text, "The frame")
    except limits.Invalid as exc:
        raise FrameError("bad_frame", str(exc)) from None
    if not isinstance(frame, dict):
        raise FrameError("bad_frame", "A frame must be a JSON object.")
    kind = frame.get("type")
    parser = _PARSERS.get(kind) if isinstance(kind, str) else None
    if parser is None:
        raise FrameError("unknown_type", f"Unknown frame type {str(kind)[:40]!r}.")
    return parser(frame)  # type: ignore[no-any-return,return-value]


# ---- frames the server sends ----------------------------------------------------------

def hello(username: str, server: str = "") -> Frame:
    """`server` names the process (several processes behind a load balancer), for support."""
    data: dict[str, Any] = {"type": "hello", "protocol": PROTOCOL_VERSION, "user": username}
    if server:
        data["server"] = server
    return Frame(data)


PONG = Frame({"type": "pong"})


def error(
    code: str, message: str, client_id: object = None, retry_after: int | None = None, ref: str | None = None
) -> Frame:
    data: dict[str, Any] = {"type": "error", "code": code, "message": message}
    if client_id:
        data["client_id"] = str(client_id)
    if retry_after is not None:
        data["retry_after"] = retry_after
    if ref:
        data["ref"] = ref
    return Frame(data)


def ack(client_id: object, conversation: dict[str, Any], message: dict[str, Any]) -> Frame:
    """The user's message is saved (a resend gets the same ack again)."""
    return Frame({"type": "ack", "client_id": str(client_id), "conversation": conversation, "message": message})


def budget(standings: list[dict[str, Any]]) -> Frame:
    """The user's budgets that are nearly (or wholly) spent, after an answer."""
    return Frame({"type": "budget", "budgets": standings})


def title(conversation: object, text: str) -> Frame:
    return Frame({"type": "title", "conversation": str(conversation), "title": text})


class AnswerFrames:
    """The frames of one answer: `start`, `delta` (hot, spliced) and `end`."""

    __slots__ = ("_head", "conversation", "message")

    def __init__(self, conversation: object, message: object) -> None:
        self.conversation, self.message = str(conversation), str(message)
        self._head = f'{{"type":"delta","conversation":"{self.conversation}","message":"{self.message}","seq":'

    def start(self, message: dict[str, Any]) -> Frame:
        return Frame({"type": "start", "conversation": self.conversation, "message": message})

    def delta(self, seq: int, text: str, reasoning: str = "", replace: bool = False) -> Frame:
        data: dict[str, Any] = {
            "type": "delta", "conversation": self.conversation, "message": self.message, "seq": seq, "text": text,
        }
        encoded = f"{self._head}{seq},\"text\":{_dumps(text)}"
        if reasoning:
            data["reasoning"] = reasoning
            encoded += f',"reasoning":{_dumps(reasoning)}'
        if replace:
            data["replace"] = True
            encoded += ',"replace":true'
        return Frame(data, encoded + "}")

    def end(
        self, seq: int, status: str, reason: str, usage: dict[str, Any] | None,
        ttft_ms: int | None, error: dict[str, Any] | None, cached: bool = False,
    ) -> Frame:
        data = {
            "type": "end", "conversation": self.conversation, "message": self.message, "seq": seq,
            "status": status, "reason": reason, "usage": usage, "ttft_ms": ttft_ms, "error": error,
        }
        if cached:
            data["cached"] = True  # answered from the response cache (added in v1)
        return Frame(data)


def saved_answer(message: dict[str, Any], *, with_text: bool = True) -> list[Frame]:
    """A saved answer as frames: its whole text (a `replace` delta) and, if finished, its `end`.

    `message` is serializers.message_json of the row. A resume, a resend's replay and a
    late reconnect all see a saved answer through this one function.
    """
    frames = AnswerFrames(message["conversation"], message["id"])
    out = []
    if with_text:
        out.append(frames.delta(message["seq"], message["content"], message["reasoning"], replace=True))
    if message["status"] != "streaming":
        out.append(frames.end(
            message["seq"], message["status"], message["reason"], message["usage"], message["ttft_ms"],
            message["error"], cached=bool(message.get("cached")),
        ))
    return out
