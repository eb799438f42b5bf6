"""`/v1/models` and `/v1/chat/completions`: Parley as an OpenAI-compatible endpoint.

A request is authenticated by its Bearer token (chat.api.tokens), read (chat.api.parse),
checked and admitted exactly like a chat send — the model through chat.access, the limits
and budgets through chat.admission, all before any upstream call — and run by the same
generation core with an ApiSink. Its frames become OpenAI's JSON or SSE chunks here.
The status is decided once the first token (or the failure) is known, so an upstream
failure before any text is a real 502/503, not a 200 with an error inside. A client that
hangs up cancels the view or the stream, which stops the generation (and so the upstream
call) at once.

These views are served without the site's middleware (chatsite.asgi routes /v1/ to
chat.api.handler): no session, CSRF or message hops on every call.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.views.decorators.csrf import csrf_exempt

from chat import admission, catalog_cache, limits, response_cache, store
from chat.access import ModelUnavailable, access_model_entry, usable_models
from chat.api import parse, tokens
from chat.api.errors import ApiError, refused, upstream
from chat.api.sink import ApiSink
from chat.generation import Job, registry
from chat.models import ApiToken, Status
from chat.protocol import Frame
from providers.base import ChatRequest

log = logging.getLogger(__name__)

INCORRECT = "Incorrect API key provided: this Parley token is unknown, revoked or expired."
FINISH = {"stop": "stop", "length": "length", "content_filter": "content_filter"}


# ---- who is asking -------------------------------------------------------------------------


def _bearer(request: HttpRequest) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    return secret.strip() if scheme.lower() == "bearer" else ""


async def _token(request: HttpRequest) -> ApiToken:
    secret = _bearer(request)
    if not secret:
        raise ApiError(
            401,
            "You didn't provide an API key. Send your Parley API token as "
            "'Authorization: Bearer <token>' (make one on your Parley settings page).",
            code="invalid_api_key",
        )
    token = await database_sync_to_async(tokens.authenticate)(secret)
    if token is None:
        raise ApiError(401, INCORRECT, code="invalid_api_key")
    return token


def _answer_error(exc: ApiError) -> HttpResponse:
    response = exc.response()
    if exc.status == 401:
        response["WWW-Authenticate"] = "Bearer"
    return response


# ---- /v1/models ------------------------------------------------------------------------------


def _listed(token: ApiToken) -> list[dict[str, Any]]:
    scope = tokens.scope_ids(token)
    _, ids = catalog_cache.api_ids()
    models = usable_models(token.user).order_by("provider__name", "display_name", "model_id")
    return [
        {
            "id": ids[str(m.id)],
            "object": "model",
            "created": int(m.created.timestamp()),
            "owned_by": m.provider.display_name,
            "name": m.name,
        }
        for m in models
        if str(m.id) in ids and (not scope or str(m.id) in scope)
    ]


@csrf_exempt
async def models(request: HttpRequest, model: str | None = None) -> HttpResponse:
    """The models this token's user may use (and the token may reach), by their API ids."""
    try:
        if request.method != "GET":
            raise ApiError(405, "Use GET for /v1/models.")
        token = await _token(request)
        listed = await database_sync_to_async(_listed)(token)
    except ApiError as exc:
        return _answer_error(exc)
    if model is None:
        return JsonResponse({"object": "list", "data": listed})
    found = next((m for m in listed if m["id"] == model), None)
    if found is None:
        return ApiError(
            404,
            f"The model `{model[:100]}` does not exist or you do not have access to it.",
            code="model_not_found",
            param="model",
        ).response()
    return JsonResponse(found)


# ---- /v1/chat/completions: checks, on the database thread ------------------------------------


def _prepare(token: ApiToken, asked: parse.Completion, plan_cache: tuple[bool, bool]) -> tuple[Any, ...]:
    """The model, the provider request, the cache's say and an admission ticket; or ApiError."""
    user = token.user
    forward, _ = catalog_cache.api_ids()
    model_uuid = forward.get(asked.model)
    if model_uuid is None:
        raise ApiError(
            404,
            f"The model `{asked.model[:100]}` does not exist. GET /v1/models lists yours.",
            code="model_not_found",
            param="model",
        )
    try:
        entry = access_model_entry(user, model_uuid)
    except ModelUnavailable:
        raise ApiError(
            403,
            f"You may not use the model `{asked.model[:100]}`.",
            "permission_denied",
            "model_not_allowed",
            "model",
        ) from None
    scope = tokens.scope_ids(token)
    if scope and model_uuid not in scope:
        raise ApiError(
            403,
            f"This token may not use the model `{asked.model[:100]}`.",
            "permission_denied",
            "model_not_allowed",
            "model",
        )
    model = entry.model
    if asked.has_images and not model.takes_images():
        raise ApiError(400, f"The model `{asked.model[:100]}` does not take images.", param="messages")
    request = ChatRequest(
        model=model.model_id,
        messages=asked.messages,
        temperature=asked.temperature
        if asked.temperature is not None
        else settings.PARLEY_DEFAULT_TEMPERATURE,
        max_tokens=asked.max_tokens if asked.max_tokens is not None else settings.PARLEY_DEFAULT_MAX_TOKENS,
        top_p=asked.top_p,
        stop=asked.stop,
        reasoning=model.reasoning_request(),
    )
    read, write = plan_cache
    cache = response_cache.plan(user, model, request, read=read, write=write)
    try:
        ticket = admission.admit(user, registry)
    except admission.Refused as exc:
        r = exc.refusal
        raise refused(r.code, r.message, r.retry_after) from None
    return ticket, entry, request, cache


def _checked(
    secret: str, asked: parse.Completion | None, problem: Exception | None, wish: tuple[bool, bool]
) -> tuple[Any, ...]:
    token = tokens.authenticate(secret)
    if token is None:
        raise ApiError(401, INCORRECT, code="invalid_api_key")
    if problem is not None or asked is None:
        raise problem or ApiError(400, "The request could not be read.")
    return (token, *_prepare(token, asked, wish))


def _cache_wish(request: HttpRequest) -> tuple[bool, bool]:
    """(read, write): `Cache-Control: no-cache` or `X-Parley-Cache: no` asks for a fresh answer
    (which is then kept); `no-store` neither reads nor keeps one."""
    control = {d.strip().lower() for d in request.headers.get("Cache-Control", "").split(",")}
    wish = request.headers.get("X-Parley-Cache", "").strip().lower()
    if "no-store" in control or wish == "no-store":
        return False, False
    return not ("no-cache" in control or wish in ("no", "no-cache", "bypass")), True


def _give_back(work: asyncio.Future[Any]) -> None:
    if not work.cancelled() and work.exception() is None:
        work.result()[1].release()


# ---- /v1/chat/completions ------------------------------------------------------------------


@csrf_exempt
async def chat_completions(request: HttpRequest) -> HttpResponseBase:
    received = time.monotonic()
    try:
        if request.method != "POST":
            raise ApiError(405, "Use POST for /v1/chat/completions.")
        secret = _bearer(request)
        if not secret:
            await _token(request)  # the 401 that says how to send a token
        problem: Exception | None = None
        asked: parse.Completion | None = None
        try:
            asked = parse.completion(_body(request))
        except (parse.BadRequest, ApiError) as exc:
            problem = exc  # answered after the token is checked: a bad token is a 401 first, as at OpenAI
        wish = _cache_wish(request)
        # The token, the checks and admission in one hop to the database thread, batched with
        # the chat's sends (store.checks).
        work = asyncio.ensure_future(store.checks.submit(lambda: _checked(secret, asked, problem, wish)))
        try:
            token, ticket, entry, provider_request, cache = await asyncio.shield(work)
        except asyncio.CancelledError:
            work.add_done_callback(_give_back)  # the caller hung up mid-check: give its place back
            raise
    except parse.BadRequest as exc:
        return ApiError(400, exc.message, code=exc.code, param=exc.param).response()
    except ApiError as exc:
        return _answer_error(exc)
    user = token.user
    sink = ApiSink(user, entry.model, provider_request, token.save_history, cache)
    job = Job(
        user_id=user.pk,
        conversation_id=sink.conversation_id,
        message_id=sink.message_id,
        family=entry.model.provider.family,
        target=entry.target,
        request=provider_request,
        received_at=received,
        source="api",
        cached=cache.hit,
    )
    try:
        registry.start(job, sink, ticket.started, ticket.release)
    except BaseException:
        ticket.release()
        raise
    assert asked is not None  # _checked raised otherwise
    answer = Answer(sink, asked, cache.state)
    response: HttpResponseBase
    try:
        first = await answer.first()
        if first is not None:
            return first  # failed before any text: a real error status
        if asked.stream:
            response = StreamingHttpResponse(answer.sse(), content_type="text/event-stream")
            response["Cache-Control"] = "no-cache"
            response["X-Accel-Buffering"] = "no"  # nginx must pass each chunk on at once
        else:
            response = await answer.whole()
    except BaseException:
        answer.hang_up()
        raise
    response["X-Parley-Cache"] = cache.state
    return response


def _body(request: HttpRequest) -> object:
    try:
        raw = request.body
    except RequestDataTooBig:
        raise ApiError(
            413,
            f"The request is larger than {limits.megabytes(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)}.",
            code="request_too_large",
        ) from None
    try:
        return limits.loads(raw)
    except limits.Invalid as exc:
        raise ApiError(400, str(exc)) from None


class Answer:
    """One running answer as OpenAI's response: the first frames decide the status."""

    def __init__(self, sink: ApiSink, asked: parse.Completion, cache_state: str) -> None:
        self.sink = sink
        self.asked = asked
        self.cache_state = cache_state
        self.id = f"chatcmpl-{sink.message_id.hex}"
        self.created = int(time.time())
        self.early: list[Frame] = []  # read before the response began
        self.over = False

    def hang_up(self) -> None:
        """The client went away (or the response failed): stop the answer and its upstream call."""
        if not self.over:
            self.over = True
            registry.stop(self.sink.user.pk, self.sink.conversation_id)

    async def _next(self) -> Frame | None:
        frame = await self.sink.frames.get()
        if frame is None or frame.type == "end":
            self.over = True
        return frame

    async def first(self) -> HttpResponse | None:
        """Wait for the first text or the end; an error response if it failed before any text."""
        while True:
            frame = await self._next()
            if frame is None:
                ref = self.sink.failed_ref or secrets.token_hex(4)
                return ApiError(
                    500, f"Parley could not save this call. Try again. (ref {ref})", "server_error", ref=ref
                ).response()
            self.early.append(frame)
            if frame.type == "end":
                data = frame.data
                if data["status"] == Status.ERROR and data.get("error"):
                    return upstream(data["error"]).response()
                return None
            if frame.data.get("text") or frame.data.get("reasoning"):
                return None

    async def _frames(self) -> AsyncIterator[Frame]:
        for frame in self.early:
            yield frame
        while not self.over:
            more = await self._next()
            if more is None:
                return
            yield more

    # -- the whole answer at once ------------------------------------------------------------
    async def whole(self) -> HttpResponse:
        text: list[str] = []
        reasoning: list[str] = []
        end: dict[str, Any] | None = None
        async for frame in self._frames():
            if frame.type == "delta":
                text.append(frame.data.get("text", ""))
                reasoning.append(frame.data.get("reasoning", ""))
            elif frame.type == "end":
                end = frame.data
        if end is None:
            return ApiError(500, "The answer ended unexpectedly.", "server_error").response()
        finish = self._finish_reason(end)
        if finish is None:
            return upstream(end.get("error") or {"kind": "incomplete", "message": _cut_short(end)}).response()
        message: dict[str, Any] = {"role": "assistant", "content": "".join(text), "refusal": None}
        if any(reasoning):
            message["reasoning_content"] = "".join(reasoning)
        return JsonResponse(
            {
                "id": self.id,
                "object": "chat.completion",
                "created": self.created,
                "model": self.asked.model,
                "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
                "usage": self._usage(end),
                "system_fingerprint": None,
                "cached": bool(end.get("cached")),
            }
        )

    # -- server-sent events ---------------------------------------------------------------------
    def _chunk(self, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        doc: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.asked.model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            **extra,
        }
        if self.asked.include_usage:
            doc.setdefault("usage", None)
        return b"data: " + json.dumps(doc, separators=(",", ":")).encode() + b"\n\n"

    async def sse(self) -> AsyncIterator[bytes]:
        """The answer as OpenAI streams it; the client hanging up stops the generation."""
        try:
            yield self._chunk({"role": "assistant", "content": ""})
            async for frame in self._frames():
                data = frame.data
                if frame.type == "delta":
                    delta = {"content": data.get("text", "")}
                    if data.get("reasoning"):
                        delta["reasoning_content"] = data["reasoning"]
                    yield self._chunk(delta)
                elif frame.type == "end":
                    for part in self._last_chunks(data):
                        yield part
            yield b"data: [DONE]\n\n"
        finally:
            self.hang_up()  # a no-op once the answer is over

    def _last_chunks(self, end: dict[str, Any]) -> list[bytes]:
        finish = self._finish_reason(end)
        if finish is None:
            # Cut short after some text: OpenAI's in-stream error, which its SDKs raise.
            error = upstream(end.get("error") or {"kind": "incomplete", "message": _cut_short(end)})
            return [b"data: " + json.dumps(error.body()).encode() + b"\n\n"]
        out = [self._chunk({}, finish, cached=bool(end.get("cached")))]
        if self.asked.include_usage:
            usage = {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.asked.model,
                "system_fingerprint": None,
                "choices": [],
                "usage": self._usage(end),
                "cached": bool(end.get("cached")),
            }
            out.append(b"data: " + json.dumps(usage, separators=(",", ":")).encode() + b"\n\n")
        return out

    # -- shared ---------------------------------------------------------------------------------
    @staticmethod
    def _finish_reason(end: dict[str, Any]) -> str | None:
        if end["status"] != Status.COMPLETE:
            return None
        return FINISH.get(end["reason"], "stop")

    def _usage(self, end: dict[str, Any]) -> dict[str, Any]:
        """The provider's usage in OpenAI's names (Parley's estimate when it reported none)."""
        outcome = self.sink.outcome
        given = end.get("usage") or {}
        prompt = (outcome.input_tokens if outcome else given.get("input_tokens")) or 0
        completion = (outcome.output_tokens if outcome else given.get("output_tokens")) or 0
        usage: dict[str, Any] = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": prompt if end.get("cached") else 0},
        }
        if outcome is not None and outcome.reasoning_tokens is not None:
            usage["completion_tokens_details"] = {"reasoning_tokens": outcome.reasoning_tokens}
        if given.get("estimated"):
            usage["estimated"] = True
        return usage


def _cut_short(end: dict[str, Any]) -> str:
    reasons = {
        "stopped": "it was stopped",
        "server_restart": "Parley restarted",
        "time_limit": "it ran past the server's time limit",
    }
    return f"The answer was cut short: {reasons.get(end.get('reason', ''), 'the provider failed')}."
