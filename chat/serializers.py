"""The JSON shapes of conversations, messages and models, shared by the socket and the HTTP API.

Frames are built in chat.protocol; these are the objects inside them.
"""

from __future__ import annotations

from typing import Any

from chat import catalog_cache
from chat.models import ChatModel, Conversation, Message


def conversation_json(c: Conversation) -> dict[str, Any]:
    return {
        "id": str(c.id),
        "title": c.title,
        "model": str(c.model_id) if c.model_id else None,
        # The in-browser model answering this conversation, as the picker names it (chat.browser_models).
        "browser_model": f"browser:{c.browser_model_id}" if c.browser_model_id else None,
        "updated": c.updated.isoformat(),
        "pinned": c.pinned,
    }


def conversation_settings_json(c: Conversation) -> dict[str, Any]:
    """What the conversation settings panel edits; null means the default applies."""
    return {
        "model": str(c.model_id) if c.model_id else None,
        "system_prompt": c.system_prompt,
        "temperature": c.temperature,
        "max_tokens": c.max_tokens,
    }


def message_json(m: Message) -> dict[str, Any]:
    usage = None
    if m.input_tokens is not None or m.output_tokens is not None:
        usage = {"input_tokens": m.input_tokens, "output_tokens": m.output_tokens, "estimated": m.usage_estimated}
    error = None
    if m.error_kind:
        error = {"kind": m.error_kind, "message": m.error_message, "ref": m.error_ref}
    return {
        "id": str(m.id),
        "conversation": str(m.conversation_id),
        "parent": str(m.parent_id) if m.parent_id else None,
        "role": m.role,
        "content": m.content,
        "reasoning": m.reasoning,
        "status": m.status,
        "reason": m.reason,
        "model": m.model_name,
        "usage": usage,
        "ttft_ms": m.ttft_ms,
        "created": m.created.isoformat(),
        "seq": m.seq,
        "error": error,
        "client_id": str(m.client_id) if m.client_id else None,
        "attachments": m.attachments or [],
        "cached": m.cached,
    }


def model_json(m: ChatModel) -> dict[str, Any]:
    # Only what a user needs to pick a model: never a URL, header or key.
    return {"id": str(m.id), "name": m.name, "provider": m.provider.display_name, "default": m.is_default,
            "vision": m.takes_images(), "pdf": m.reads_pdfs(), "context_window": m.context_window,
            "api_id": catalog_cache.api_id(m.id)}
