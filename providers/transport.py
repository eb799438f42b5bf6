"""httpx over plain asyncio sockets: a network backend whose read takes all that has arrived.

httpx reads through httpcore, which by default reads through anyio. anyio wraps every read
in a cancel scope and pauses and resumes the socket around it (two epoll_ctl calls), and
hands over one chunk per ``data_received``. At 100 streams of 50 tokens/s that is 5,000
reads a second, each paying that toll. This backend keeps one growing buffer per
connection, reads never pause the socket below a high-water mark, and a read returns all
that is buffered, so a loop that falls behind makes fewer, larger reads. (h11 above it
still hands over one HTTP chunk at a time, which is why streamed bodies skip it, below.)

It plugs into httpcore's documented network-backend seam; httpx's own transport still
maps requests, responses and errors. Only what httpcore asks of a stream is implemented.

The body of a streamed answer then skips even httpcore and h11: ``DirectBody`` reads it
off this backend's buffer and decodes the chunked framing itself (providers/chunked.py).
httpx and h11 still send the request, read and check the response head, own the
connection's state and keep-alive, and close it; see ``DirectBody`` for the hand-over.
"""

from __future__ import annotations

import asyncio
import ssl
import typing

import h11
import httpcore
import httpx

from chatsite import private_apis
from providers import egress
from providers.chunked import ChunkedDecoder

# Stop reading from the socket while this much sits unread (a slow consumer), so a
# fast upstream cannot grow our memory; resume once it is half drained.
HIGH_WATER = 256 * 1024


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.eof = False
        self.error: BaseException | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.drained: asyncio.Future[None] | None = None
        self.paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = typing.cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False  # close our side too: HTTP/1.1 has no use for a half-open socket

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self.error = exc
        self._wake()
        if self.drained is not None and not self.drained.done():
            self.drained.set_result(None)

    def pause_writing(self) -> None:
        if self.drained is None or self.drained.done():
            self.drained = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self.drained is not None and not self.drained.done():
            self.drained.set_result(None)

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


def _expire(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_exception(TimeoutError())


async def _wait(future: asyncio.Future[None], timeout: float | None) -> None:
    if timeout is None:
        await future
        return
    handle = asyncio.get_running_loop().call_later(timeout, _expire, future)
    try:
        await future
    finally:
        handle.cancel()


class AsyncioStream(httpcore.AsyncNetworkStream):
    def __init__(self, transport: asyncio.Transport, protocol: _Protocol) -> None:
        self._transport = transport
        self._protocol = protocol

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        protocol = self._protocol
        if not protocol.buffer and not protocol.eof:
            protocol.waiter = asyncio.get_running_loop().create_future()
            try:
                await _wait(protocol.waiter, timeout)
            except TimeoutError:
                raise httpcore.ReadTimeout("no data within the read timeout") from None
            finally:
                protocol.waiter = None
        buffer = protocol.buffer
        if buffer:
            data = bytes(buffer[:max_bytes])
            del buffer[:max_bytes]
            if protocol.paused and len(buffer) <= HIGH_WATER // 2:
                protocol.paused = False
                self._transport.resume_reading()
            return data
        if protocol.error is not None:
            raise httpcore.ReadError(str(protocol.error) or type(protocol.error).__name__)
        return b""

    async def take(self, timeout: float | None = None) -> bytes:
        """Everything buffered, waiting for something first: b"" at end of file.

        The direct body reader's read: no size limit (the buffer is bounded by HIGH_WATER),
        so a reader that fell behind takes every waiting token in one call. Its callers are
        ours, not httpcore, so it raises httpx's errors, which providers/http.py maps.
        """
        protocol = self._protocol
        if not protocol.buffer and not protocol.eof:
            protocol.waiter = asyncio.get_running_loop().create_future()
            try:
                await _wait(protocol.waiter, timeout)
            except TimeoutError:
                raise httpx.ReadTimeout("no data within the read timeout") from None
            finally:
                protocol.waiter = None
        buffer = protocol.buffer
        if buffer:
            data = bytes(buffer)
            buffer.clear()
            if protocol.paused:
                protocol.paused = False
                self._transport.resume_reading()
            return data
        if protocol.error is not None:
            raise httpx.ReadError(str(protocol.error) or type(protocol.error).__name__)
        return b""

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        if self._transport.is_closing():
            raise httpcore.WriteError("connection closed")
        self._transport.write(buffer)
        drained = self._protocol.drained
        if drained is not None and not drained.done():
            try:
                await _wait(drained, timeout)
            except TimeoutError:
                raise httpcore.WriteTimeout("could not send within the write timeout") from None
        if self._protocol.error is not None:
            raise httpcore.WriteError(str(self._protocol.error))

    async def aclose(self) -> None:
        self._transport.close()
        # asyncio closes the socket in a callback; let it run now, so the upstream sees
        # the hang-up at once even if the caller then blocks the loop.
        await asyncio.sleep(0)

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport = await loop.start_tls(
                    self._transport, self._protocol, ssl_context, server_hostname=server_hostname
                )
        except TimeoutError:
            self._transport.abort()
            raise httpcore.ConnectTimeout("TLS handshake timed out") from None
        except (OSError, ssl.SSLError) as exc:
            self._transport.abort()
            raise httpcore.ConnectError(str(exc)) from exc
        if transport is None:
            raise httpcore.ConnectError("connection closed during the TLS handshake")
        return AsyncioStream(typing.cast(asyncio.Transport, transport), self._protocol)

    def get_extra_info(self, info: str) -> typing.Any:
        if info == "is_readable":
            # httpcore asks this of an idle kept-alive connection: anything there (data
            # or end of file) means the server has closed it or broken the protocol.
            return self._protocol.eof or bool(self._protocol.buffer)
        if info == "client_addr":
            return self._transport.get_extra_info("sockname")
        if info == "server_addr":
            return self._transport.get_extra_info("peername")
        if info in ("ssl_object", "socket"):
            return self._transport.get_extra_info(info)
        return None


async def _connect(
    opening: typing.Awaitable[tuple[asyncio.Transport, _Protocol]], where: str, timeout: float | None
) -> AsyncioStream:
    """Await a connection, mapping failures to the httpcore errors httpx turns into its own."""
    try:
        async with asyncio.timeout(timeout):
            transport, protocol = await opening
    except TimeoutError:
        raise httpcore.ConnectTimeout(f"no connection to {where} within {timeout}s") from None
    except OSError as exc:
        raise httpcore.ConnectError(str(exc)) from exc
    return AsyncioStream(transport, protocol)


async def _open_checked(
    host: str, port: int, local: tuple[str, int] | None
) -> tuple[asyncio.Transport, _Protocol]:
    """Resolve, refuse denied addresses (providers/egress.py), connect to the first one that answers."""
    loop = asyncio.get_running_loop()
    error: OSError | None = None
    for address in await egress.resolve(host, port):
        try:
            return await loop.create_connection(_Protocol, address, port, local_addr=local)
        except OSError as exc:
            error = exc
    raise error or OSError(f"{host} resolved to no address")


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        local = (local_address, 0) if local_address else None
        stream = await _connect(_open_checked(host, port, local), f"{host}:{port}", timeout)
        sock = stream.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)  # asyncio already set TCP_NODELAY
        return stream

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return await _connect(asyncio.get_running_loop().create_unix_connection(_Protocol, path), path, timeout)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def transport(ssl_context: ssl.SSLContext) -> httpx.AsyncHTTPTransport:
    """httpx's transport for one connection at a time, reading through AsyncioBackend."""
    result = httpx.AsyncHTTPTransport(
        verify=ssl_context, limits=httpx.Limits(max_connections=1, max_keepalive_connections=1), trust_env=False
    )
    # httpx builds its httpcore pool without a way to name the backend; swap the pool for
    # an identical one that has it (tests/providers/test_transport.py checks it is used).
    pool = httpcore.AsyncConnectionPool(
        ssl_context=ssl_context,
        max_connections=1,
        max_keepalive_connections=1,
        keepalive_expiry=5.0,
        network_backend=AsyncioBackend(),
    )
    private_apis.set_connection_pool(result, pool)
    return result


class DirectBody:
    """A chunked response body read straight off our connection: an async iterator of payload.

    Per token, httpx's body iterator costs five nested generators, h11's state machine
    and its chunk parser, and httpcore's and httpx's exception mapping; this reads what
    the asyncio backend buffered and hands it to a ChunkedDecoder. The hand-over from
    h11: when httpx returns the response, h11 has parsed the head and holds any body
    bytes that came with it unparsed (``trailing_data``, public h11 API). We decode those
    first, and note what would take h11 from there to the end of the message. Once the
    body has been read to its end, ``aclose`` feeds h11 exactly that, h11 reaches the end
    of the message, and httpcore, seeing both sides done when the response closes, keeps
    the connection for the next request. A body not read to its end (Stop, an error, a
    timeout) leaves h11 mid-body, and httpcore closes the connection, as before.

    ``open`` says None (and the caller uses httpx's iterator) for anything else: a body
    that is not chunked, a stream that is not ours, or httpx internals that moved. Reads
    wait without a timeout of their own: only iter_items, whose watchdog bounds every
    read, uses this reader.
    """

    __slots__ = ("_decoder", "_finish", "_h11", "_pending", "_stream")

    def __init__(self, stream: AsyncioStream, connection: h11.Connection) -> None:
        self._stream = stream
        self._h11 = connection
        self._decoder = ChunkedDecoder()
        self._pending: bytes | None = None  # None: what h11 buffered is not decoded yet
        self._finish: bytes | None = None

    @classmethod
    def open(cls, response: httpx.Response) -> DirectBody | None:
        stream = response.extensions.get("network_stream")
        if not isinstance(stream, AsyncioStream) or response.http_version != "HTTP/1.1":
            return None
        if response.headers.get("transfer-encoding", "").strip().lower() != "chunked":
            return None
        connection = private_apis.h11_connection(response)
        if connection is None or connection.their_state is not h11.SEND_BODY:
            return None
        return cls(stream, connection)

    def __aiter__(self) -> DirectBody:
        return self

    async def __anext__(self) -> bytes:
        decoder = self._decoder
        if self._pending is None:
            # Decoded here, not in open(), so a malformed start is raised where reads raise.
            buffered, _ = self._h11.trailing_data
            self._pending = decoder.feed(buffered)
            self._finish = decoder.rest_of_message()
        if self._pending:
            data, self._pending = self._pending, b""
            return data
        while not decoder.done:
            # No socket timeout: the reader's stall watchdog (providers/http.py iter_items)
            # is the read limit, and a timer per read cost more than decoding the chunk.
            data = await self._stream.take()
            if not data:
                # h11's words for the same event, so logs read alike on either path.
                raise httpx.RemoteProtocolError(
                    "peer closed connection without sending complete message body (incomplete chunked read)"
                )
            payload = decoder.feed(data)
            if payload:
                return payload
        raise StopAsyncIteration

    async def aclose(self) -> None:
        """Hand a fully read body back to h11 so the connection is reused; else leave it to close."""
        connection, self._h11 = self._h11, None  # type: ignore[assignment]
        if connection is None or not self._decoder.done or self._decoder.leftover or self._finish is None:
            return
        try:
            if self._finish:  # (b"" would tell h11 the peer closed the connection)
                connection.receive_data(self._finish)
            while True:  # the chunks h11 had buffered, the filler, then the end: finite bytes
                event = connection.next_event()
                if isinstance(event, h11.EndOfMessage) or event is h11.NEED_DATA or event is h11.PAUSED:
                    return
        except h11.ProtocolError:
            return  # h11 disagrees about where the body ended: httpcore closes the connection

