"""How one Script looks on the wire of each family, as pre-encoded bytes.

Each renderer turns a script into ``head`` (sent with the first delta), one piece per
delta, and a ``tail`` (finish, usage, terminator). Pieces are built once per request
so that an unthrottled stream is just a few large writes.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

# Finish reasons are scripted in OpenAI's words and translated; any other value is
# sent verbatim, so a test can script a family's own reason ("RECITATION", "refusal").
_ANTHROPIC_FINISH = {
    "stop": "end_turn",
    "length": "max_tokens",
    "content_filter": "refusal",
    "tool_calls": "tool_use",
}
_GEMINI_FINISH = {"stop": "STOP", "length": "MAX_TOKENS", "content_filter": "SAFETY", "tool_calls": "STOP"}

Deltas = list[tuple[bool, str]]  # (is_reasoning, text)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


def _canned_error(error_body: Any, default: Any) -> str:
    if error_body is None:
        return _dumps(default)
    if isinstance(error_body, bytes):
        return error_body.decode()
    return error_body if isinstance(error_body, str) else _dumps(error_body)


class OpenAIWire:
    content_type = "text/event-stream"

    def __init__(self, model: str) -> None:
        self.id = f"chatcmpl-fake{time.monotonic_ns() % 10**9}"
        self.model = model
        self.prompt_tokens = 0
        created = int(time.time())
        # Everything but the delta is fixed: splice the JSON around it instead of dumping a dict.
        self._pre = f'data: {{"id":"{self.id}","object":"chat.completion.chunk","created":{created},"model":{json.dumps(model)},"choices":[{{"index":0,"delta":'
        self._post = ',"finish_reason":null}],"usage":null}\n\n'

    def head(self) -> bytes:
        return (self._pre + '{"role":"assistant","content":""}' + self._post).encode()

    def pieces(self, deltas: Deltas) -> list[bytes]:
        pre, post = self._pre, self._post
        return [
            (
                pre
                + ('{"reasoning_content":' if reasoning else '{"content":')
                + json.dumps(text)
                + "}"
                + post
            ).encode()
            for reasoning, text in deltas
        ]

    def tail(self, finish_reason: str, usage: tuple[int, int] | None) -> bytes:
        finish = (
            self._pre
            + "{}"
            + self._post.replace('"finish_reason":null', f'"finish_reason":{json.dumps(finish_reason)}')
        )
        out = finish
        if usage is not None:
            chunk = {
                "id": self.id,
                "object": "chat.completion.chunk",
                "model": self.model,
                "choices": [],
                "usage": {
                    "prompt_tokens": usage[0],
                    "completion_tokens": usage[1],
                    "total_tokens": sum(usage),
                },
            }
            out += f"data: {_dumps(chunk)}\n\n"
        return (out + "data: [DONE]\n\n").encode()

    def error_event(self, error_body: Any) -> bytes:
        default = {
            "error": {
                "message": "The server had an error while processing your request.",
                "type": "server_error",
            }
        }
        return f"data: {_canned_error(error_body, default)}\n\n".encode()

    def malformed(self) -> bytes:
        return b'data: {"choices": [{"delta": {"content": "unterminated\n\n'

    def keepalive(self) -> bytes:
        return b": keep-alive\n\n"

    def error_response(self, status: int) -> Any:
        return {"error": {"message": "fake upstream error", "type": "fake_error", "code": status}}


class AnthropicWire:
    content_type = "text/event-stream"

    def __init__(self, model: str) -> None:
        self.model = model
        self.prompt_tokens = 0
        self._open_block = -1

    @staticmethod
    def _event(name: str, data: dict[str, Any]) -> str:
        return f"event: {name}\ndata: {_dumps(data)}\n\n"

    def head(self) -> bytes:
        message: dict[str, Any] = {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": self.model,
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": self.prompt_tokens, "output_tokens": 1},
        }
        return self._event("message_start", {"type": "message_start", "message": message}).encode()

    def pieces(self, deltas: Deltas) -> list[bytes]:
        out = []
        current: bool | None = None
        index = -1
        for reasoning, text in deltas:
            prefix = ""
            if reasoning is not current:
                if index >= 0:
                    prefix += self._event(
                        "content_block_stop", {"type": "content_block_stop", "index": index}
                    )
                index += 1
                block = {"type": "thinking", "thinking": ""} if reasoning else {"type": "text", "text": ""}
                prefix += self._event(
                    "content_block_start",
                    {"type": "content_block_start", "index": index, "content_block": block},
                )
                current = reasoning
            delta = (
                {"type": "thinking_delta", "thinking": text}
                if reasoning
                else {"type": "text_delta", "text": text}
            )
            out.append(
                (
                    prefix
                    + self._event(
                        "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
                    )
                ).encode()
            )
        self._open_block = index
        return out

    def tail(self, finish_reason: str, usage: tuple[int, int] | None) -> bytes:
        out = ""
        if self._open_block >= 0:
            out += self._event(
                "content_block_stop", {"type": "content_block_stop", "index": self._open_block}
            )
        delta: dict[str, Any] = {
            "type": "message_delta",
            "delta": {
                "stop_reason": _ANTHROPIC_FINISH.get(finish_reason, finish_reason),
                "stop_sequence": None,
            },
        }
        if usage is not None:
            delta["usage"] = {"output_tokens": usage[1]}
        out += self._event("message_delta", delta)
        out += self._event("message_stop", {"type": "message_stop"})
        return out.encode()

    def error_event(self, error_body: Any) -> bytes:
        default = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
        return f"event: error\ndata: {_canned_error(error_body, default)}\n\n".encode()

    def malformed(self) -> bytes:
        return b"event: content_block_delta\ndata: {not json\n\n"

    def keepalive(self) -> bytes:
        return b'event: ping\ndata: {"type": "ping"}\n\n'

    def error_response(self, status: int) -> Any:
        kinds = {
            401: "authentication_error",
            403: "permission_error",
            404: "not_found_error",
            429: "rate_limit_error",
            529: "overloaded_error",
        }
        kind = kinds.get(status, "api_error" if status >= 500 else "invalid_request_error")
        return {"type": "error", "error": {"type": kind, "message": "fake upstream error"}}


class GeminiWire:
    content_type = "text/event-stream"

    def __init__(self, model: str) -> None:
        self.model = model
        self.prompt_tokens = 0

    def _chunk(self, obj: dict[str, Any]) -> bytes:
        return f"data: {_dumps(obj)}\r\n\r\n".encode()  # Gemini frames with CRLF

    def head(self) -> bytes:
        return b""

    def pieces(self, deltas: Deltas) -> list[bytes]:
        usage = {"promptTokenCount": self.prompt_tokens, "totalTokenCount": self.prompt_tokens}
        out = []
        for reasoning, text in deltas:
            part: dict[str, Any] = {"text": text, "thought": True} if reasoning else {"text": text}
            out.append(
                self._chunk(
                    {
                        "candidates": [{"content": {"parts": [part], "role": "model"}, "index": 0}],
                        "usageMetadata": usage,
                        "modelVersion": self.model,
                    }
                )
            )
        return out

    def tail(self, finish_reason: str, usage: tuple[int, int] | None) -> bytes:
        reason = _GEMINI_FINISH.get(finish_reason, finish_reason)
        candidate: dict[str, Any] = {"finishReason": reason, "index": 0}
        if reason in ("STOP", "MAX_TOKENS"):
            candidate["content"] = {"parts": [{"text": ""}], "role": "model"}
        chunk: dict[str, Any] = {"candidates": [candidate], "modelVersion": self.model}
        if usage is not None:
            chunk["usageMetadata"] = {
                "promptTokenCount": usage[0],
                "candidatesTokenCount": usage[1],
                "totalTokenCount": sum(usage),
            }
        return self._chunk(chunk)

    def error_event(self, error_body: Any) -> bytes:
        default = {"error": {"code": 500, "message": "An internal error has occurred.", "status": "INTERNAL"}}
        return f"data: {_canned_error(error_body, default)}\r\n\r\n".encode()

    def malformed(self) -> bytes:
        return b"data: {not json\r\n\r\n"

    def keepalive(self) -> bytes:
        return b": keep-alive\r\n\r\n"

    def error_response(self, status: int) -> Any:
        names = {
            400: "INVALID_ARGUMENT",
            403: "PERMISSION_DENIED",
            404: "NOT_FOUND",
            429: "RESOURCE_EXHAUSTED",
            500: "INTERNAL",
            503: "UNAVAILABLE",
            504: "DEADLINE_EXCEEDED",
        }
        return {
            "error": {
                "code": status,
                "message": "fake upstream error",
                "status": names.get(status, "UNKNOWN"),
            }
        }


class OllamaWire:
    content_type = "application/x-ndjson"

    def __init__(self, model: str) -> None:
        self.prompt_tokens = 0
        self._pre = f'{{"model":{json.dumps(model)},"created_at":"2025-01-01T00:00:00Z","message":{{"role":"assistant",'

    def head(self) -> bytes:
        return b""

    def pieces(self, deltas: Deltas) -> list[bytes]:
        return [
            (
                self._pre
                + ('"content":"","thinking":' if reasoning else '"content":')
                + json.dumps(text)
                + '},"done":false}\n'
            ).encode()
            for reasoning, text in deltas
        ]

    def tail(self, finish_reason: str, usage: tuple[int, int] | None) -> bytes:
        counts = f',"prompt_eval_count":{usage[0]},"eval_count":{usage[1]}' if usage is not None else ""
        return (
            self._pre + f'"content":""}},"done":true,"done_reason":{json.dumps(finish_reason)}{counts}}}\n'
        ).encode()

    def error_event(self, error_body: Any) -> bytes:
        return f"{_canned_error(error_body, {'error': 'an error was encountered while running the model'})}\n".encode()

    def malformed(self) -> bytes:
        return b"{not json\n"

    def keepalive(self) -> bytes:
        return b"\n"  # NDJSON has no comments; a blank line is the nearest thing

    def error_response(self, status: int) -> Any:
        return {"error": "fake upstream error"}


Wire = OpenAIWire | AnthropicWire | GeminiWire | OllamaWire


@dataclasses.dataclass(frozen=True)
class FamilyWire:
    """How the fake serves one family (keys are providers.registry.FAMILIES keys)."""

    renderer: type[Wire]
    base_suffix: str  # what a preset's base URL adds after the host (OpenAI's end in /v1)
    chat_path: str  # where a chat request for model "fake-model" arrives

    def matches(self, path: str) -> str | None:
        """The model named by a chat request's path, "" if the body names it, None if not ours."""
        head, _, tail = self.chat_path.partition("fake-model")
        if tail and path.startswith(head) and path.endswith(tail) and len(path) > len(head) + len(tail):
            return path[len(head) : -len(tail)]
        return "" if path == self.chat_path else None


FAMILIES = {
    "openai": FamilyWire(OpenAIWire, "/v1", "/v1/chat/completions"),
    "anthropic": FamilyWire(AnthropicWire, "", "/v1/messages"),
    "gemini": FamilyWire(GeminiWire, "", "/v1beta/models/fake-model:streamGenerateContent"),
    "ollama": FamilyWire(OllamaWire, "", "/api/chat"),
}


def ollama_show(name: str) -> dict[str, Any]:
    """POST /api/show: what Ollama says about one model (vision for "...vision..." names)."""
    return {"capabilities": ["completion", "vision"] if "vision" in name else ["completion"], "details": {}}


def model_list(path: str, names: list[str], page_token: str) -> dict[str, Any]:
    """The model-list document for a GET path; Gemini pages by two to exercise pageToken."""
    if path == "/api/tags":
        return {
            "models": [
                {"name": n, "model": n, "modified_at": "2025-01-01T00:00:00Z", "size": 1} for n in names
            ]
        }
    if path == "/v1beta/models":
        start = int(page_token or 0)
        page = names[start : start + 2]
        doc: dict[str, Any] = {
            "models": [
                {
                    "name": f"models/{n}",
                    "displayName": n.title(),
                    "inputTokenLimit": 32768,
                    "supportedGenerationMethods": ["generateContent", "countTokens"],
                }
                for n in page
            ]
        }
        if start + 2 < len(names):
            doc["nextPageToken"] = str(start + 2)
        return doc
    # OpenAI and Anthropic share /v1/models; one superset entry satisfies both readers.
    # Models named "...vision..." take images, as OpenRouter and Anthropic report it.
    data = [
        {
            "id": n,
            "object": "model",
            "type": "model",
            "display_name": n.title(),
            "owned_by": "fake",
            "created": 0,
            "architecture": {"input_modalities": ["text", "image"] if "vision" in n else ["text"]},
            "capabilities": {"image_input": {"supported": "vision" in n}},
        }
        for n in names
    ]
    return {"object": "list", "data": data, "has_more": False}


# ---- attachments, checked the way a strict provider would ------------------------------

_IMAGE_TYPES = {"image/png", "image/jpeg", "image/webp", "image/gif"}
_MAGIC = {
    "image/png": b"\x89PNG\r\n\x1a\n", "image/jpeg": b"\xff\xd8\xff", "image/gif": b"GIF8",
    "image/webp": b"RIFF", "application/pdf": b"%PDF-",
}


def _decoded(data: object, media_type: object, allowed: set[str]) -> str | None:
    """None if ``data`` is base64 of a file of ``media_type`` (one of ``allowed``), else why not."""
    import base64
    import binascii

    if media_type not in allowed:
        return f"unsupported media type {media_type!r}"
    if not isinstance(data, str) or not data:
        return "data must be a non-empty base64 string"
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return "data is not valid base64"
    if not raw.startswith(_MAGIC[str(media_type)]):
        return f"data is not a {media_type} file"
    return None


def _openai_errors(message: dict[str, Any]) -> str | None:
    content = message.get("content")
    if not isinstance(content, list):
        return None
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            if not isinstance(part.get("text"), str):
                return "text part without text"
        elif kind == "image_url":
            url = (part.get("image_url") or {}).get("url")
            head, _, data = url.partition(",") if isinstance(url, str) else ("", "", "")
            if not head.startswith("data:") or not head.endswith(";base64"):
                return "image_url must be a base64 data URL"
            problem = _decoded(data, head[5:-7], _IMAGE_TYPES)
            if problem:
                return f"image_url: {problem}"
        else:
            return f"unknown content part type {kind!r}"
    return None


def _anthropic_errors(message: dict[str, Any]) -> str | None:
    content = message.get("content")
    if not isinstance(content, list):
        return None
    for block in content:
        kind = block.get("type") if isinstance(block, dict) else None
        source = block.get("source") or {} if isinstance(block, dict) else {}
        if kind == "text":
            if not isinstance(block.get("text"), str) or not block["text"]:
                return "text blocks must not be empty"
        elif kind in ("image", "document"):
            if source.get("type") != "base64":
                return f"{kind} source must be base64"
            allowed = _IMAGE_TYPES if kind == "image" else {"application/pdf"}
            problem = _decoded(source.get("data"), source.get("media_type"), allowed)
            if problem:
                return f"{kind}: {problem}"
        else:
            return f"unknown content block type {kind!r}"
    return None


def _gemini_errors(content: dict[str, Any]) -> str | None:
    for part in content.get("parts") or []:
        if not isinstance(part, dict) or len(part) != 1:
            return "a part holds exactly one of text or inline_data"
        if "inline_data" in part:
            blob = part["inline_data"]
            problem = _decoded(blob.get("data"), blob.get("mime_type"), _IMAGE_TYPES | {"application/pdf"})
            if problem:
                return f"inline_data: {problem}"
        elif not isinstance(part.get("text"), str):
            return f"unknown part {sorted(part)}"
    return None


def _ollama_errors(message: dict[str, Any]) -> str | None:
    if not isinstance(message.get("content"), str):
        return "content must be a string"
    images = message.get("images")
    if images is None:
        return None
    if not isinstance(images, list):
        return "images must be a list"
    for image in images:
        if isinstance(image, str) and image.startswith("data:"):
            return "images are bare base64, not data URLs"
        if not any(_decoded(image, t, _IMAGE_TYPES) is None for t in _IMAGE_TYPES):
            return "images: not a base64 image"
    return None


_CHECKS = {"openai": _openai_errors, "anthropic": _anthropic_errors, "ollama": _ollama_errors}


def attachment_errors(family: str, body: Any) -> str | None:
    """Why a real provider of ``family`` would refuse this body's attachments, or None."""
    if not isinstance(body, dict):
        return None
    if family == "gemini":
        turns = body.get("contents") or []
        check = _gemini_errors
    else:
        turns = body.get("messages") or []
        check = _CHECKS[family]
    for turn in turns:
        problem = check(turn) if isinstance(turn, dict) else "a turn must be an object"
        if problem:
            return problem
    return None


def attachments_seen(family: str, body: Any) -> list[str]:
    """What the model was given besides text, as "image/png" or "document report.pdf" words."""
    seen: list[str] = []
    turns = (body.get("contents") if family == "gemini" else body.get("messages")) or []
    for turn in turns:
        if family == "gemini":
            for part in turn.get("parts") or []:
                if "inline_data" in part:
                    seen.append(part["inline_data"]["mime_type"])
        elif family == "ollama":
            seen += ["image"] * len(turn.get("images") or [])
        elif isinstance(turn.get("content"), list):
            for part in turn["content"]:
                if part.get("type") == "image_url":
                    seen.append(part["image_url"]["url"].partition(";")[0][5:])
                elif part.get("type") in ("image", "document"):
                    seen.append(part["source"]["media_type"])
    return seen
