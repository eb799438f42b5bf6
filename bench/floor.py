"""The floor: about the least CPU a Python relay can spend per token, to read Parley's cost against.

A minimal relay written only for the bench and run in its own process (``python -m
bench.floor --port P --upstream http://127.0.0.1:F``), driven by the same clients as
Parley against the same fake provider. It speaks the part of Parley's socket protocol the
bench clients use (``hello``; ``send`` → ``ack``, one ``delta`` per token, ``end``;
``stop``; ``ping`` → ``pong``) and does nothing else: no database, no sessions, no
coalescing, no retries, no back-pressure, no checkpoints.

Everything runs in asyncio.Protocol callbacks on the default asyncio loop (the loop
Daphne's Twisted reactor also runs on): a token read from the upstream is taken out of
its HTTP/1.1 chunked framing, its SSE line and ``json.loads``, and written to the
browser's socket as one WebSocket frame (``json.dumps`` of the same fields Parley's
``delta`` carries) within the same ``data_received`` call, so no task wakes per token.
The HTTP/1.1 client and the WebSocket server (RFC 6455: text, ping, close; no
extensions, so the client's offer of compression is declined) are written here, because
any library would be more than the floor. Upstream connections are kept alive and reused,
as Parley does.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import uuid
from typing import Any
from urllib.parse import urlsplit

_WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_DUMPS = json.JSONEncoder(separators=(",", ":")).encode


def ws_frame(opcode: int, payload: bytes) -> bytes:
    """One unmasked, unfragmented server frame."""
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 127)) + n.to_bytes(8, "big")
    return head + payload


def unmask(mask: bytes, data: bytes) -> bytes:
    n = len(data)
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(data, "big") ^ key).to_bytes(n, "big")


class Stats:
    answers = 0
    tokens = 0
    upstream_reads = 0
    upstream_chunks = 0


class Upstream(asyncio.Protocol):
    """One kept-alive HTTP/1.1 connection to the provider, reading one streamed answer at a time."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self.transport: asyncio.Transport | None = None
        self.answer: Answer | None = None
        self.buf = b""
        self.head_done = False
        self.chunk_left = -1  # -1: expecting a chunk-size line
        self.lines = b""
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def request(self, answer: Answer, body: bytes) -> None:
        assert self.transport is not None
        self.answer, self.head_done, self.chunk_left, self.buf, self.lines = answer, False, -1, b"", b""
        self.transport.write(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
            b"Accept: text/event-stream\r\nContent-Length: %d\r\n\r\n%s" % (self.relay.host_header, len(body), body)
        )

    def data_received(self, data: bytes) -> None:
        Stats.upstream_reads += 1
        buf = self.buf + data if self.buf else data
        if not self.head_done:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buf = buf
                return
            head, buf = buf[:end].lower(), buf[end + 4 :]
            if not head.startswith(b"http/1.1 200") or b"transfer-encoding: chunked" not in head:
                self.fail("upstream answered " + head.split(b"\r\n", 1)[0].decode(errors="replace"))
                return
            self.head_done = True
        pos, size = 0, len(buf)
        while pos < size:
            if self.chunk_left < 0:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    break
                length = int(buf[pos:eol].split(b";", 1)[0], 16)
                pos = eol + 2
                if length == 0:
                    self.buf = b""
                    self.finished(buf[pos:] == b"\r\n")
                    return
                self.chunk_left = length
            take = min(self.chunk_left, size - pos)
            if take:
                self.payload(buf[pos : pos + take])
                pos += take
                self.chunk_left -= take
            if self.chunk_left == 0:
                if size - pos < 2:
                    break  # the chunk's CRLF has not arrived yet
                pos += 2
                self.chunk_left = -1
        self.buf = buf[pos:]

    def payload(self, data: bytes) -> None:
        """A piece of the SSE body: split lines, json.loads each data line, relay its content."""
        Stats.upstream_chunks += 1
        text = self.lines + data if self.lines else data
        *lines, self.lines = text.split(b"\n")
        answer = self.answer
        for line in lines:
            if not line.startswith(b"data:") or answer is None:
                continue  # blank lines, comments, event names: one data line is one event here
            value = line[5:].strip()
            if value == b"[DONE]":
                answer.end("complete", "stop")
                continue
            choices = json.loads(value).get("choices")
            if choices:
                content = choices[0].get("delta", {}).get("content")
                if content:
                    answer.token(content)

    def finished(self, clean: bool) -> None:
        answer, self.answer = self.answer, None
        if answer is not None:
            answer.upstream = None
            answer.end("incomplete", "no_terminator")  # a no-op if [DONE] came
        if clean and not self.closed:
            self.relay.idle.append(self)
        else:
            self.close()

    def fail(self, why: str) -> None:
        answer, self.answer = self.answer, None
        if answer is not None:
            answer.upstream = None
            answer.end("error", why)
        self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self in self.relay.idle:
            self.relay.idle.remove(self)
        if self.answer is not None:
            self.fail("upstream connection lost")


class Answer:
    def __init__(self, client: Client, client_id: str) -> None:
        self.client = client
        self.conversation = str(uuid.uuid4())
        self.message = str(uuid.uuid4())
        self.seq = 0
        self.done = False
        self.upstream: Upstream | None = None
        client.send({"type": "ack", "client_id": client_id, "conversation": {"id": self.conversation}})

    def token(self, text: str) -> None:
        Stats.tokens += 1
        self.seq += 1
        self.client.send(
            {"type": "delta", "conversation": self.conversation, "message": self.message, "seq": self.seq, "text": text}
        )

    def end(self, status: str, reason: str) -> None:
        if self.done:
            return
        self.done = True
        Stats.answers += 1
        self.client.answers.pop(self.conversation, None)
        self.client.send(
            {
                "type": "end",
                "conversation": self.conversation,
                "message": self.message,
                "status": status,
                "reason": reason,
            }
        )

    def stop(self) -> None:
        upstream, self.upstream = self.upstream, None
        if upstream is not None:
            upstream.answer = None
            upstream.close()  # the provider sees the hang-up now
        self.end("incomplete", "stopped")


class Client(asyncio.Protocol):
    """One browser socket: the upgrade handshake, then masked client frames in, plain frames out."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.open = False
        self.answers: dict[str, Answer] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, frame: dict[str, Any]) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(ws_frame(1, _DUMPS(frame).encode()))

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data
        if not self.open:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buf = buf
                return
            self.handshake(buf[:end])
            buf = buf[end + 4 :]
        while len(buf) >= 2:
            opcode, n, at = buf[0] & 0x0F, buf[1] & 0x7F, 2
            if n == 126:
                n, at = int.from_bytes(buf[2:4], "big"), 4
            elif n == 127:
                n, at = int.from_bytes(buf[2:10], "big"), 10
            if len(buf) < at + 4 + n:
                break
            payload = unmask(buf[at : at + 4], buf[at + 4 : at + 4 + n])
            buf = buf[at + 4 + n :]
            self.frame(opcode, payload)
        self.buf = buf

    def handshake(self, head: bytes) -> None:
        assert self.transport is not None
        key = b""
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"sec-websocket-key":
                key = value.strip()
        accept = base64.b64encode(hashlib.sha1(key + _WS_GUID).digest())
        self.transport.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: %s\r\n\r\n" % accept
        )
        self.open = True
        self.send({"type": "hello", "protocol": 1, "user": "floor"})

    def frame(self, opcode: int, payload: bytes) -> None:
        assert self.transport is not None
        if opcode == 9:
            self.transport.write(ws_frame(10, payload))
        elif opcode == 8:
            self.transport.write(ws_frame(8, payload[:2]))
            self.transport.close()
        elif opcode == 1:
            self.command(json.loads(payload))

    def command(self, command: dict[str, Any]) -> None:
        kind = command.get("type")
        if kind == "send":
            answer = Answer(self, str(command.get("client_id")))
            self.answers[answer.conversation] = answer
            self.relay.ask(answer, str(command.get("content", "")))
        elif kind == "stop":
            stopping = self.answers.get(str(command.get("conversation")))
            if stopping is not None:
                stopping.stop()
        elif kind == "stats":
            self.send({"type": "stats", **{k: getattr(Stats, k) for k in vars(Stats) if not k.startswith("_")}})
        else:
            self.send({"type": "pong"})

    def connection_lost(self, exc: Exception | None) -> None:
        for answer in list(self.answers.values()):
            answer.stop()


class Relay:
    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.host_header = f"{self.host}:{self.port}".encode()
        self.idle: list[Upstream] = []

    def ask(self, answer: Answer, content: str) -> None:
        body = _DUMPS(
            {"model": "fake-model", "stream": True, "messages": [{"role": "user", "content": content}]}
        ).encode()
        while self.idle:
            upstream = self.idle.pop()
            if not upstream.closed:
                answer.upstream = upstream
                upstream.request(answer, body)
                return
        asyncio.get_running_loop().create_task(self._connect(answer, body))

    async def _connect(self, answer: Answer, body: bytes) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, upstream = await loop.create_connection(lambda: Upstream(self), self.host, self.port)
        except OSError as exc:
            answer.end("error", f"connect failed: {exc}")
            return
        if answer.done:  # stopped while connecting
            upstream.close()
            return
        answer.upstream = upstream
        upstream.request(answer, body)


async def serve(port: int, upstream: str) -> None:
    loop = asyncio.get_running_loop()
    relay = Relay(upstream)
    server = await loop.create_server(lambda: Client(relay), "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="the fake provider's origin, e.g. http://127.0.0.1:8001")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.port, args.upstream))


if __name__ == "__main__":
    main()
