"""The chat page and the JSON the page reads. Every object goes through chat.access."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from chat.access import access_conversation, usable_models
from chat.browser_models import browser_models_for, engine_page
from chat.models import Conversation
from chat.serializers import conversation_json, message_json, model_json

PAGE_SIZE = 50


def home(request: HttpRequest) -> HttpResponse:
    return redirect("chat")


def _conversation_page(user: object, before: datetime | None) -> dict[str, object]:
    qs = Conversation.objects.filter(owner=user).order_by("-updated")
    if before is not None:
        qs = qs.filter(updated__lt=before)
    page = list(qs[: PAGE_SIZE + 1])
    more = len(page) > PAGE_SIZE
    page = page[:PAGE_SIZE]
    return {
        "conversations": [conversation_json(c) for c in page],
        "next": page[-1].updated.isoformat() if more else None,
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
        **_conversation_page(request.user, None),
        "conversation": conversation_json(conversation) if conversation else None,
        "messages": [message_json(m) for m in conversation.messages.all()] if conversation else [],
        "browser_models": browser_models_for(request.user),
    }
    return render(request, "chat/chat.html", {"page_data": page_data})


@require_GET
@login_required
def api_conversations(request: HttpRequest) -> HttpResponse:
    before_raw = request.GET.get("before")
    before = None
    if before_raw:
        try:
            before = datetime.fromisoformat(before_raw)
        except ValueError:
            return HttpResponseBadRequest("`before` must be an ISO 8601 time.")
    return JsonResponse(_conversation_page(request.user, before))


@require_GET
@login_required
def api_conversation(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    conversation = access_conversation(request.user, conversation_id)
    return JsonResponse(
        {
            "conversation": conversation_json(conversation),
            "messages": [message_json(m) for m in conversation.messages.all()],
        }
    )
