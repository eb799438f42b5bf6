"""What a model is asked: one branch of a conversation's message tree, and the settings.

Messages form a tree through `parent` (regenerate and edit make siblings). The history a
model sees is always one branch, walked from the chosen message up through parents, so
an old branch never leaks into a new answer.
"""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

from django.conf import settings

from chat.models import ChatModel, Conversation, Status
from chat.protocol import Options
from providers.base import ChatMessage, ChatRequest

T = TypeVar("T")

# id, parent, role, content, status, client_id, attachments (summaries; [] for almost all)
Row = tuple[uuid.UUID, uuid.UUID | None, str, str, str, uuid.UUID | None, list[dict[str, Any]]]


def rows(conversation: Conversation) -> dict[uuid.UUID, Row]:
    """Every message of the conversation in creation order, as light tuples (one query)."""
    fields = ("id", "parent_id", "role", "content", "status", "client_id", "attachments")
    return {row[0]: row for row in conversation.messages.order_by("created").values_list(*fields)}


def branch(all_rows: dict[uuid.UUID, Row], leaf: uuid.UUID | None) -> list[Row]:
    """The messages from the first one down to `leaf`, following parents."""
    path: list[Row] = []
    while leaf is not None and leaf in all_rows and len(path) <= len(all_rows):
        path.append(all_rows[leaf])
        leaf = all_rows[leaf][1]
    return path[::-1]


def turns(conversation: Conversation, path: list[Row], model: ChatModel | None = None) -> list[ChatMessage]:
    """The system prompt, then each turn of the branch that has text or files.

    Error placeholders are skipped; stopped partial answers are kept, as the user saw them.
    A turn's files become parts for `model` (chat.attachments.parts): only a branch that
    has some costs a query.
    """
    out = [ChatMessage("system", conversation.system_prompt)] if conversation.system_prompt else []
    kept = [r for r in path if (r[3] or r[6]) and r[4] not in (Status.ERROR, Status.STREAMING)]
    with_files = {r[0]: r[6] for r in kept if r[6]}
    if not with_files:
        return out + [ChatMessage(r[2], r[3]) for r in kept]  # type: ignore[arg-type]
    from chat.attachments import parts

    found = parts.for_rows(conversation.id, with_files, model)
    return out + [ChatMessage(r[2], r[3], found.get(r[0], ())) for r in kept]  # type: ignore[arg-type]


def request(model: ChatModel, history: list[ChatMessage], options: Options, conversation: Conversation) -> ChatRequest:
    """Sampling settings come from the command, else the conversation's own, else the admin's."""

    def pick(given: T | None, stored: T | None, default: T | None) -> T | None:
        return given if given is not None else stored if stored is not None else default

    built = ChatRequest(
        model=model.model_id,
        messages=tuple(history),
        temperature=pick(options.temperature, conversation.temperature, settings.PARLEY_DEFAULT_TEMPERATURE),
        max_tokens=pick(options.max_tokens, conversation.max_tokens, settings.PARLEY_DEFAULT_MAX_TOKENS),
        top_p=options.top_p,
        reasoning=model.reasoning_request(),
    )
    if any(m.parts for m in history):
        from chat.attachments import parts

        parts.check_context(model, built)  # documents that cannot fit are refused, never cut
    return built
