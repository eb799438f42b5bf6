"""httpx plumbing every family shares: clients, timeouts, errors, the stall watchdog, retries.

Error bodies are read (capped) only to classify them. Their text never reaches
``ProviderError.message`` or ``detail``: upstream messages can echo fragments of the
key we sent ("Incorrect API key provided: sk-ab…"), so ``detail`` keeps only the
error's type/code after squeezing them to a short identifier.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import random
import re
import ssl
import time
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Protocol, TypeVar, cast

import httpx

from providers.base import ErrorKind, Event, ProviderError, Target
from providers.sse import Comment
from providers.transport import DirectBody, transport

MAX_ERROR_BODY = 64 * 1024
MAX_JSON_BODY = 16 * 1024 * 1024  # model lists (OpenRouter's is a few MB)

# Each upstream connection gets an httpx client of its own, checked out for one request and
# checked back in with its kept-alive connection. httpcore's shared pool walks every one
# of its connections (and polls the idle ones' sockets) on each request and each close:
# at a hundred concurrent streams that walk cost a quarter of the event loop's time. A
# client per connection makes choosing one a list pop. Clients belong to the loop that
# opened them: tests and management commands run several loops in one process.
MAX_IDLE_PER_ORIGIN = 100
_ssl_context: ssl.SSLContext | None = None

# Streamed bodies are read straight off the connection (providers/transport.py DirectBody)
# rather than through httpx's iterator. The bench turns this off to measure the difference.
DIRECT_BODY = True


class _Clients:
    def __init__(self) -> None:
        self.idle: dict[tuple[bytes, bytes, int | None], list[httpx.AsyncClient]] = {}
        self.busy: set[httpx.AsyncClient] = set()


_loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Clients] = weakref.WeakKeyDictionary()


def _new_client() -> httpx.AsyncClient:
    global _ssl_context
    if _ssl_context is None:
        _ssl_context = httpx.create_ssl_context()  # tens of ms: once per process, not per client
    return httpx.AsyncClient(transport=transport(_ssl_context), follow_redirects=False, trust_env=False)


@contextlib.asynccontextmanager
async def _checkout(url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client for one request to ``url``'s origin, reusing a kept-alive connection if any."""
    clients = _loops.get(asyncio.get_running_loop())
    if clients is None:
        clients = _loops[asyncio.get_running_loop()] = _Clients()
    origin = httpx.URL(url)
    key = (origin.raw_scheme, origin.raw_host, origin.port)
    idle = clients.idle.setdefault(key, [])
    client = idle.pop() if idle else _new_client()
    clients.busy.add(client)
    try:
        yield client
    finally:
        clients.busy.discard(client)
        if len(idle) < MAX_IDLE_PER_ORIGIN and not client.is_closed:
            idle.append(client)  # last in, first out: the warmest connection goes next
        else:
            await client.aclose()


async def aclose_client() -> None:
    """Close the running loop's clients (on shutdown, or between tests)."""
    clients = _loops.pop(asyncio.get_running_loop(), None)
    if clients is not None:
        for client in [*clients.busy, *(c for idle in clients.idle.values() for c in idle)]:
            await client.aclose()


def timeout_for(target: Target) -> httpx.Timeout:
    # The socket read timeout is only a backstop: the watchdog in iter_items enforces the
    # real read/first-token limits, which keep-alive comments must not reset.
    read = max(target.read_timeout, target.first_token_timeout) + 5.0
    return httpx.Timeout(connect=target.connect_timeout, read=read, write=30.0, pool=target.connect_timeout)


def join_url(base: str, path: str) -> str:
    return base.rstrip("/") + "/" + path.lstrip("/")


# ---- classifying errors -------------------------------------------------------------

# An error type/code is logged only if it looks like an identifier; anything else
# (free text, something key-shaped such as "sk-...") is dropped, not scrubbed. Words carry
# no digits: a Gemini key ("AIza" + 35 letters and digits) is otherwise identifier-shaped,
# and upstreams do echo the key they were sent. Real types and codes are words
# ("invalid_api_key", "RESOURCE_EXHAUSTED") or numbers ("429").
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z_.]{0,39}|[0-9]{1,6}")
_CONTEXT_MARKERS = (
    "context_length",
    "context length",
    "context window",
    "maximum context",
    "context size",
    "exceed_context",
    "prompt is too long",
    "input is too long",
    "too many tokens",
    "input token count",
    "maximum number of tokens",
    "must be <=",
)
# A 5xx is normally worth retrying, but a server that ran out of context says so with a 500:
# llama.cpp's server answers "Context size has been exceeded." (type server_error, code 500)
# when its KV cache fills mid-prompt, as an HTTP 500 or as an in-stream error. Retrying the
# same prompt fails the same way, so these few phrasings make a 5xx a context_length error.
_CONTEXT_MARKERS_5XX = ("context size has been exceeded", "exceeds the available context size")
_QUOTA_MARKERS = ("insufficient_quota", "insufficient balance", "insufficient credits", "billing")
_KEY_MARKERS = ("api_key_invalid", "api key not valid", "invalid_api_key", "authentication_error")

# Error *type* strings from every family, for in-stream errors that carry no status.
_TYPE_KINDS = {
    "overloaded_error": ErrorKind.OVERLOADED,
    "overloaded": ErrorKind.OVERLOADED,
    "unavailable": ErrorKind.OVERLOADED,
    "rate_limit_error": ErrorKind.RATE_LIMIT,
    "rate_limit_exceeded": ErrorKind.RATE_LIMIT,
    "resource_exhausted": ErrorKind.RATE_LIMIT,
    "authentication_error": ErrorKind.AUTH,
    "permission_error": ErrorKind.AUTH,
    "permission_denied": ErrorKind.AUTH,
    "unauthenticated": ErrorKind.AUTH,
    "invalid_request_error": ErrorKind.BAD_REQUEST,
    "invalid_argument": ErrorKind.BAD_REQUEST,
    "not_found_error": ErrorKind.BAD_REQUEST,
    "validation": ErrorKind.BAD_REQUEST,
    "request_too_large": ErrorKind.BAD_REQUEST,
    "deadline_exceeded": ErrorKind.TIMEOUT,
    "timeout": ErrorKind.TIMEOUT,
}

_QUOTA_MESSAGE = (
    "The model provider's account is out of credit or quota. An administrator needs to check its billing."
)
_NOT_FOUND_MESSAGE = "The model provider does not know this model, or the provider's address is wrong."
_REDIRECT_MESSAGE = (
    "The model provider answered with a redirect, which Parley never follows. An administrator "
    "needs to check the provider's base URL."
)


def _safe(value: object) -> str:
    """A type/code reduced to a short identifier: never free text from upstream."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return ""
    text = str(value)
    return text if _IDENTIFIER.fullmatch(text) else ""


def _error_fields(payload: object) -> tuple[str, str, int | None]:
    """(type, code, numeric status) from any family's error JSON, all sanitized."""
    if not isinstance(payload, dict):
        return "", "", None
    # {"error": {...}} nests the fields; TGI's {"error": "text", "error_type": ...} does not.
    err = payload["error"] if isinstance(payload.get("error"), dict) else payload
    etype = _safe(err.get("type") or err.get("status") or err.get("error_type") or "")
    code = err.get("code")
    numeric = err.get("http_status_code", code)
    status = numeric if isinstance(numeric, int) and not isinstance(numeric, bool) else None
    return etype, _safe(code), status


def _kind_for_status(status: int) -> ErrorKind:
    if status in (401, 403):
        return ErrorKind.AUTH
    if status == 429:
        return ErrorKind.RATE_LIMIT
    if status in (408, 504):
        return ErrorKind.TIMEOUT
    if status in (503, 529):
        return ErrorKind.OVERLOADED
    if status >= 500:
        return ErrorKind.UNAVAILABLE
    return ErrorKind.BAD_REQUEST


def _says_context_is_full(kind: ErrorKind, lowered: str) -> bool:
    if kind is ErrorKind.BAD_REQUEST:
        return any(m in lowered for m in _CONTEXT_MARKERS)
    return kind is ErrorKind.UNAVAILABLE and any(m in lowered for m in _CONTEXT_MARKERS_5XX)


def classify(status: int | None, payload: object, text: str) -> ProviderError:
    """Build the error for an HTTP status and/or an error payload; ``text`` is only searched."""
    etype, code, inner_status = _error_fields(payload)
    lowered = text.lower()
    if status is not None:
        kind = _kind_for_status(status)
    elif etype.lower() in _TYPE_KINDS:
        kind = _TYPE_KINDS[etype.lower()]
    elif inner_status is not None and inner_status >= 400:
        kind = _kind_for_status(inner_status)
    else:
        kind = ErrorKind.UNAVAILABLE
    message: str | None = None
    if status == 402 or any(m in lowered for m in _QUOTA_MARKERS):
        kind, message = ErrorKind.AUTH, _QUOTA_MESSAGE
    elif kind is ErrorKind.BAD_REQUEST and any(m in lowered for m in _KEY_MARKERS):
        kind = ErrorKind.AUTH  # Gemini answers a bad key with 400 INVALID_ARGUMENT
    elif _says_context_is_full(kind, lowered):
        kind = ErrorKind.CONTEXT_LENGTH
    elif kind is ErrorKind.RATE_LIMIT and etype.lower() == "overloaded":
        kind = ErrorKind.OVERLOADED  # TGI's full queue is a 429
    elif kind is ErrorKind.BAD_REQUEST and status == 404:
        message = _NOT_FOUND_MESSAGE
    elif status is not None and 300 <= status < 400:
        message = _REDIRECT_MESSAGE  # a redirect could lead anywhere, a metadata address included
    parts = [f"HTTP {status}" if status is not None else "in-stream"]
    if etype:
        parts.append(f"type={etype}")
    if code:
        parts.append(f"code={code}")
    return ProviderError(kind, message, detail=" ".join(parts), status=status)


def parse_retry_after(headers: Mapping[str, str], payload: object = None) -> float | None:
    """Seconds to wait, from retry-after-ms, Retry-After (seconds or date) or Gemini RetryInfo."""
    ms = headers.get("retry-after-ms")
    if ms:
        with contextlib.suppress(ValueError):
            return max(0.0, float(ms) / 1000)
    value = headers.get("retry-after")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            with contextlib.suppress(TypeError, ValueError):
                when = email.utils.parsedate_to_datetime(value)
                return max(0.0, when.timestamp() - time.time())
    return _gemini_retry_delay(payload)


def _gemini_retry_delay(payload: object) -> float | None:
    err = payload.get("error") if isinstance(payload, dict) else None
    details = err.get("details") if isinstance(err, dict) else None
    for item in details if isinstance(details, list) else ():
        delay = item.get("retryDelay") if isinstance(item, dict) else None
        if isinstance(delay, str) and delay.endswith("s"):
            with contextlib.suppress(ValueError):
                return max(0.0, float(delay[:-1]))
    return None


def _loads(raw: bytes) -> object:
    try:
        return json.loads(raw)
    except ValueError:
        return None


async def _read_capped(response: httpx.Response, cap: int) -> bytes:
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) >= cap:
            break
    return bytes(body[:cap])


async def error_from_response(response: httpx.Response) -> ProviderError:
    """Map a non-2xx response, reading at most MAX_ERROR_BODY of its body."""
    try:
        raw = await _read_capped(response, MAX_ERROR_BODY)
    except httpx.HTTPError:
        raw = b""
    payload = _loads(raw)
    err = classify(response.status_code, payload, raw.decode("utf-8", "replace"))
    err.retry_after = parse_retry_after(response.headers, payload)
    return err


def error_from_payload(payload: object) -> ProviderError:
    """An error object that arrived inside a 200 stream (every family has one)."""
    text = json.dumps(payload) if not isinstance(payload, str) else payload
    return classify(None, payload, text)


def transport_error(exc: httpx.HTTPError, *, started: bool = False) -> ProviderError:
    """Network failures: timeouts time out; a cut after content began is an incomplete answer."""
    name = type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return ProviderError(ErrorKind.TIMEOUT, detail=name)
    if started:
        return ProviderError(ErrorKind.INCOMPLETE, detail=name)
    return ProviderError(ErrorKind.UNAVAILABLE, detail=name)


# ---- requests ---------------------------------------------------------------------------

_WRONG_BODY_MESSAGE = (
    "The model provider answered with a web page instead of a stream. Its base URL is probably wrong."
)


async def _check_stream_response(response: httpx.Response) -> None:
    if response.status_code >= 300:
        raise await error_from_response(response)
    ctype = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "text/html":
        raise ProviderError(ErrorKind.UNAVAILABLE, _WRONG_BODY_MESSAGE, detail="200 text/html", status=200)
    if ctype == "application/json":
        # LM Studio answers a wrong path with 200 {"error": ...}; an answer must be a stream.
        raw = await _read_capped(response, MAX_ERROR_BODY)
        err = classify(None, _loads(raw), raw.decode("utf-8", "replace"))
        if err.kind is ErrorKind.UNAVAILABLE:
            err = ProviderError(ErrorKind.BAD_REQUEST, detail=err.detail)
        err.detail = f"200 application/json instead of a stream; {err.detail}"
        err.status = 200
        raise err


@contextlib.asynccontextmanager
async def open_stream(
    target: Target, url: str, body: dict[str, Any], headers: Mapping[str, str]
) -> AsyncIterator[httpx.Response]:
    """POST and hand over a checked streaming response, always closed afterwards."""
    async with _checkout(url) as client:
        request = client.build_request("POST", url, json=body, headers=headers, timeout=timeout_for(target))
        try:
            response = await client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise transport_error(exc) from None
        try:
            await _check_stream_response(response)
            yield response
        finally:
            await response.aclose()


async def get_json(target: Target, url: str, headers: Mapping[str, str]) -> object:
    """GET a JSON document (model lists), mapping failures like a stream's."""
    return await _json(target, "GET", url, headers, None)


async def post_json(target: Target, url: str, body: object, headers: Mapping[str, str]) -> object:
    """POST a small JSON body for a JSON document (Ollama's /api/show), like get_json."""
    return await _json(target, "POST", url, headers, body)


async def _json(target: Target, method: str, url: str, headers: Mapping[str, str], body: object) -> object:
    async with _checkout(url) as client:
        request = client.build_request(method, url, headers=headers, json=body, timeout=timeout_for(target))
        try:
            response = await client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise transport_error(exc) from None
        try:
            if response.status_code >= 300:
                raise await error_from_response(response)
            raw = await _read_capped(response, MAX_JSON_BODY)
        except httpx.HTTPError as exc:
            raise transport_error(exc) from None
        finally:
            await response.aclose()
    payload = _loads(raw)
    if payload is None:
        raise ProviderError(ErrorKind.BAD_REQUEST, detail="model list is not JSON")
    return payload


# ---- reading with a stall watchdog -------------------------------------------------------

T = TypeVar("T")


class Decoder(Protocol[T]):
    def feed(self, chunk: bytes) -> list[T]: ...

    def end(self) -> list[T]: ...


def is_content(item: object) -> bool:
    """Everything but keep-alive comments counts as the upstream still talking."""
    return not isinstance(item, Comment)


class _Watchdog:
    """Cancels the reading task once ``deadline`` passes while it waits for a read.

    One timer re-armed only when it fires, not one per chunk: ``asyncio.timeout_at``
    around every read cost a timer and a context manager per token, a tenth of the
    time a busy server spent per token. Moving the deadline is a float assignment.
    """

    __slots__ = ("armed_at", "deadline", "fired", "handle", "loop", "reading", "task")

    def __init__(self, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        self.loop = loop
        self.task = asyncio.current_task()
        self.deadline = deadline
        self.reading = False
        self.fired = False
        self.armed_at = deadline
        self.handle = loop.call_at(deadline, self._check)

    def move(self, deadline: float) -> None:
        self.deadline = deadline
        if deadline < self.armed_at:  # only the switch from first-token to read limit
            self.handle.cancel()
            self._arm(deadline)

    def _arm(self, when: float) -> None:
        self.armed_at = when
        self.handle = self.loop.call_at(when, self._check)

    def _check(self) -> None:
        now = self.loop.time()
        if now < self.deadline:
            self._arm(self.deadline)
        elif not self.reading:
            # The consumer is busy between reads: that time is not the upstream's silence.
            self._arm(now + 0.05)
        elif self.task is not None:
            self.fired = True
            self.task.cancel()

    def expired(self) -> bool:
        """True when the read was cancelled by this watchdog and by nothing else.

        Withdraws the watchdog's cancellation (``Task.uncancel``) as it answers, so the
        task carries on to raise TIMEOUT; an outside cancel (Stop) is left standing.
        """
        return self.fired and self.task is not None and self.task.uncancel() == 0

    def close(self) -> None:
        self.handle.cancel()


async def iter_items(
    response: httpx.Response,
    target: Target,
    decoder: Decoder[T],
    is_content: Callable[[T], bool] = is_content,
    is_final: Callable[[T], bool] | None = None,
) -> AsyncGenerator[T, None]:
    """Decoded items of a response body, raising TIMEOUT when content stops coming.

    The deadline moves only when a content item arrives, so a server that sends
    keep-alive comments forever while generating nothing still times out.
    Once an ``is_final`` item (the family's terminator) was handed out and the caller
    stops, the few bytes still in flight are read so httpx can reuse the connection.
    """
    loop = asyncio.get_running_loop()
    direct = DirectBody.open(response) if DIRECT_BODY else None
    # httpx types its iterator as an iterator, but it is a generator we must close ourselves.
    chunks = direct if direct is not None else cast(AsyncGenerator[bytes, None], response.aiter_bytes())
    started = False
    final = False
    watchdog = _Watchdog(loop, loop.time() + target.first_token_timeout)
    try:
        while True:
            watchdog.reading = True
            try:
                chunk = await chunks.__anext__()
            except StopAsyncIteration:
                break
            except asyncio.CancelledError:
                if not watchdog.expired():
                    raise
                what = "content" if started else "first content"
                limit = target.read_timeout if started else target.first_token_timeout
                raise ProviderError(ErrorKind.TIMEOUT, detail=f"no {what} for {limit:g}s") from None
            except httpx.HTTPError as exc:
                raise transport_error(exc, started=started) from None
            finally:
                watchdog.reading = False
            items = decoder.feed(chunk)
            for item in items:
                if is_content(item):
                    started = True
                    watchdog.move(loop.time() + target.read_timeout)
                    break
            for item in items:
                if is_final is not None and is_final(item):
                    final = True
                yield item
    finally:
        watchdog.close()
        if final:
            await _drain(chunks)
        await chunks.aclose()
    for item in decoder.end():
        yield item


async def _drain(chunks: AsyncIterator[bytes]) -> None:
    """Read to the end of a finished answer, briefly and boundedly; failure just costs reuse."""
    total = 0
    with contextlib.suppress(Exception):
        async with asyncio.timeout(0.25):
            async for chunk in chunks:
                total += len(chunk)
                if total > 65536:
                    return


@contextlib.asynccontextmanager
async def stream_items(
    target: Target,
    url: str,
    body: dict[str, Any],
    headers: Mapping[str, str],
    decoder: Decoder[T],
    is_content: Callable[[T], bool] = is_content,
    is_final: Callable[[T], bool] | None = None,
) -> AsyncIterator[AsyncIterator[T]]:
    """POST, check, and hand over the decoded items; response and reader closed on exit."""
    async with open_stream(target, url, body, headers) as response:
        items = iter_items(response, target, decoder, is_content, is_final)
        try:
            yield items
        finally:
            await items.aclose()


# ---- retries ------------------------------------------------------------------------------


async def retrying(
    stream_fn: Callable[[], AsyncIterator[Event]],
    *,
    attempts: int = 3,
    max_total_wait: float = 20.0,
    base_delay: float = 0.5,
    max_delay: float = 8.0,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
    rand: Callable[[], float] = random.random,
) -> AsyncGenerator[Event, None]:
    """Retry retryable failures, but only while nothing has been shown to the user.

    Once one event is out, a retry would duplicate or contradict text already on the
    screen, so later errors pass straight through. ``max_total_wait`` bounds the whole
    affair (failed attempts included), so a user never waits on back-off for long.
    """
    deadline = clock() + max_total_wait
    for attempt in range(1, attempts + 1):
        started = False
        events = stream_fn()
        try:
            async for event in events:
                started = True
                yield event
            return
        except ProviderError as err:
            if started or not err.retryable or attempt == attempts:
                raise
            backoff = min(max_delay, base_delay * 2 ** (attempt - 1))
            delay = backoff / 2 + rand() * backoff / 2
            if err.retry_after is not None:
                delay = max(delay, err.retry_after)
            if clock() + delay > deadline:
                raise
            await sleep(delay)
        finally:
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()
