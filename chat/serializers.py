"""The JSON shapes of conversations and messages, shared by the socket and the HTTP API."""

from __future__ import annotations

from typing import Any

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
    }


def model_json(m: ChatModel) -> dict[str, Any]:
    # Only what a user needs to pick a model: never a URL, header or key.
    return {"id": str(m.id), "name": m.name, "provider": m.provider.display_name, "default": m.is_default}


def ack_frame(posted: Any, client_id: object = None) -> dict[str, Any]:
    """`ack`: the user's message is saved (protocol v1); `client_id` is the request's."""
    return {
        "type": "ack",
        "client_id": str(client_id or posted.user_message.client_id),
        "conversation": conversation_json(posted.conversation),
        "message": message_json(posted.user_message),
    }


def saved_end_frame(message: Message) -> dict[str, Any]:
    """`end` for an answer that is already saved (a replay or a late resume)."""
    data = message_json(message)
    return {
        "type": "end",
        "conversation": data["conversation"],
        "message": data["id"],
        "seq": data["seq"],
        "status": data["status"],
        "reason": data["reason"],
        "usage": data["usage"],
        "ttft_ms": data["ttft_ms"],
        "error": data["error"],
    }


def replay_frames(posted: Any, client_id: object = None) -> list[dict[str, Any]]:
    """A resend's answer: the same `ack`, then the answer as saved (with its `end` if finished).

    If the answer is still streaming, its live frames reach every socket of the user anyway.
    """
    frames = [ack_frame(posted, client_id)]
    assistant = posted.assistant
    if assistant is not None:
        frames.append({"type": "start", "conversation": str(posted.conversation.id), "message": message_json(assistant)})
        if assistant.status != "streaming":
            frames.append(saved_end_frame(assistant))
    return frames
