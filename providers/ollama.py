"""Ollama's native ``/api/chat`` (NDJSON), for thinking output and options ``/v1`` lacks.

Every line is checked for ``error`` before anything else: a failure after the 200
arrives as one ``{"error": "..."}`` line and then the stream closes.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

from providers import content, http, streaming
from providers.base import (
    ChatMessage,
    ChatRequest,
    Done,
    ErrorKind,
    Event,
    FinishReason,
    ModelInfo,
    ProviderError,
    ReasoningDelta,
    Target,
    TextDelta,
    Usage,
)
from providers.sse import NDJSONDecoder

_FINISH = {"stop": FinishReason.STOP, "length": FinishReason.LENGTH}


def headers_for(target: Target) -> dict[str, str]:
    headers = {"accept": "application/x-ndjson"}
    if target.api_key:  # ollama.com cloud; a local server ignores it
        headers["authorization"] = f"Bearer {target.api_key}"
    headers.update(target.headers)
    return headers


def build_body(target: Target, request: ChatRequest) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if request.temperature is not None:
        options["temperature"] = request.temperature
    if request.max_tokens is not None:
        options["num_predict"] = request.max_tokens
    if request.top_p is not None:
        options["top_p"] = request.top_p
    if request.stop:
        options["stop"] = list(request.stop)
    # Ollama silently truncates prompts to num_ctx; a preset can raise its small default.
    num_ctx = target.quirks.get("num_ctx")
    if isinstance(num_ctx, int):
        options["num_ctx"] = num_ctx
    body: dict[str, Any] = {
        "model": request.model,
        "messages": [_message(m) if m.parts else {"role": m.role, "content": m.content} for m in request.messages],
        "stream": True,
    }
    if request.reasoning is not None:
        # true/false for thinking models; gpt-oss takes a level instead of true.
        body["think"] = (request.reasoning.effort or True) if request.reasoning.enabled else False
    elif "think" in target.quirks:
        body["think"] = target.quirks["think"]
    if options:
        body["options"] = options
    return body


def _message(m: ChatMessage) -> dict[str, Any]:
    """Ollama takes one string per turn and images beside it, base64 without a data URL."""
    message: dict[str, Any] = {"role": m.role, "content": content.flat_text(m)}
    images = content.images(m)
    if images:
        message["images"] = [content.b64(image.data) for image in images]
    return message


def parse_line(obj: object) -> list[Event]:
    """One NDJSON object → events; the ``done`` line yields Usage and Done."""
    if not isinstance(obj, dict):
        raise ProviderError(ErrorKind.UNAVAILABLE, detail="line is not a JSON object")
    if obj.get("error") is not None:
        raise http.error_from_payload(obj)
    events: list[Event] = []
    message = obj.get("message")
    if isinstance(message, dict):
        thinking, content = message.get("thinking"), message.get("content")
        if isinstance(thinking, str) and thinking:
            events.append(ReasoningDelta(thinking))
        if isinstance(content, str) and content:
            events.append(TextDelta(content))
    if obj.get("done") is True:
        prompt, output = obj.get("prompt_eval_count"), obj.get("eval_count")
        # Go's omitempty drops zero counts, so a missing count on the final line means 0.
        events.append(
            Usage(prompt if isinstance(prompt, int) else 0, output if isinstance(output, int) else 0)
        )
        events.append(Done(_FINISH.get(str(obj.get("done_reason") or "stop"), FinishReason.OTHER)))
    return events


def _is_final(line: bytes) -> bool:
    return b'"done":true' in line or b'"done": true' in line


def _read(line: bytes) -> list[Event]:
    try:
        obj = json.loads(line)
    except ValueError:
        raise ProviderError(ErrorKind.UNAVAILABLE, detail="malformed line (not JSON)") from None
    return parse_line(obj)


def _finish(done: Done | None, shown: bool, eof: bool) -> Done:
    if done is None:
        raise ProviderError(ErrorKind.INCOMPLETE, detail="EOF without done:true")
    return done


def stream(target: Target, request: ChatRequest) -> AsyncIterator[Event]:
    url = http.join_url(target.base_url, "api/chat")
    return streaming.run(
        target, url, build_body(target, request), headers_for(target), NDJSONDecoder(), _read, _finish,
        is_final=_is_final, stop_at_done=True,
    )


async def list_models(target: Target) -> list[ModelInfo]:
    payload = await http.get_json(target, http.join_url(target.base_url, "api/tags"), headers_for(target))
    entries = payload.get("models") if isinstance(payload, dict) else None
    names = [
        entry["name"]
        for entry in (entries if isinstance(entries, list) else ())
        if isinstance(entry, dict) and isinstance(entry.get("name"), str)
    ]
    # /api/tags says nothing of capabilities; /api/show does, one model at a time.
    shown = await asyncio.gather(*(_capabilities(target, n) for n in names[:_SHOW_AT_MOST]))
    return [
        ModelInfo(name, vision=("vision" in caps) if caps is not None else None)
        for name, caps in itertools.zip_longest(names, shown)
    ]


_SHOW_AT_MOST = 100  # a server with more models gets the rest without capabilities


async def _capabilities(target: Target, name: str) -> list[str] | None:
    """The model's capabilities from /api/show ("completion", "vision", ...), None if unknown."""
    try:
        payload = await http.post_json(target, http.join_url(target.base_url, "api/show"), {"model": name},
                                       headers_for(target))
    except ProviderError:
        return None
    caps = payload.get("capabilities") if isinstance(payload, dict) else None
    return [str(c) for c in caps] if isinstance(caps, list) else None
