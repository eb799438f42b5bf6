"""A real HTTP/1.1 server that plays scripted model answers in each family's wire format.

Hand-rolled on asyncio streams so tests control every byte (CRLF framing, a cut TCP
connection, keep-alives during a stall). It runs its own loop in a daemon thread, so
sync tests, async tests and a separate benchmark process all drive it the same way.
Responses use chunked transfer-encoding, so httpx can reuse a connection afterwards.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
import math
import re
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from tests.fakeprovider import wire

_BATCH = 256  # deltas per write when unthrottled: few syscalls, yet no giant buffers
_REASONS = {
    200: "OK",
    204: "No Content",
    302: "Found",
    307: "Temporary Redirect",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    529: "Overloaded",
}


@dataclasses.dataclass
class Script:
    """One scripted answer; see the package docstring for what each knob does."""

    tokens: list[str] = dataclasses.field(default_factory=lambda: ["Hel", "lo"])
    reasoning: list[str] = dataclasses.field(default_factory=list)
    tokens_per_second: float | None = None
    first_token_delay: float = 0.0
    status: int = 200
    error_body: bytes | str | dict[str, Any] | None = None
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    usage: tuple[int, int] | None = (10, 2)
    finish_reason: str = "stop"
    stall_after: int | None = None
    keepalive_interval: float | None = None
    drop_after: int | None = None
    malformed_after: int | None = None
    error_event_after: int | None = None
    no_terminator: bool = False
    html_body: bool = False
    echo: bool = False
    stamp: bool = False

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Script:
        known = {f.name for f in dataclasses.fields(cls)}
        fields = {k: v for k, v in doc.items() if k in known}
        if isinstance(fields.get("usage"), list):
            fields["usage"] = tuple(fields["usage"])
        return cls(**fields)


@dataclasses.dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any
    connection: int = 0  # which TCP connection carried it, to see keep-alive reuse
    client_disconnected: threading.Event = dataclasses.field(default_factory=threading.Event)
    finished: threading.Event = dataclasses.field(default_factory=threading.Event)


class _Hangup(Exception):
    """The client went away; the connection is finished."""


class _ChunkedWriter:
    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer

    async def send(self, data: bytes) -> None:
        if not data:
            return
        self.writer.write(b"%x\r\n%s\r\n" % (len(data), data))
        try:
            await self.writer.drain()
        except ConnectionError as exc:
            raise _Hangup from exc

    async def finish(self) -> None:
        self.writer.write(b"0\r\n\r\n")
        try:
            await self.writer.drain()
        except ConnectionError as exc:
            raise _Hangup from exc


def _last_user_text(path: str, body: Any) -> str:
    if not isinstance(body, dict):
        return ""
    if ":streamGenerateContent" in path:
        for content in reversed(body.get("contents") or []):
            if content.get("role") == "user":
                texts = [p.get("text", "") for p in content.get("parts") or []]
                return "".join(t for t in texts if not t.startswith("<document"))
        return ""
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                # The typed text, not documents given as context (they are tagged <document>).
                texts = [p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"]
                return "".join(t for t in texts if not t.startswith("<document"))
            return _DOCUMENTS.sub("", str(content or ""))
    return ""


_DOCUMENTS = re.compile(r"<document name=[^>]*>.*?</document>\s*", re.DOTALL)


def _words(text: str) -> list[str]:
    words = text.split()
    return [w if i == 0 else " " + w for i, w in enumerate(words)] or [""]


class _Stream:
    """Plays one script on one response, on time, with keep-alives while it waits."""

    def __init__(self, out: _ChunkedWriter, render: wire.Wire, script: Script, deltas: wire.Deltas) -> None:
        self.out = out
        self.render = render
        self.script = script
        self.deltas = deltas
        self.loop = asyncio.get_running_loop()
        self.next_keepalive = self.loop.time() + (script.keepalive_interval or math.inf)

    async def wait_until(self, when: float) -> None:
        interval = self.script.keepalive_interval
        while True:
            now = self.loop.time()
            if interval is not None and self.next_keepalive <= now:
                await self.out.send(self.render.keepalive())
                self.next_keepalive = now + interval
                continue
            if when <= now:
                return
            wake = min(when, self.next_keepalive)
            if wake == math.inf:
                await asyncio.Event().wait()  # a stall with no keep-alives: until the client hangs up
            await asyncio.sleep(wake - now)

    async def play(self, writer: asyncio.StreamWriter) -> bool:
        """Send everything; returns False when the connection must not be reused."""
        script, render = self.script, self.render
        pieces = render.pieces(self.deltas)
        if script.malformed_after is not None:
            at = min(script.malformed_after, len(pieces))
            pieces.insert(at, render.malformed())
        specials = [
            n for n in (script.stall_after, script.drop_after, script.error_event_after) if n is not None
        ]
        stop_at = min(specials) if specials else None
        # A malformed line does not count as a token, so shift the special by one after it.
        extra = (
            1
            if script.malformed_after is not None
            and stop_at is not None
            and script.malformed_after <= stop_at
            else 0
        )
        limit = len(pieces) if stop_at is None else min(len(pieces), stop_at + extra)
        head = render.head()
        interval = 1.0 / script.tokens_per_second if script.tokens_per_second else 0.0
        t0 = self.loop.time() + script.first_token_delay
        k = 0
        while k < limit:
            await self.wait_until(t0 + k * interval)
            if interval:
                due = int((self.loop.time() - t0) / interval) + 1
                end = min(limit, max(k + 1, due))
            else:
                end = min(limit, k + _BATCH)
            if script.stamp:
                # Each delta's text becomes the wall-clock time it is written, so a client
                # on the same machine can measure the relay's added latency per token.
                chunk = b"".join(render.pieces([(False, f"{time.time_ns()} ")] * (end - k)))
            else:
                chunk = b"".join(pieces[k:end])
            await self.out.send(head + chunk)
            head = b""
            k = end
        return await self._finish(writer, stop_at, head)

    async def _finish(self, writer: asyncio.StreamWriter, stop_at: int | None, head: bytes) -> bool:
        script, render = self.script, self.render
        if stop_at is None:
            if not script.no_terminator:
                await self.out.send(head + render.tail(script.finish_reason, script.usage))
            await self.out.finish()
            return True
        if stop_at == script.error_event_after:
            await self.out.send(head + render.error_event(script.error_body))
            await self.out.finish()
            return True
        if stop_at == script.drop_after:
            await self.out.send(head)
            _reset(writer)
            return False
        await self.wait_until(math.inf)  # stall: only a hang-up ends this
        return False


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST, not FIN: what a crashed upstream or a cut proxy looks like."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class FakeProvider:
    """The fake upstream. ``start()`` binds 127.0.0.1 on a free port (or ``port``)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.requests: list[Recorded] = []
        self._default = Script()
        self._by_model: dict[str, Script] = {}
        self._queue: collections.deque[Script] = collections.deque()
        self._list_failure: Script | None = None
        self._lock = threading.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._connections = 0

    # ---- the test-facing API ----------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def connections(self) -> int:
        """TCP connections accepted so far (a refused address must leave this at 0)."""
        return self._connections

    def set_default(self, script: Script) -> None:
        with self._lock:
            self._default = script

    def script_for_model(self, model: str, script: Script) -> None:
        with self._lock:
            self._by_model[model] = script

    def enqueue(self, script: Script) -> None:
        with self._lock:
            self._queue.append(script)

    def fail_model_list(self, script: Script | None) -> None:
        """Answer model-list requests with ``script``'s status, headers and error body (None: list again)."""
        with self._lock:
            self._list_failure = script

    def wait_for_requests(self, n: int, timeout: float = 5) -> list[Recorded]:
        with self._lock:
            if not self._lock.wait_for(lambda: len(self.requests) >= n, timeout):
                raise TimeoutError(f"expected {n} requests, got {len(self.requests)}")
            return list(self.requests)

    def reset(self) -> None:
        with self._lock:
            self._default = Script()
            self._by_model.clear()
            self._queue.clear()
            self._list_failure = None
            self.requests.clear()

    def start(self) -> FakeProvider:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="fakeprovider", daemon=True)
        self._thread.start()
        if not ready.wait(5):
            raise RuntimeError("fake provider did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
        if self._thread is not None:
            self._thread.join(5)
        self._thread = None

    def serve_forever(self, on_ready: Callable[[], None] | None = None) -> None:
        """Run in the calling thread (the command-line entry point); ``on_ready`` once bound."""
        ready = threading.Event()
        if on_ready is not None:
            threading.Thread(target=lambda: ready.wait() and on_ready(), daemon=True).start()
        asyncio.run(self._serve(ready))

    # ---- the server ------------------------------------------------------------------------

    def _run(self, ready: threading.Event) -> None:
        asyncio.run(self._serve(ready))

    async def _serve(self, ready: threading.Event | None) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        server = await asyncio.start_server(
            self._connection, self.host, self.port, limit=1 << 20, backlog=1024
        )
        self.port = server.sockets[0].getsockname()[1]
        if ready is not None:
            ready.set()
        async with server:
            await self._stopped.wait()
            for writer in list(self._writers):
                writer.transport.abort()

    def _pick(self, model: str) -> Script:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
            return self._by_model.get(model, self._default)

    def _record(self, recorded: Recorded) -> None:
        with self._lock:
            self.requests.append(recorded)
            self._lock.notify_all()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        self._connections += 1
        connection = self._connections
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                recorded = await _read_request(reader)
                if recorded is None:
                    break
                recorded.connection = connection
                try:
                    keep = await self._respond(recorded, reader, writer)
                finally:
                    recorded.finished.set()
                if not keep or recorded.headers.get("connection", "").lower() == "close":
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, _Hangup):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _respond(
        self, rec: Recorded, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        if rec.method == "GET" and rec.path in ("/v1/models", "/v1beta/models", "/api/tags"):
            self._record(rec)
            with self._lock:
                names = sorted(set(self._by_model) | {"fake-model"})
                failure = self._list_failure
            if failure is not None:
                body = failure.error_body if failure.error_body is not None else {"error": {"message": "fake"}}
                text = body.decode() if isinstance(body, bytes) else body if isinstance(body, str) else json.dumps(body)
                return await _send_whole(writer, failure.status, "application/json", text, failure.headers)
            token = (rec.query.get("pageToken") or [""])[0]
            return await _send_whole(
                writer, 200, "application/json", json.dumps(wire.model_list(rec.path, names, token))
            )
        if rec.method == "POST" and rec.path == "/api/show":
            self._record(rec)
            name = str((rec.body or {}).get("model", ""))
            return await _send_whole(writer, 200, "application/json", json.dumps(wire.ollama_show(name)))
        if rec.method == "POST" and rec.path == "/_script":
            self.enqueue(Script.from_json(rec.body or {}))
            return await _send_whole(writer, 204, "text/plain", "")
        render, model = _renderer_for(rec)
        family = _family_of(rec)
        problem = wire.attachment_errors(family, rec.body) if family else None
        if problem is not None:
            self._record(rec)  # refused as a strict provider would: 400 with the reason
            body = json.dumps({"error": {"message": f"invalid attachment: {problem}", "type": "invalid_request_error"}})
            return await _send_whole(writer, 400, "application/json", body)
        if render is None:
            self._record(rec)
            return await _send_whole(writer, 404, "application/json", '{"error": "no such fake endpoint"}')
        script = self._pick(model)
        self._record(rec)
        if script.status >= 300:  # errors, and redirects (with a Location header in ``headers``)
            body = (
                script.error_body if script.error_body is not None else render.error_response(script.status)
            )
            text = (
                body.decode()
                if isinstance(body, bytes)
                else body
                if isinstance(body, str)
                else json.dumps(body)
            )
            return await _send_whole(writer, script.status, "application/json", text, script.headers)
        if script.html_body:
            page = "<!doctype html><html><body><h1>Welcome to nginx!</h1></body></html>"
            return await _send_whole(writer, 200, "text/html; charset=utf-8", page, script.headers)
        return await self._stream(rec, script, render, reader, writer)

    async def _stream(
        self,
        rec: Recorded,
        script: Script,
        render: wire.Wire,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> bool:
        render.prompt_tokens = script.usage[0] if script.usage else 0
        tokens = _words(_last_user_text(rec.path, rec.body)) if script.echo else script.tokens
        deltas = [(True, t) for t in script.reasoning] + [(False, t) for t in tokens]
        headers = {
            "Content-Type": render.content_type,
            "Transfer-Encoding": "chunked",
            "Cache-Control": "no-cache",
            **script.headers,
        }
        writer.write(_status_line(200, headers))
        stream = _Stream(_ChunkedWriter(writer), render, script, deltas)
        # The client sends nothing while it reads the answer, so any read completing
        # (EOF or an error) means it hung up: stop at once, even mid-stall.
        watcher = asyncio.ensure_future(reader.read(1))
        player = asyncio.ensure_future(stream.play(writer))
        done, _ = await asyncio.wait({watcher, player}, return_when=asyncio.FIRST_COMPLETED)
        if player in done:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
            try:
                return player.result()
            except _Hangup:
                rec.client_disconnected.set()
                return False
        rec.client_disconnected.set()
        player.cancel()
        await asyncio.gather(player, return_exceptions=True)
        return False


def _family_of(rec: Recorded) -> str | None:
    if rec.method != "POST":
        return None
    return next((name for name, family in wire.FAMILIES.items() if family.matches(rec.path) is not None), None)


def _renderer_for(rec: Recorded) -> tuple[wire.Wire | None, str]:
    body = rec.body if isinstance(rec.body, dict) else {}
    model = str(body.get("model", "fake-model"))
    if rec.method != "POST":
        return None, model
    for family in wire.FAMILIES.values():
        in_path = family.matches(rec.path)
        if in_path is not None:
            model = in_path or model
            return family.renderer(model), model
    return None, model


async def _read_request(reader: asyncio.StreamReader) -> Recorded | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    raw = await reader.readexactly(int(headers.get("content-length", "0")))
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = None
    path, _, query = target.partition("?")
    return Recorded(method, path, parse_qs(query), headers, body)


def _status_line(status: int, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _send_whole(
    writer: asyncio.StreamWriter, status: int, ctype: str, text: str, extra: dict[str, str] | None = None
) -> bool:
    data = text.encode()
    headers = {"Content-Type": ctype, "Content-Length": str(len(data)), **(extra or {})}
    writer.write(_status_line(status, headers) + data)
    await writer.drain()
    return True
