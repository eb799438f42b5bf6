"""Google Gemini's native ``streamGenerateContent`` (SSE via ``alt=sse``).

Gemini has no sentinel: the stream ends at EOF after the chunk carrying
``finishReason``, so EOF without one is INCOMPLETE. Safety blocks arrive as a
200 with an empty candidate, which must never look like an empty answer: with
text already shown they end as ``Done(CONTENT_FILTER)`` with the reason, and with
nothing shown they are a ``ProviderError(CONTENT_FILTER)``.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

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

_MAX_PAGES = 20  # a runaway nextPageToken must not loop forever

_FILTER_REASONS = {
    "SAFETY": "the provider's safety filter",
    "RECITATION": "the provider's recitation (copyright) check",
    "BLOCKLIST": "a blocklisted term",
    "PROHIBITED_CONTENT": "the provider's prohibited-content policy",
    "SPII": "the provider's personal-information filter",
    "IMAGE_SAFETY": "the provider's image safety filter",
    "LANGUAGE": "an unsupported language",
    "OTHER": "an unspecified provider policy",
}
_FINISH = {"STOP": FinishReason.STOP, "MAX_TOKENS": FinishReason.LENGTH}


def headers_for(target: Target) -> dict[str, str]:
    headers = {"accept": "text/event-stream"}
    if target.api_key:
        headers["x-goog-api-key"] = target.api_key
    headers.update(target.headers)
    return headers


def build_body(target: Target, request: ChatRequest) -> dict[str, Any]:
    system = "\n\n".join(content.flat_text(m) for m in request.messages if m.role == "system")
    body: dict[str, Any] = {
        "contents": [
            {
                "role": "model" if m.role == "assistant" else "user",
                "parts": _parts(m) if m.parts else [{"text": m.content}],
            }
            for m in request.messages
            if m.role != "system"
        ]
    }
    if system:
        body["systemInstruction"] = {"parts": [{"text": system}]}
    config: dict[str, Any] = {}
    if request.temperature is not None:
        config["temperature"] = request.temperature
    if request.max_tokens is not None:
        config["maxOutputTokens"] = request.max_tokens
    if request.top_p is not None:
        config["topP"] = request.top_p
    if request.stop:
        config["stopSequences"] = list(request.stop)
    thinking = _thinking_config(request.reasoning) or target.quirks.get("thinking_config")
    if isinstance(thinking, dict):
        config["thinkingConfig"] = thinking
    if config:
        body["generationConfig"] = config
    return body


def _parts(m: ChatMessage) -> list[dict[str, Any]]:
    """A turn with attachments: images (and PDFs sent whole) as inline data, documents as text."""
    parts: list[dict[str, Any]] = []
    for part in content.pieces(m):
        if isinstance(part, ImagePart):
            parts.append({"inline_data": {"mime_type": part.media_type, "data": content.b64(part.data)}})
        elif isinstance(part, DocumentPart) and content.native_pdf(part):
            assert part.data is not None
            parts.append({"inline_data": {"mime_type": "application/pdf", "data": content.b64(part.data)}})
        else:
            parts.append({"text": content.text_of(part)})
    return parts


def _thinking_config(reasoning: Reasoning | None) -> dict[str, Any] | None:
    """Gemini 2.5 takes a token budget (0 turns thinking off), Gemini 3 a level; never both."""
    if reasoning is None:
        return None
    if not reasoning.enabled:
        return {"thinkingBudget": 0}  # 2.5 Flash and Flash-Lite; Pro models cannot stop thinking
    config: dict[str, Any] = {"includeThoughts": True}  # without it no thought text is sent
    if reasoning.budget_tokens is not None:
        config["thinkingBudget"] = reasoning.budget_tokens
    elif reasoning.effort is not None:
        config["thinkingLevel"] = reasoning.effort
    return config


def _filtered(reason: str, what: str) -> tuple[FinishReason, str]:
    # An unknown reason reaches the user only if it is a plain enum word: it is upstream text.
    shown = f" ({reason.lower()})" if re.fullmatch(r"[A-Z_]{1,40}", reason) else ""
    cause = _FILTER_REASONS.get(reason, f"a provider policy{shown}")
    return FinishReason.CONTENT_FILTER, f"The {what} was blocked by {cause}."


def parse_chunk(obj: object) -> list[Event]:
    """One GenerateContentResponse → events; a finishReason or block arrives as ``Done``."""
    if not isinstance(obj, dict):
        raise ProviderError(ErrorKind.UNAVAILABLE, detail="chunk is not a JSON object")
    if obj.get("error") is not None:
        raise http.error_from_payload(obj)
    events: list[Event] = []
    candidates = obj.get("candidates")
    candidate = candidates[0] if isinstance(candidates, list) and candidates else None
    if isinstance(candidate, dict):
        parts = (candidate.get("content") or {}).get("parts") or []
        for part in parts if isinstance(parts, list) else ():
            text = part.get("text") if isinstance(part, dict) else None
            if isinstance(text, str) and text:
                events.append(ReasoningDelta(text) if part.get("thought") is True else TextDelta(text))
    meta = obj.get("usageMetadata")
    if isinstance(meta, dict):
        output = meta.get("candidatesTokenCount")
        thoughts = meta.get("thoughtsTokenCount")
        if isinstance(output, int) and isinstance(thoughts, int):
            output += thoughts  # thinking is billed as output
        prompt = meta.get("promptTokenCount")
        events.append(Usage(
            prompt if isinstance(prompt, int) else None,
            output if isinstance(output, int) else None,
            thoughts if isinstance(thoughts, int) else None,
        ))
    block = (obj.get("promptFeedback") or {}).get("blockReason")
    if isinstance(block, str) and block:
        events.append(Done(*_filtered(block, "prompt")))
    elif isinstance(candidate, dict) and isinstance(candidate.get("finishReason"), str):
        reason = candidate["finishReason"]
        if reason in _FINISH:
            events.append(Done(_FINISH[reason]))
        elif reason == "MALFORMED_FUNCTION_CALL" or reason == "FINISH_REASON_UNSPECIFIED":
            events.append(Done(FinishReason.OTHER))
        else:
            events.append(Done(*_filtered(reason, "answer")))
    return events


def _read(item: object) -> list[Event]:
    if not isinstance(item, SSEEvent):
        return []
    try:
        obj = json.loads(item.data)
    except ValueError:
        raise ProviderError(ErrorKind.UNAVAILABLE, detail="malformed chunk (not JSON)") from None
    return parse_chunk(obj)


def _finish(done: Done | None, shown: bool, eof: bool) -> Done:
    if done is None:
        raise ProviderError(ErrorKind.INCOMPLETE, detail="EOF without finishReason")
    if done.finish_reason is FinishReason.CONTENT_FILTER and not shown:
        raise ProviderError(ErrorKind.CONTENT_FILTER, done.detail or None, detail="blocked before any text")
    return done


def stream(target: Target, request: ChatRequest) -> AsyncIterator[Event]:
    """Stream one answer; usage (the last, cumulative one) and Done come last."""
    path = f"v1beta/models/{quote(request.model, safe='')}:streamGenerateContent?alt=sse"
    url = http.join_url(target.base_url, path)
    return streaming.run(target, url, build_body(target, request), headers_for(target), SSEDecoder(), _read, _finish)


async def list_models(target: Target) -> list[ModelInfo]:
    models: list[ModelInfo] = []
    token = ""
    for _ in range(_MAX_PAGES):
        query = "v1beta/models?pageSize=1000" + (f"&pageToken={quote(token)}" if token else "")
        payload = await http.get_json(target, http.join_url(target.base_url, query), headers_for(target))
        page = payload if isinstance(payload, dict) else {}
        for entry in page.get("models") or ():
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                continue
            if "generateContent" not in (entry.get("supportedGenerationMethods") or ("generateContent",)):
                continue  # embedding and other non-chat models
            limit = entry.get("inputTokenLimit")
            models.append(
                ModelInfo(
                    entry["name"].removeprefix("models/"),
                    str(entry.get("displayName") or ""),
                    limit if isinstance(limit, int) else None,
                )
            )
        token = page.get("nextPageToken") or ""
        if not isinstance(token, str) or not token:
            break
    return models
