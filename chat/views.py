"""The chat page and the JSON the page reads. Every object goes through chat.access."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from chat import limits
from chat.access import access_conversation, usable_models
from chat.browser_models import browser_models_for, engine_page
from chat.conversations.queries import conversation_page
from chat.conversations.writes import preferences_for
from chat.serializers import conversation_json, conversation_settings_json, message_json, model_json


def home(request: HttpRequest) -> HttpResponse:
    return redirect("chat")


def _page_preferences(user: object) -> dict[str, object]:
    """What a new chat starts with: the user's choices, then the admin's defaults."""
    prefs = preferences_for(user)  # type: ignore[arg-type]
    return {
        "display_name": prefs.display_name,
        "theme": prefs.theme,
        "default_model": str(prefs.default_model_id) if prefs.default_model_id else None,
        "system_prompt": prefs.default_system_prompt,
        "temperature": settings.PARLEY_DEFAULT_TEMPERATURE,
        "max_tokens": settings.PARLEY_DEFAULT_MAX_TOKENS,
    }


@require_GET
@login_required
@engine_page
def chat_page(request: HttpRequest, conversation_id: uuid.UUID | None = None) -> HttpResponse:
    conversation = access_conversation(request.user, conversation_id) if conversation_id else None
    models = usable_models(request.user).order_by("provider__name", "display_name", "model_id")
    page_data = {
        "user": request.user.get_username(),
        "protocol": 1,
        "ws_path": "/ws/chat/",
        "models": [model_json(m) for m in models],
        **conversation_page(request.user, None),
        "conversation": conversation_json(conversation) if conversation else None,
        "settings": conversation_settings_json(conversation) if conversation else None,
        "preferences": _page_preferences(request.user),
        "messages": [message_json(m) for m in conversation.messages.all()] if conversation else [],
        "browser_models": browser_models_for(request.user),
        "limits": {
            "message_chars": limits.message_chars(), "frame_chars": limits.frame_bytes(),
            "attachment_bytes": limits.attachment_bytes(), "attachments_per_message": limits.attachments_per_message(),
        },
    }
    return render(request, "chat/chat.html", {"page_data": page_data})
