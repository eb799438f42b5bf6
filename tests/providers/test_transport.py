"""The asyncio network backend under httpx: real sockets on loopback, plain and TLS."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpcore
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from providers import http
from providers.base import ErrorKind, ProviderError, Target
from providers.sse import SSEDecoder
from providers.transport import HIGH_WATER, AsyncioBackend, AsyncioStream, DirectBody, transport

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def serve(handler: Handler, tls: ssl.SSLContext | None = None) -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=tls)
    return server, server.sockets[0].getsockname()[1]


async def read_request(reader: asyncio.StreamReader) -> None:
    await reader.readuntil(b"\r\n\r\n")


def sse_response(*events: bytes) -> bytes:
    body = b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in events) + b"0\r\n\r\n"
    return b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n" + body


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A self-signed certificate for 127.0.0.1: (server context, client context trusting it)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "parley-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert_path, key_path)
    client_context = ssl.create_default_context(cafile=str(cert_path))
    return server_context, client_context


async def stream_text(url: str) -> list[str]:
    """What the shared stream path decodes from ``url``: the data of each SSE event."""
    target = Target(base_url=url, read_timeout=5, first_token_timeout=5)
    async with http.stream_items(target, url, {}, {}, SSEDecoder()) as items:
        return [item.data async for item in items if hasattr(item, "data")]


async def test_a_stream_over_tls_is_read_through_the_asyncio_backend(
    certificate: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    server_context, client_context = certificate

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(sse_response(b"data: one\n\n", b"data: two\n\n"))
        await writer.drain()
        writer.close()

    server, port = await serve(handler, server_context)
    async with server:
        url = f"https://127.0.0.1:{port}/v1/chat/completions"
        async with (
            httpx.AsyncClient(transport=transport(client_context)) as client,
            client.stream("POST", url) as response,
        ):
            assert isinstance(response.extensions["network_stream"], AsyncioStream)
            body = b"".join([chunk async for chunk in response.aiter_bytes()])
    assert body == b"data: one\n\ndata: two\n\n"


async def test_a_certificate_nobody_trusts_is_refused(certificate: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    server_context, _ = certificate

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server, port = await serve(handler, server_context)
    async with server:
        with pytest.raises(ProviderError) as caught:
            await stream_text(f"https://127.0.0.1:{port}/v1/chat/completions")
    assert caught.value.kind is ErrorKind.UNAVAILABLE


async def test_segments_that_arrived_while_the_loop_was_busy_come_back_in_one_read() -> None:
    sent = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for piece in (b"first ", b"second ", b"third"):
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0.01)  # three TCP segments, not one
        sent.set()
        await reader.read()

    server, port = await serve(handler)
    async with server:
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
        await asyncio.wait_for(sent.wait(), 5)
        await asyncio.sleep(0.05)
        assert await stream.read(65536, timeout=5) == b"first second third"
        await stream.aclose()


async def test_a_reader_that_falls_behind_stops_taking_from_the_socket_and_loses_nothing() -> None:
    payload = bytes(range(256)) * 131072  # 32 MiB: more than loopback's socket buffers hold
    done = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(payload)
        await writer.drain()
        writer.close()
        done.set()

    server, port = await serve(handler)
    async with server:
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
        assert isinstance(stream, AsyncioStream)
        await asyncio.sleep(0.3)  # the server writes as fast as it can; nobody reads
        buffered = len(stream._protocol.buffer)
        assert 0 < buffered <= HIGH_WATER + 256 * 1024
        assert not done.is_set(), "the sender should be held back by TCP, not by our memory"
        received = bytearray()
        while chunk := await stream.read(65536, timeout=5):
            received += chunk
        assert bytes(received) == payload
        await stream.aclose()


async def test_an_upstream_that_stops_mid_read_times_out_as_a_read_timeout() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    server, port = await serve(handler)
    async with server:
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
        started = time.monotonic()
        with pytest.raises(httpcore.ReadTimeout):
            await stream.read(65536, timeout=0.2)
        assert 0.15 < time.monotonic() - started < 2
        await stream.aclose()


async def test_a_refused_connection_is_a_connect_error() -> None:
    server, port = await serve(read_request)  # type: ignore[arg-type]
    server.close()
    await server.wait_closed()
    with pytest.raises(httpcore.ConnectError):
        await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)


async def test_a_hang_up_reaches_the_upstream_as_soon_as_the_stream_closes() -> None:
    hung_up = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # returns at end of file
        hung_up.set()

    server, port = await serve(handler)
    async with server:
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
        await stream.aclose()
        await asyncio.wait_for(hung_up.wait(), 2)


async def test_concurrent_streams_get_their_own_connections_and_reuse_them_afterwards() -> None:
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        try:
            while True:
                await read_request(reader)
                writer.write(sse_response(b"data: hi\n\n"))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server, port = await serve(handler)
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    async with server:
        assert await asyncio.gather(*(stream_text(url) for _ in range(3))) == [["hi"]] * 3
        assert connections == 3
        for _ in range(3):
            assert await stream_text(url) == ["hi"]
        assert connections == 3, "a finished stream's connection is kept alive for the next"


# ---- the direct body reader -------------------------------------------------------------

SSE_BODY = sse_response(b"data: one\n\n", b"data: two\n\n", b"data: three\n\n")
HEAD_END = SSE_BODY.index(b"\r\n\r\n") + 4


async def serve_in_two_writes(cut: int) -> tuple[asyncio.Server, int, list[int]]:
    """A keep-alive server answering every request with SSE_BODY, written as [:cut] then the rest."""
    connections: list[int] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            while True:
                await read_request(reader)
                writer.write(SSE_BODY[:cut])
                await writer.drain()
                await asyncio.sleep(0.05)  # a separate read on the client's side
                writer.write(SSE_BODY[cut:])
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server, port = await serve(handler)
    return server, port, connections


async def test_a_chunked_stream_from_our_transport_is_read_off_the_connection() -> None:
    server, port, _ = await serve_in_two_writes(len(SSE_BODY))
    async with (
        server,
        httpx.AsyncClient(transport=transport(ssl.create_default_context())) as client,
        client.stream("POST", f"http://127.0.0.1:{port}/") as response,
    ):
        body = DirectBody.open(response)
        assert body is not None, "the direct reader should take a chunked body from our own transport"
        assert b"".join([chunk async for chunk in body]) == b"data: one\n\ndata: two\n\ndata: three\n\n"


async def test_a_body_with_a_content_length_is_left_to_httpx() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: 10\r\n\r\ndata: hi\n\n")
        await writer.drain()
        writer.close()

    server, port = await serve(handler)
    async with server, httpx.AsyncClient(transport=transport(ssl.create_default_context())) as client:
        async with client.stream("POST", f"http://127.0.0.1:{port}/") as response:
            assert DirectBody.open(response) is None
        assert await stream_text(f"http://127.0.0.1:{port}/") == ["hi"]


@pytest.mark.parametrize(
    "where",
    ["with the head", "at a chunk boundary", "inside a chunk", "inside a chunk's CRLF", "with the whole body"],
)
async def test_wherever_the_first_read_ends_the_text_is_whole_and_the_connection_reused(where: str) -> None:
    first_chunk = SSE_BODY.index(b"\r\n", HEAD_END) + 2
    cut = {
        "with the head": HEAD_END,
        "at a chunk boundary": SSE_BODY.index(b"\r\n", first_chunk + 5) + 2,
        "inside a chunk": first_chunk + 4,
        "inside a chunk's CRLF": SSE_BODY.index(b"\r\n", first_chunk) + 1,
        "with the whole body": len(SSE_BODY),
    }[where]
    server, port, connections = await serve_in_two_writes(cut)
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    async with server:
        for _ in range(3):
            assert await stream_text(url) == ["one", "two", "three"]
        assert len(connections) == 1, "a finished body read off the connection should leave it reusable"
        await http.aclose_client()


async def test_a_first_read_ending_inside_a_size_line_still_gives_the_whole_text() -> None:
    server, port, connections = await serve_in_two_writes(HEAD_END + 1)  # "9" of "9\r\n"
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    async with server:
        for _ in range(2):
            assert await stream_text(url) == ["one", "two", "three"]
        # Rare enough not to be worth guessing h11's state: the connection is closed, not reused.
        assert len(connections) == 2
        await http.aclose_client()


async def test_an_upstream_that_closes_mid_body_gives_an_incomplete_answer() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(SSE_BODY[: SSE_BODY.index(b"three")])
        await writer.drain()
        writer.close()  # FIN in the middle of a chunk

    server, port = await serve(handler)
    target = Target(base_url="http://x", read_timeout=5, first_token_timeout=5)
    seen: list[str] = []
    async with server:
        with pytest.raises(ProviderError) as caught:
            async with http.stream_items(target, f"http://127.0.0.1:{port}/", {}, {}, SSEDecoder()) as items:
                async for item in items:
                    if hasattr(item, "data"):
                        seen.append(item.data)
    assert seen == ["one", "two"]
    assert caught.value.kind is ErrorKind.INCOMPLETE


async def test_a_direct_reader_that_falls_behind_takes_all_that_waits_and_the_socket_stays_bounded() -> None:
    payload = bytes(range(256)) * 131072  # 32 MiB

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(payload)
        await writer.drain()
        writer.close()

    server, port = await serve(handler)
    async with server:
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
        assert isinstance(stream, AsyncioStream)
        received = bytearray()
        largest = 0
        while chunk := await stream.take(timeout=5):
            received += chunk
            largest = max(largest, len(chunk))
            await asyncio.sleep(0.001)  # a busy consumer
        assert bytes(received) == payload
        assert largest <= HIGH_WATER + 256 * 1024, "reading is paused at the high-water mark"
        await stream.aclose()
