"""OpenAI Chat Completions, and every server that speaks it (a preset, not a module, each).

Divergences between compatible servers are absorbed here by reading defensively
(reasoning under two names, content as typed parts, usage in three places) and by a
few request-side quirks from the preset (``max_tokens_field``, ``no_stream_options``,
``extra_body``).

End of stream: ``data: [DONE]`` is the terminator. Some servers close right after the
chunk carrying ``finish_reason`` without sending ``[DONE]``; a finish reason is a
deliberate end, so that counts as done too. EOF with neither is INCOMPLETE.
"""

from __future__ import annotations

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
    ImagePart,
    ModelInfo,
    ProviderError,
    ReasoningDelta,
    Target,
    TextDelta,
    Usage,
)
from providers.sse import SSEDecoder, SSEEvent
from providers.streaming import END, _End

_FINISH = {
    "stop": FinishReason.STOP,
    "eos_token": FinishReason.STOP,
    "stop_sequence": FinishReason.STOP,  # TGI passes its own name through
    "end_turn": FinishReason.STOP,
    "length": FinishReason.LENGTH,
    "max_tokens": FinishReason.LENGTH,
    "content_filter": FinishReason.CONTENT_FILTER,
    "tool_calls": FinishReason.TOOL_CALLS,
    "function_call": FinishReason.TOOL_CALLS,
}
_FILTERED = "The provider's content filter stopped this answer."


def headers_for(target: Target) -> dict[str, str]:
    headers = {"accept": "text/event-stream"}
    if target.api_key:
        headers["authorization"] = f"Bearer {target.api_key}"
    headers.update(target.headers)
    return headers


def build_body(target: Target, request: ChatRequest) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": request.model,
        "messages": [_message(m) if m.parts else {"role": m.role, "content": m.content} for m in request.messages],
        "stream": True,
    }
    # Strict servers (Mistral) answer 422 to a field they do not know.
    if not target.quirks.get("no_stream_options"):
        body["stream_options"] = {"include_usage": True}
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.stop:
        body["stop"] = list(request.stop)
    if request.max_tokens is not None:
        body[str(target.quirks.get("max_tokens_field", "max_tokens"))] = request.max_tokens
    body.update(_reasoning_fields(target, request))
    extra = target.quirks.get("extra_body")
    if isinstance(extra, dict):
        body.update(extra)
    return body


def _message(m: ChatMessage) -> dict[str, Any]:
    """A turn with attachments: content parts, images as data URLs, documents as text."""
    parts: list[dict[str, Any]] = []
    for part in content.pieces(m):
        if isinstance(part, ImagePart):
            parts.append({"type": "image_url", "image_url": {"url": content.data_url(part.media_type, part.data)}})
        else:
            parts.append({"type": "text", "text": content.text_of(part)})
    return {"role": m.role, "content": parts}


def _reasoning_fields(target: Target, request: ChatRequest) -> dict[str, Any]:
    """Only for presets whose servers take the field: strict servers refuse unknown ones.

    ``reasoning_effort`` (OpenAI, OpenRouter, Groq, vLLM...) has no portable "off" (o-series
    models always reason), so off sends nothing there; DashScope switches with
    ``enable_thinking``.
    """
    reasoning = request.reasoning
    if reasoning is None:
        return {}
    switch = target.quirks.get("reasoning_switch")
    if isinstance(switch, str):
        return {switch: reasoning.enabled}
    if target.quirks.get("reasoning_effort") and reasoning.enabled:
        return {"reasoning_effort": reasoning.effort or "medium"}
    return {}


def _content_events(content: object) -> list[Event]:
    """Content is a string, or (Mistral Magistral) a list of typed parts."""
    if isinstance(content, str):
        return [TextDelta(content)] if content else []
    events: list[Event] = []
    for part in content if isinstance(content, list) else ():
        if isinstance(part, str):
            if part:
                events.append(TextDelta(part))
        elif isinstance(part, dict):
            if part.get("type") == "thinking":
                for inner in _content_events(part.get("thinking")):
                    events.append(ReasoningDelta(inner.text) if isinstance(inner, TextDelta) else inner)
            elif isinstance(part.get("text"), str) and part["text"]:
                events.append(TextDelta(part["text"]))
    return events


def _usage(raw: object) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    prompt, completion = raw.get("prompt_tokens"), raw.get("completion_tokens")
    details = raw.get("completion_tokens_details")
    reasoning = details.get("reasoning_tokens") if isinstance(details, dict) else None
    return Usage(
        prompt if isinstance(prompt, int) else None,
        completion if isinstance(completion, int) else None,
        reasoning if isinstance(reasoning, int) and not isinstance(reasoning, bool) else None,
    )


def parse_chunk(obj: object) -> list[Event]:
    """One decoded chunk → events; a finish arrives as ``Done`` for the caller to hold back."""
    if not isinstance(obj, dict):
        raise ProviderError(ErrorKind.UNAVAILABLE, detail="chunk is not a JSON object")
    if obj.get("error") is not None:
        raise http.error_from_payload(obj)
    events: list[Event] = []
    choices = obj.get("choices") or ()  # the usage chunk has [], some servers null
    choice = choices[0] if isinstance(choices, list) and choices else None
    if isinstance(choice, dict):
        delta = choice.get("delta")
        if isinstance(delta, dict):
            reasoning = delta.get("reasoning") or delta.get("reasoning_content")
            if isinstance(reasoning, str) and reasoning:
                events.append(ReasoningDelta(reasoning))
            events.extend(_content_events(delta.get("content")))
        reason = choice.get("finish_reason")
        if isinstance(reason, str) and reason:
            if reason == "error":  # OpenRouter and Mistral end a failed generation this way
                raise ProviderError(ErrorKind.UNAVAILABLE, detail="finish_reason=error")
            finish = _FINISH.get(reason, FinishReason.OTHER)
            detail = _FILTERED if finish is FinishReason.CONTENT_FILTER else ""
            events.append(Done(finish, detail))
    usage = _usage(obj.get("usage"))
    if usage is None and isinstance(obj.get("x_groq"), dict):
        usage = _usage(obj["x_groq"].get("usage"))
    if usage is not None:
        events.append(usage)
    return events


def _is_done(item: object) -> bool:
    return isinstance(item, SSEEvent) and item.data.startswith("[DONE]")


def _decode(event: SSEEvent) -> object:
    try:
        return json.loads(event.data)
    except ValueError:
        if event.event == "error":
            raise ProviderError(ErrorKind.UNAVAILABLE, detail="error event") from None
        raise ProviderError(ErrorKind.UNAVAILABLE, detail="malformed chunk (not JSON)") from None


def _read(item: object) -> list[Event] | _End:
    if not isinstance(item, SSEEvent):
        return []
    if _is_done(item):
        return END
    obj = _decode(item)
    if item.event == "error":
        raise http.error_from_payload(obj)
    return parse_chunk(obj)


def _finish(done: Done | None, shown: bool, eof: bool) -> Done:
    if eof and done is None:
        raise ProviderError(ErrorKind.INCOMPLETE, detail="EOF without [DONE] or finish_reason")
    if done is None and not shown:
        # vLLM has dropped pre-token errors and sent a bare [DONE]; never show an empty answer.
        raise ProviderError(ErrorKind.INCOMPLETE, detail="[DONE] with no content and no finish_reason")
    return done or Done()


def stream(target: Target, request: ChatRequest) -> AsyncIterator[Event]:
    """Stream one chat completion as events; usage and Done always come last."""
    url = http.join_url(target.base_url, "chat/completions")
    return streaming.run(
        target, url, build_body(target, request), headers_for(target), SSEDecoder(), _read, _finish,
        is_final=_is_done,
    )


def _context_window(entry: dict[str, Any]) -> int | None:
    for key in ("context_length", "context_window", "max_model_len"):
        value = entry.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


async def list_models(target: Target) -> list[ModelInfo]:
    payload = await http.get_json(target, http.join_url(target.base_url, "models"), headers_for(target))
    data = payload.get("data") if isinstance(payload, dict) else payload
    models = []
    for entry in data if isinstance(data, list) else ():
        if isinstance(entry, dict) and isinstance(entry.get("id"), str):
            name = entry.get("name") or entry.get("display_name")
            models.append(
                ModelInfo(entry["id"], name if isinstance(name, str) else "", _context_window(entry), _vision(entry))
            )
    return models


def _vision(entry: dict[str, Any]) -> bool | None:
    """Whether the list says the model takes images: OpenRouter's input modalities, Mistral's
    capabilities. Plain OpenAI-style lists say nothing (None: the preset's default applies)."""
    modalities = (entry.get("architecture") or {}).get("input_modalities")
    if isinstance(modalities, list):
        return "image" in modalities
    vision = (entry.get("capabilities") or {}).get("vision")
    return vision if isinstance(vision, bool) else None
