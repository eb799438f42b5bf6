"""An OpenAI chat completion request read into Parley's terms, or refused naming the field.

Pure: no database, no network. Fields Parley takes are read; OpenAI fields that do not change
what a text answer is (penalties, seed, metadata...) are ignored; fields asking for what
Parley cannot do (tools, several choices, log probabilities, JSON mode) are refused the way
OpenAI refuses an unsupported value; anything else is refused as OpenAI refuses an
unrecognised argument. Images in content arrays become checked, re-encoded image parts.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from chat import limits
from providers.base import ChatMessage, ImagePart, Part, TextPart
from providers.content import UnsupportedPart, flat_text, from_openai_content

TAKEN = {
    "model",
    "messages",
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "stream",
    "stream_options",
    "user",
}
# OpenAI's own fields that have no say in a plain text answer here: accepted and ignored.
IGNORED = {
    "frequency_penalty",
    "presence_penalty",
    "seed",
    "logit_bias",
    "metadata",
    "store",
    "service_tier",
    "parallel_tool_calls",
    "reasoning_effort",
    "verbosity",
    "safety_identifier",
    "prompt_cache_key",
    "web_search_options",
}
# Fields asking for something Parley does not do: refused unless they ask for the default.
DEFAULTS: dict[str, tuple[object, ...]] = {
    "n": (None, 1),
    "logprobs": (None, False),
    "top_logprobs": (None, 0),
    "tools": (None, []),
    "functions": (None, []),
    "tool_choice": (None, "none"),
    "function_call": (None, "none"),
    "response_format": (None, {"type": "text"}),
    "modalities": (None, ["text"]),
    "audio": (None,),
    "prediction": (None,),
}
ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
MAX_MESSAGES = 1_000
MAX_STOPS = 4


class BadRequest(ValueError):
    """A request OpenAI would answer with 400; `param` names the field."""

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message, self.param, self.code = message, param, code


@dataclasses.dataclass(frozen=True)
class Completion:
    model: str
    messages: tuple[ChatMessage, ...]
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    stream: bool = False
    include_usage: bool = False

    @property
    def has_images(self) -> bool:
        return any(isinstance(p, ImagePart) for m in self.messages for p in m.parts)


def completion(body: object) -> Completion:
    """Read a request body (already JSON-decoded)."""
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    for name in body:
        if name in TAKEN or name in IGNORED:
            continue
        if name in DEFAULTS:
            if body[name] not in DEFAULTS[name]:
                raise BadRequest(f"Parley does not support `{name}`.", name, "unsupported_parameter")
            continue
        raise BadRequest(f"Unrecognized request argument supplied: {str(name)[:60]}", str(name)[:60])
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("You must provide a model parameter.", "model")
    stream = _flag(body, "stream")
    options = body.get("stream_options")
    if options is not None and not stream:
        raise BadRequest(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.", "stream_options"
        )
    if options is not None and not isinstance(options, dict):
        raise BadRequest("`stream_options` must be an object.", "stream_options")
    include_usage = _flag(options or {}, "include_usage", "stream_options.include_usage")
    if body.get("user") is not None and not isinstance(body["user"], str):
        raise BadRequest("`user` must be a string.", "user")
    limit = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    try:
        return Completion(
            model=model,
            messages=messages(body.get("messages")),
            temperature=limits.temperature(body.get("temperature")),
            top_p=limits.top_p(body.get("top_p")),
            max_tokens=limits.max_tokens(body.get(limit), limit),
            stop=stops(body.get("stop")),
            stream=stream,
            include_usage=include_usage,
        )
    except limits.Invalid as exc:
        text = str(exc)
        param = next((n for n in (*TAKEN, "messages") if f"`{n}`" in text), None)
        raise BadRequest(text, param) from None


def _flag(body: dict[str, Any], name: str, param: str | None = None) -> bool:
    value = body.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise BadRequest(f"`{param or name}` must be true or false.", param or name)
    return value


def stops(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    found = [value] if isinstance(value, str) else value
    if not isinstance(found, list) or not all(isinstance(s, str) and s for s in found):
        raise BadRequest("`stop` must be a string or a list of non-empty strings.", "stop")
    if len(found) > MAX_STOPS:
        raise BadRequest(f"`stop` takes at most {MAX_STOPS} sequences.", "stop")
    return tuple(found)


def messages(value: object) -> tuple[ChatMessage, ...]:
    if not isinstance(value, list) or not value:
        raise BadRequest("`messages` must be a non-empty list.", "messages")
    if len(value) > MAX_MESSAGES:
        raise BadRequest(f"`messages` takes at most {MAX_MESSAGES:,} messages.", "messages")
    out = [_message(m, i) for i, m in enumerate(value)]
    if not any(m.role == "user" for m in out):
        raise BadRequest("`messages` must include at least one user message.", "messages")
    return tuple(out)


def _message(value: object, index: int) -> ChatMessage:
    where = f"messages[{index}]"
    if not isinstance(value, dict):
        raise BadRequest(f"`{where}` must be an object.", where)
    role = ROLES.get(value.get("role"))  # type: ignore[arg-type]
    if role is None:
        raise BadRequest(
            f"`{where}.role` must be system, developer, user or assistant (Parley does not run tools).",
            f"{where}.role",
        )
    if value.get("tool_calls") or value.get("function_call"):
        raise BadRequest(f"`{where}`: Parley does not run tools.", f"{where}.tool_calls")
    content = value.get("content")
    try:
        text, parts = from_openai_content(content if content is not None else "")
    except UnsupportedPart as exc:
        raise BadRequest(f"{where}.{exc}", f"{where}.content") from None
    limit = limits.message_chars() if role == "user" else limits.stored_message_chars()
    try:
        limits.text(text, "content", limit, where=where)
        for part in parts:
            if isinstance(part, TextPart):
                limits.text(part.text, "content", limit, where=where)
    except limits.Invalid as exc:
        raise BadRequest(str(exc), f"{where}.content") from None
    if parts and role != "user":
        # Only a user turn carries images; a system or assistant turn's text parts are its text.
        if any(isinstance(p, ImagePart) for p in parts):
            raise BadRequest(f"`{where}`: only user messages may contain images.", f"{where}.content")
        return ChatMessage(role, flat_text(ChatMessage(role, "", parts)))  # type: ignore[arg-type]
    return ChatMessage(role, text, _checked_images(parts, where))  # type: ignore[arg-type]


def _checked_images(parts: tuple[Part, ...], where: str) -> tuple[Part, ...]:
    """Each image decoded and re-encoded exactly as an upload would be (metadata goes)."""
    if not any(isinstance(p, ImagePart) for p in parts):
        return parts
    from chat.attachments import inspect

    out: list[Part] = []
    for n, part in enumerate(parts):
        if isinstance(part, ImagePart):
            extension = part.media_type.split("/")[1].replace("jpeg", "jpg")
            try:
                seen = inspect.inspect(f"image-{n + 1}.{extension}", part.data)
            except limits.Invalid as exc:
                raise BadRequest(f"{where}.content[{n}]: {exc}", f"{where}.content") from None
            out.append(ImagePart(seen.media_type, seen.data, seen.name))
        else:
            out.append(part)
    return tuple(out)
