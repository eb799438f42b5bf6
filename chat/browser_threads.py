"""Saving what an in-browser model wrote, as a thread like any other conversation.

The browser produces the answer and posts the finished exchange; the server only stores it.
Three kinds, mirroring the socket's commands:

- a **send**: a new question (with the `parent` it follows: the last message on screen, or
  the edited message's parent for an Edit) and its answer;
- a **regenerate**: another answer to a saved `question`, a sibling of the earlier ones;
- a **continue**: the saved answer `continues` grows; `answer` is its whole new text.

Every save remembers the conversation's in-browser model, so reopening it picks that model
again. A repeated `client_id` returns the first save (a retry after a lost response).
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_POST

from chat import limits
from chat.access import NotFound, access_attachments, access_conversation
from chat.browser_models import access_browser_model
from chat.generation.job import estimate_tokens
from chat.models import (
    Attachment,
    BrowserModel,
    Conversation,
    Message,
    Reason,
    Role,
    Source,
    Status,
    UsageRecord,
)
from chat.sending import find_resend
from chat.serializers import conversation_json, message_json

MAX_TEXT = 100_000
TITLE_CHARS = 60
REASONS = {"stop": Reason.STOP, "length": Reason.LENGTH, "stopped": Reason.STOPPED, "error": Reason.ERROR}


class BadInput(ValueError):
    pass


@dataclass
class Exchange:
    client_id: uuid.UUID
    conversation: str | None
    model: BrowserModel
    answer: str
    reason: str
    prompt: str | None = None  # a send
    parent: str | None = None  # ... following this message (None: a first message)
    question: str | None = None  # a regenerate of the answers to this user message
    continues: str | None = None  # a continue of this answer
    usage: dict[str, int | None] = dataclasses.field(default_factory=dict)
    attachments: list[str] = dataclasses.field(default_factory=list)  # a send's uploads (issue 16)


def _text(data: dict[str, object], field: str, *, required: bool) -> str | None:
    value = data.get(field)
    if value is None and not required:
        return None
    try:
        return limits.text(value, field, MAX_TEXT)
    except limits.Invalid as exc:
        raise BadInput(str(exc)) from None


def _usage(data: dict[str, object]) -> dict[str, int | None]:
    """What the page measured (tokens from the engine, times in ms); missing parts are estimated."""
    raw = data.get("usage")
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise BadInput("`usage` must be an object.")
    out: dict[str, int | None] = {}
    for key in ("input_tokens", "output_tokens", "ttft_ms", "duration_ms"):
        try:
            out[key] = limits.number(raw.get(key), f"usage.{key}", 0, 10**9, whole=True)  # type: ignore[assignment]
        except limits.Invalid as exc:
            raise BadInput(str(exc)) from None
    return out


def _attachment_ids(data: dict[str, object]) -> list[str]:
    raw = data.get("attachments") or []
    if not isinstance(raw, list) or len(raw) > limits.attachments_per_message() or not all(
        isinstance(i, str) for i in raw
    ):
        raise BadInput(f"`attachments` must be a list of at most {limits.attachments_per_message()} ids.")
    return raw


def _id(data: dict[str, object], field: str) -> str | None:
    value = data.get(field)
    if value is not None and not isinstance(value, str):
        raise BadInput(f"`{field}` must be an id or null.")
    return value


def parse_exchange(user: User, body: bytes) -> Exchange:
    try:
        data = limits.loads(body)
    except limits.Invalid as exc:
        raise BadInput(str(exc)) from None
    if not isinstance(data, dict):
        raise BadInput("The body must be a JSON object.")
    try:
        client_id = uuid.UUID(str(data.get("client_id")))
    except ValueError:
        raise BadInput("`client_id` must be a UUID.") from None
    question, continues = _id(data, "question"), _id(data, "continues")
    attachments = _attachment_ids(data)
    reason = data.get("reason") or "stop"
    if reason not in REASONS:
        raise BadInput(f"`reason` must be one of {', '.join(REASONS)}.")
    exchange = Exchange(
        client_id, _id(data, "conversation"), access_browser_model(user, data.get("model", "")),
        answer=_text(data, "answer", required=True) or "", reason=str(reason),
        prompt=_text(data, "prompt", required=not (question or continues or attachments)), parent=_id(data, "parent"),
        question=question, continues=continues, usage=_usage(data), attachments=attachments,
    )
    if exchange.prompt is not None and not exchange.prompt.strip() and not attachments:
        raise BadInput("`prompt` must be a non-empty string.")
    if (question or continues) and not exchange.conversation:
        raise BadInput("`conversation` is needed to regenerate or continue an answer.")
    return exchange


def _end(answer: Message, ex: Exchange) -> None:
    reason = REASONS[ex.reason]
    answer.reason = reason
    if reason == Reason.ERROR:
        answer.status = Status.INCOMPLETE if ex.answer else Status.ERROR
    else:
        answer.status = Status.INCOMPLETE if reason == Reason.STOPPED else Status.COMPLETE


def _in(conversation: Conversation, message_id: str | None, field: str) -> Message | None:
    """A message of this conversation (None stays None); anything else is a 400, not a leak."""
    if message_id is None:
        return None
    try:
        return conversation.messages.get(id=uuid.UUID(message_id))
    except (ValueError, Message.DoesNotExist):
        raise BadInput(f"`{field}` is not a message of this conversation.") from None


def _earlier(user: User, conversation: Conversation, client_id: uuid.UUID) -> list[Message] | None:
    """What a save with this client_id wrote, if it already happened: [question, answer]."""
    earlier = find_resend(user, client_id, conversation.id)
    if earlier is None:
        return None
    return [m for m in (earlier.user_message, earlier.assistant) if m is not None]


def do_save_exchange(user: User, ex: Exchange) -> tuple[Conversation, list[Message], bool]:
    """Write one exchange; returns the conversation, [question, answer] and whether it was a repeat."""
    conversation = (
        access_conversation(user, ex.conversation)
        if ex.conversation
        else Conversation.objects.filter(owner=user, client_id=ex.client_id).first()  # type: ignore[misc]
    )
    if conversation is not None and not ex.continues:
        earlier = _earlier(user, conversation, ex.client_id)
        if earlier is not None:
            return conversation, earlier, True
    try:
        with transaction.atomic():
            if conversation is None:
                title = " ".join((ex.prompt or "").split())[:TITLE_CHARS]
                conversation = Conversation.objects.create(  # type: ignore[misc]
                    owner=user, client_id=ex.client_id, title=title
                )
            before = _in(conversation, ex.continues, "continues").content if ex.continues else ""  # type: ignore[union-attr]
            messages = _write(conversation, ex)
            conversation.browser_model = ex.model
            conversation.save(update_fields=["browser_model", "updated"])
            # Metered like any answer (never blocked): the answer's own tokens, not a continue's start.
            _meter(user, ex, messages, before)
    except IntegrityError:  # the same client_id raced in twice: the other one won
        return do_save_exchange(user, ex)
    return conversation, messages, False


def _write(conversation: Conversation, ex: Exchange) -> list[Message]:
    name = f"{ex.model.display_name} (in your browser)"
    if ex.continues:
        answer = _in(conversation, ex.continues, "continues")
        if answer is None or answer.role != Role.ASSISTANT or not ex.answer.startswith(answer.content):
            raise BadInput("`answer` must be the continued answer's text followed by what was added.")
        answer.content = ex.answer
        _end(answer, ex)
        answer.save(update_fields=["content", "status", "reason", "updated"])
        return [m for m in (answer.parent, answer) if m is not None]
    if ex.question:
        asked = _in(conversation, ex.question, "question")
        if asked is None or asked.role != Role.USER:
            raise BadInput("`question` must be a user message.")
        answer_client_id: uuid.UUID | None = ex.client_id
    else:
        parent = _in(conversation, ex.parent, "parent")
        files = access_attachments(conversation.owner, ex.attachments, conversation.id)
        asked = Message.objects.create(
            conversation=conversation, parent=parent, role=Role.USER, content=ex.prompt or "",
            client_id=ex.client_id, attachments=[a.summary() for a in files],
        )
        Attachment.objects.filter(id__in=[a.id for a in files], conversation__isnull=True).update(
            conversation=conversation
        )
        answer_client_id = None
    answer = Message(conversation=conversation, parent=asked, role=Role.ASSISTANT, content=ex.answer,
                     model_name=name, client_id=answer_client_id)
    _end(answer, ex)
    answer.save()
    return [asked, answer]


def _meter(user: User, ex: Exchange, messages: list[Message], before: str) -> None:
    asked, answer = messages[0], messages[-1]
    measured = ex.usage
    estimated = measured.get("input_tokens") is None or measured.get("output_tokens") is None
    UsageRecord.objects.create(
        user=user, username=user.get_username(), source=Source.BROWSER, model_name=answer.model_name,
        message=answer, status=answer.status,
        input_tokens=measured.get("input_tokens") or estimate_tokens(asked.content if asked is not answer else ""),
        output_tokens=measured.get("output_tokens") or estimate_tokens(ex.answer[len(before):]),
        estimated=estimated, ttft_ms=measured.get("ttft_ms"), duration_ms=measured.get("duration_ms"),
        cost=0, currency="",
    )


def _json_error(exc: Exception, status: int) -> JsonResponse:
    return JsonResponse({"error": str(exc)}, status=status)


@require_POST
def save_exchange(request: HttpRequest) -> HttpResponse:
    """POST /api/browser-models/exchanges/ — CSRF-protected like every POST (X-CSRFToken)."""
    if not request.user.is_authenticated:
        return JsonResponse({"error": "Sign in first."}, status=403)
    try:
        exchange = parse_exchange(request.user, request.body)  # type: ignore[arg-type]
        conversation, messages, duplicate = do_save_exchange(request.user, exchange)  # type: ignore[arg-type]
    except BadInput as exc:
        return _json_error(exc, 400)
    except NotFound as exc:
        return _json_error(exc, 404)
    return JsonResponse(
        {
            "conversation": conversation_json(conversation),
            "messages": [message_json(m) for m in messages],
            "duplicate": duplicate,
        },
        status=200 if duplicate else 201,
    )


@require_POST
def choose_model(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    """POST /api/browser-models/conversations/<id>/model/ {model: "browser:<uuid>" | null}.

    Picking an in-browser model for a conversation (or a server model again: null) is
    remembered at once, so a reload shows the model that will answer the next message.
    """
    if not request.user.is_authenticated:
        return JsonResponse({"error": "Sign in first."}, status=403)
    try:
        conversation = access_conversation(request.user, conversation_id)
        data = limits.loads(request.body or b"{}")
        wanted = data.get("model") if isinstance(data, dict) else None
        conversation.browser_model = access_browser_model(request.user, wanted) if wanted else None
    except limits.Invalid as exc:
        return _json_error(exc, 400)
    except NotFound as exc:
        return _json_error(exc, 404)
    conversation.save(update_fields=["browser_model"])
    return JsonResponse({"conversation": conversation_json(conversation)})

