"""Conversation titles written by a model after the first answer.

A conversation starts titled with its opening words. Once an answer is saved, `schedule()`
starts `maybe_title` as a background task, so the answer never waits for it: it asks the
admin's title model (PARLEY_TITLE_MODEL) or the conversation's own model for a few words,
with a short timeout, and publishes a `title` frame to the user's open tabs. Any failure
leaves the opening words in place. A title the user typed always wins: the claim and the
final write are conditional updates on `title_source`, so a rename in between is kept.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings

from chat import protocol
from chat.generation import hub
from chat.models import ChatModel, Conversation, Message, Role, Status, TitleSource
from providers import registry as provider_registry
from providers.base import ChatMessage, ChatRequest, ProviderError, TextDelta

log = logging.getLogger(__name__)

TITLE_CHARS = 60
PROMPT_CHARS = 2_000  # of each message: enough to know the topic, cheap to send
INSTRUCTION = (
    "Write a short title (at most six words) for the conversation below. "
    "Reply with the title only: no quotes, no punctuation at the end."
)

# Strong references: the event loop keeps only weak ones to tasks.
_tasks: set[asyncio.Task[str | None]] = set()


def schedule(conversation_id: uuid.UUID | str, user_id: int) -> asyncio.Task[str | None] | None:
    """Start titling in the background; returns at once (call it after an answer is saved)."""
    if not settings.PARLEY_AUTO_TITLES:
        return None
    task = asyncio.get_running_loop().create_task(maybe_title(conversation_id, user_id))
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
    return task


async def maybe_title(conversation_id: uuid.UUID | str, user_id: int) -> str | None:
    """Title the conversation if it still has its first-message title; the new title or None."""
    job = await database_sync_to_async(_claim)(conversation_id, user_id)
    if job is None:
        return None
    try:
        title = await _ask(*job)
    except Exception as exc:  # noqa: BLE001 — a title is a nicety: never let it surface as an error
        kind = exc.kind.value if isinstance(exc, ProviderError) else type(exc).__name__
        log.info("title for conversation %s not generated: %s", conversation_id, kind)
        title = ""
    saved = await database_sync_to_async(_save)(conversation_id, title)
    if saved:
        hub.publish(user_id, protocol.title(conversation_id, title))
        return title
    return None


def _title_model(conversation: Conversation) -> ChatModel | None:
    chosen = settings.PARLEY_TITLE_MODEL
    if chosen:
        model = ChatModel.objects.select_related("provider").filter(
            id=chosen, enabled=True, provider__enabled=True
        ).first()
        if model is not None:
            return model
        log.warning("PARLEY_TITLE_MODEL %s is not an enabled model; using the conversation's", chosen)
    if conversation.model_id is None:
        return None
    return ChatModel.objects.select_related("provider").filter(
        id=conversation.model_id, enabled=True, provider__enabled=True
    ).first()


def _claim(conversation_id: uuid.UUID | str, user_id: int) -> tuple[str, Any, ChatRequest] | None:
    """Take the conversation for titling if it is untitled and answered; else None."""
    conversation = Conversation.objects.filter(
        id=conversation_id, owner_id=user_id, deleted_at__isnull=True, title_source=TitleSource.FIRST_MESSAGE
    ).first()
    if conversation is None:
        return None
    turns = list(
        Message.objects.filter(conversation=conversation, role__in=[Role.USER, Role.ASSISTANT])
        .exclude(content="").order_by("created").values_list("role", "content", "status")[:2]
    )
    answered = len(turns) == 2 and turns[1][0] == Role.ASSISTANT and turns[1][2] == Status.COMPLETE
    model = _title_model(conversation) if answered else None
    if model is None:
        return None
    claimed = Conversation.objects.filter(id=conversation.id, title_source=TitleSource.FIRST_MESSAGE).update(
        title_source=TitleSource.GENERATING
    )
    if not claimed:
        return None  # another task or a rename got there first
    transcript = "\n\n".join(f"{role.upper()}: {content[:PROMPT_CHARS]}" for role, content, _ in turns)
    request = ChatRequest(
        model=model.model_id,
        messages=(ChatMessage("system", INSTRUCTION), ChatMessage("user", transcript)),
        temperature=0.2,
        max_tokens=24,
    )
    return model.provider.family, model.provider.target(), request


async def _ask(family: str, target: Any, request: ChatRequest) -> str:
    parts: list[str] = []

    async def collect() -> None:
        async for event in provider_registry.stream(family, target, request):
            if isinstance(event, TextDelta):
                parts.append(event.text)
                if sum(map(len, parts)) > TITLE_CHARS * 4:
                    return  # a model that rambles has said enough

    await asyncio.wait_for(collect(), timeout=settings.PARLEY_TITLE_TIMEOUT)
    return clean_title("".join(parts))


def clean_title(text: str) -> str:
    """The first line, without quotes, a "Title:" label or trailing punctuation, at most 60 chars."""
    line = next((line for line in text.strip().splitlines() if line.strip()), "")
    line = line.strip().strip("*#").strip()
    if line.lower().startswith("title:"):
        line = line[6:].strip()
    line = line.strip("\"'“”‘’`").rstrip(".!:;,").strip()
    line = " ".join(line.split())
    if len(line) > TITLE_CHARS:
        line = line[:TITLE_CHARS].rsplit(" ", 1)[0] or line[:TITLE_CHARS]
    return line


def _save(conversation_id: uuid.UUID | str, title: str) -> bool:
    """Write the title unless the user renamed meanwhile; an empty title keeps the opening words."""
    if not title:
        Conversation.objects.filter(id=conversation_id, title_source=TitleSource.GENERATING).update(
            title_source=TitleSource.FALLBACK
        )
        return False
    # A queryset update leaves `updated` alone: a new title does not reorder the list.
    return bool(
        Conversation.objects.filter(id=conversation_id, title_source=TitleSource.GENERATING).update(
            title=title, title_source=TitleSource.GENERATED
        )
    )
