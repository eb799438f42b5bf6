"""Anthropic's native Messages API.

Its stream is a sequence of named events ending in ``message_stop``; usage is split
between ``message_start`` (input) and ``message_delta`` (cumulative output), so the
latest value of each field wins, never a sum (providers.streaming merges them). ``ping`` events are keep-alives.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from providers import content, http, streaming
from providers.base import (
    ChatMessage,
    ChatRequest,
    DocumentPart,
    Done,
    ErrorKind,
    Event,
    FinishReason,
    ImagePart,
    ModelInfo,
    ProviderError,
    Reasoning,
    ReasoningDelta,
    Target,
    TextDelta,
    Usage,
)
from providers.sse import SSEDecoder, SSEEvent
from providers.streaming import END, _End

API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096  # the API requires one; generous enough for a chat turn
# Thinking rules: a budget of at least 1024 tokens; no temperature; top_p only from 0.95.
MIN_THINKING_BUDGET = 1024
MIN_TOP_P_WHILE_THINKING = 0.95
# Room added to max_tokens for adaptive thinking, which has no budget of its own.
ADAPTIVE_THINKING_ROOM = 16_000

_FINISH = {
    "end_turn": FinishReason.STOP,
    "stop_sequence": FinishReason.STOP,
    "pause_turn": FinishReason.STOP,
    "max_tokens": FinishReason.LENGTH,
    "model_context_window_exceeded": FinishReason.LENGTH,
    "tool_use": FinishReason.TOOL_CALLS,
    "refusal": FinishReason.CONTENT_FILTER,
}
_REFUSED = "The model declined to continue this answer."


def headers_for(target: Target) -> dict[str, str]:
    headers = {"accept": "text/event-stream", "anthropic-version": API_VERSION}
    if target.api_key:
        headers["x-api-key"] = target.api_key
    headers.update(target.headers)
    return headers


def build_body(target: Target, request: ChatRequest) -> dict[str, Any]:
    system = "\n\n".join(content.flat_text(m) for m in request.messages if m.role == "system")
    default = target.quirks.get("default_max_tokens", DEFAULT_MAX_TOKENS)
    answer = request.max_tokens or int(default)  # type: ignore[call-overload]
    body: dict[str, Any] = {
        "model": request.model,
        "messages": [
            {"role": m.role, "content": _blocks(m) if m.parts else m.content}
            for m in request.messages
            if m.role != "system"
        ],
        "max_tokens": answer,
        "stream": True,
    }
    if system:
        body["system"] = system
    thinking = request.reasoning is not None and request.reasoning.enabled
    if request.temperature is not None and not thinking:
        body["temperature"] = request.temperature
    if request.top_p is not None and (not thinking or request.top_p >= MIN_TOP_P_WHILE_THINKING):
        body["top_p"] = request.top_p
    if request.stop:
        body["stop_sequences"] = list(request.stop)
    if thinking and request.reasoning is not None:
        body.update(_thinking(request.reasoning, answer))
    return body


def _blocks(m: ChatMessage) -> list[dict[str, Any]]:
    """A turn with attachments as content blocks: images and PDFs as base64 sources."""
    blocks: list[dict[str, Any]] = []
    for part in content.pieces(m):
        if isinstance(part, ImagePart):
            source = {"type": "base64", "media_type": part.media_type, "data": content.b64(part.data)}
            blocks.append({"type": "image", "source": source})
        elif isinstance(part, DocumentPart) and content.native_pdf(part):
            assert part.data is not None
            source = {"type": "base64", "media_type": "application/pdf", "data": content.b64(part.data)}
            blocks.append({"type": "document", "source": source, "title": part.name[:500]})
        else:
            blocks.append({"type": "text", "text": content.text_of(part)})
    return blocks


def _thinking(reasoning: Reasoning, answer: int) -> dict[str, Any]:
    """The thinking fields: a budget (manual thinking) if one is set, else adaptive thinking.

    Thinking counts against max_tokens, so the thinking room is added to the answer's own
    limit rather than taken out of it (the API wants budget_tokens < max_tokens anyway).
    Claude 4.6 and later think adaptively, steered by an effort level; 4.7 and later refuse
    budget_tokens, while models before 4.6 accept only a budget.
    """
    if reasoning.budget_tokens is not None:
        budget = max(MIN_THINKING_BUDGET, reasoning.budget_tokens)
        return {"thinking": {"type": "enabled", "budget_tokens": budget}, "max_tokens": answer + budget}
    fields: dict[str, Any] = {"thinking": {"type": "adaptive"}, "max_tokens": answer + ADAPTIVE_THINKING_ROOM}
    if reasoning.effort is not None:
        fields["output_config"] = {"effort": reasoning.effort}
    return fields


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def parse_event(name: str, obj: object) -> list[Event]:
    """One event → our events. ``Done`` marks the stop reason; ``message_stop`` is the caller's."""
    if not isinstance(obj, dict):
        raise ProviderError(ErrorKind.UNAVAILABLE, detail="event is not a JSON object")
    kind = obj.get("type", name)
    if name == "error" or kind == "error":
        raise http.error_from_payload(obj)
    if kind == "content_block_delta":
        delta = obj.get("delta") or {}
        if delta.get("type") == "text_delta" and delta.get("text"):
            return [TextDelta(delta["text"])]
        if delta.get("type") == "thinking_delta" and delta.get("thinking"):
            return [ReasoningDelta(delta["thinking"])]
        return []
    if kind == "message_start":
        usage = (obj.get("message") or {}).get("usage") or {}
        return [Usage(_int(usage.get("input_tokens")), _int(usage.get("output_tokens")))]
    if kind == "message_delta":
        events: list[Event] = []
        usage = obj.get("usage")
        if isinstance(usage, dict):
            events.append(Usage(_int(usage.get("input_tokens")), _int(usage.get("output_tokens"))))
        reason = (obj.get("delta") or {}).get("stop_reason")
        if isinstance(reason, str):
            finish = _FINISH.get(reason, FinishReason.OTHER)
            events.append(Done(finish, _REFUSED if finish is FinishReason.CONTENT_FILTER else ""))
        return events
    return []  # ping, content_block_start/stop, and event types added after this was written


def _is_content(item: object) -> bool:
    return isinstance(item, SSEEvent) and item.event != "ping"


def _is_final(item: object) -> bool:
    return isinstance(item, SSEEvent) and item.event == "message_stop"


def _read(item: object) -> list[Event] | _End:
    if not isinstance(item, SSEEvent) or item.event == "ping":
        return []
    if item.event == "message_stop":
        return END
    try:
        obj = json.loads(item.data)
    except ValueError:
        raise ProviderError(ErrorKind.UNAVAILABLE, detail="malformed event (not JSON)") from None
    return parse_event(item.event, obj)


def _finish(done: Done | None, shown: bool, eof: bool) -> Done:
    if eof:
        raise ProviderError(ErrorKind.INCOMPLETE, detail="EOF without message_stop")
    return done or Done()


def stream(target: Target, request: ChatRequest) -> AsyncIterator[Event]:
    """Stream one message; usage and Done come last, and only after ``message_stop``."""
    url = http.join_url(target.base_url, "v1/messages")
    return streaming.run(
        target, url, build_body(target, request), headers_for(target), SSEDecoder(), _read, _finish,
        is_content=_is_content, is_final=_is_final,
    )


async def list_models(target: Target) -> list[ModelInfo]:
    payload = await http.get_json(
        target, http.join_url(target.base_url, "v1/models?limit=1000"), headers_for(target)
    )
    data = payload.get("data") if isinstance(payload, dict) else None
    return [
        ModelInfo(
            entry["id"], str(entry.get("display_name") or ""), _int(entry.get("max_input_tokens")), _vision(entry)
        )
        for entry in (data if isinstance(data, list) else ())
        if isinstance(entry, dict) and isinstance(entry.get("id"), str)
    ]


def _vision(entry: dict[str, Any]) -> bool | None:
    """The list's ``capabilities.image_input.supported`` (newer API versions say it)."""
    image = (entry.get("capabilities") or {}).get("image_input")
    supported = image.get("supported") if isinstance(image, dict) else None
    return supported if isinstance(supported, bool) else None
