"""Every private API in chatsite/private_apis.py, held against the installed libraries.

Each failure names the library, its installed version and what moved, so an upgrade
that breaks one says so here instead of as a slow leak or a 1006 in production.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import inspect
import re
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import h11
import httpcore
import httpx
import pytest

from chatsite import private_apis
from providers.transport import AsyncioStream, DirectBody, transport

ROOT = Path(__file__).resolve().parent.parent


def broke(library: str, what: str) -> str:
    return (
        f"{library} {importlib.metadata.version(library)}: {what}. chatsite/private_apis.py relies on it; "
        f"fix it there (or pin {library} back in pyproject.toml)."
    )


def pins() -> dict[str, str]:
    text = (ROOT / "pyproject.toml").read_text()
    return {name.lower(): version for name, version in re.findall(r'"([A-Za-z0-9_.-]+)==([^"]+)"', text)}


@pytest.mark.parametrize("library", private_apis.LIBRARIES)
def test_each_library_reached_into_is_pinned_to_the_version_installed(library: str) -> None:
    pinned = pins().get(library)
    assert pinned, f"{library} is reached into by chatsite/private_apis.py but not pinned exactly in pyproject.toml"
    installed = importlib.metadata.version(library)
    assert installed == pinned, (
        f"{library} {installed} is installed but chatsite/private_apis.py was tested with {pinned} "
        f"(pyproject.toml): run tests/test_private_apis.py on {installed}, fix what it names, then move the pin."
    )


def test_the_module_and_the_providers_import_no_django_twisted_or_daphne() -> None:
    code = (
        "import sys, chatsite.private_apis, providers.http, providers.transport;"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'django', 'twisted', 'daphne', 'autobahn'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", f"importing them pulled in {out.stdout.strip()}"


# ---- httpx / httpcore / h11 ---------------------------------------------------------------

CHUNKED = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
BODY = b"a\r\ndata: hi\n\n\r\n0\r\n\r\n"


async def keep_alive_server() -> tuple[asyncio.Server, int, list[int]]:
    connections: list[int] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(CHUNKED + BODY)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], connections


def test_httpx_transports_keep_their_httpcore_pool_in_pool() -> None:
    pool = getattr(httpx.AsyncHTTPTransport(), "_pool", None)
    assert isinstance(pool, httpcore.AsyncConnectionPool), broke(
        "httpx", "AsyncHTTPTransport no longer keeps an httpcore.AsyncConnectionPool in `_pool`"
    )


async def test_a_pool_set_on_a_transport_is_the_one_requests_go_through() -> None:
    server, port, _ = await keep_alive_server()
    async with (
        server,
        httpx.AsyncClient(transport=transport(ssl.create_default_context())) as client,
        client.stream("POST", f"http://127.0.0.1:{port}/") as response,
    ):
        assert isinstance(response.extensions.get("network_stream"), AsyncioStream), broke(
            "httpx", "a pool set as `_pool` is not what requests use (the asyncio backend is bypassed)"
        )
        await response.aread()


async def test_a_streaming_response_leads_to_its_h11_connection_and_a_body_read_past_h11_is_reused() -> None:
    server, port, connections = await keep_alive_server()
    async with server, httpx.AsyncClient(transport=transport(ssl.create_default_context())) as client:
        for _ in range(2):
            async with client.stream("POST", f"http://127.0.0.1:{port}/") as response:
                connection = private_apis.h11_connection(response)
                assert isinstance(connection, h11.Connection), broke(
                    "httpcore", "Response.stream._stream._httpcore_stream._stream._connection._h11_state is gone"
                )
                assert connection.their_state is h11.SEND_BODY, broke("h11", "a response head leaves h11 elsewhere")
                body = DirectBody.open(response)
                assert body is not None
                assert b"".join([chunk async for chunk in body]) == b"data: hi\n\n"
                await body.aclose()
                assert connection.their_state is h11.DONE, broke("h11", "the body's end did not finish the message")
        assert len(connections) == 1, broke(
            "httpcore", "a connection whose h11 state reached the end of the body was not kept for reuse"
        )


# ---- Twisted --------------------------------------------------------------------------------


def test_the_asyncio_reactor_keeps_its_loop_in_asyncioEventloop() -> None:
    from twisted.internet.asyncioreactor import AsyncioSelectorReactor

    loop = asyncio.new_event_loop()
    try:
        reactor = AsyncioSelectorReactor(loop)
        assert private_apis.asyncio_loop(reactor) is loop, broke(
            "twisted", "AsyncioSelectorReactor no longer keeps its loop in `_asyncioEventloop`"
        )
    finally:
        loop.close()


def test_a_file_descriptors_unsent_bytes_are_counted_from_its_buffer_fields() -> None:
    from twisted.internet.abstract import FileDescriptor
    from twisted.internet.testing import MemoryReactor

    class Socket(FileDescriptor):
        """A descriptor whose socket takes 30 bytes per write: Twisted's own buffering above it."""

        def writeSomeData(self, data: bytes) -> int:
            return min(30, len(data))

    fd = Socket(reactor=MemoryReactor())  # type: ignore[arg-type]
    fd.connected = 1
    fd.write(b"x" * 100)
    assert private_apis.unsent_bytes(fd) == 100, broke("twisted", "a write is not counted as unsent")
    fd.doWrite()
    assert private_apis.unsent_bytes(fd) == 70, broke("twisted", "dataBuffer/offset no longer track a partial write")
    fd.write(b"y" * 50)
    assert private_apis.unsent_bytes(fd) == 120, broke("twisted", "_tempDataLen no longer counts queued writes")
    for field in ("dataBuffer", "offset", "_tempDataLen"):
        assert hasattr(fd, field), broke("twisted", f"FileDescriptor has no `{field}`")


def test_a_tcp_connection_can_still_be_aborted() -> None:
    from twisted.internet.tcp import Connection

    assert callable(getattr(Connection, "abortConnection", None)), broke("twisted", "tcp.Connection.abortConnection")


# ---- Daphne / autobahn -----------------------------------------------------------------------


def parameters(function: object) -> list[str]:
    return list(inspect.signature(function).parameters)  # type: ignore[arg-type]


def test_daphnes_send_and_close_take_what_the_wrappers_pass() -> None:
    from daphne.ws_protocol import WebSocketProtocol

    assert parameters(WebSocketProtocol.serverSend)[:3] == ["self", "content", "binary"], broke(
        "daphne", "WebSocketProtocol.serverSend(self, content, binary) changed"
    )
    assert parameters(WebSocketProtocol.serverClose)[:2] == ["self", "code"], broke(
        "daphne", "WebSocketProtocol.serverClose(self, code) changed"
    )


def test_autobahn_still_sends_any_close_code_through_sendCloseFrame() -> None:
    from daphne.ws_protocol import WebSocketProtocol

    assert {"code", "isReply"} <= set(parameters(WebSocketProtocol.sendCloseFrame)), broke(
        "autobahn", "WebSocketProtocol.sendCloseFrame(code=, isReply=) changed"
    )


def accepted_connection(server_class: type) -> tuple[object, socket.socket]:
    """A real Twisted tcp.Server (of ``server_class``) over one end of a socket pair."""
    from twisted.internet.protocol import Protocol
    from twisted.internet.testing import MemoryReactor

    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    theirs.settimeout(0.3)
    connection = server_class(ours, Protocol(), ("127.0.0.1", 1), None, 1, MemoryReactor())
    return connection, theirs


def test_a_write_with_nothing_queued_is_sent_at_once_and_a_backlog_keeps_its_order() -> None:
    from twisted.internet import tcp

    class Queued(tcp.Server):
        pass

    class AtOnce(tcp.Server):
        pass

    private_apis.send_writes_at_once(AtOnce)
    queued, queued_peer = accepted_connection(Queued)
    queued.write(b"hello")  # type: ignore[attr-defined]
    with pytest.raises(TimeoutError):
        queued_peer.recv(10)  # Twisted alone waits for the reactor's next pass
    at_once, peer = accepted_connection(AtOnce)
    for field in ("TLS", "connected", "disconnecting", "_writeDisconnected", "dataBuffer", "offset", "_tempDataLen"):
        assert hasattr(at_once, field), broke("twisted", f"tcp.Server has no `{field}`")
    at_once.write(b"hello")  # type: ignore[attr-defined]
    assert peer.recv(10) == b"hello", broke("twisted", "a write with nothing queued was not sent at once")
    assert private_apis.unsent_bytes(at_once) == 0
    # A backlog (here: bytes queued the ordinary way) makes later writes queue behind it.
    at_once._tempDataBuffer.append(b"first ")  # type: ignore[attr-defined]
    at_once._tempDataLen += 6  # type: ignore[attr-defined]
    at_once.write(b"second")  # type: ignore[attr-defined]
    assert private_apis.unsent_bytes(at_once) == 12
    at_once.doWrite()  # type: ignore[attr-defined]
    assert peer.recv(20) == b"first second"


def test_a_consumers_send_still_leads_through_the_session_wrapper_to_daphnes_protocol() -> None:
    """What direct_text_sender walks: Channels' InstanceSessionWrapper, Daphne's partial."""
    import functools

    from channels.sessions import InstanceSessionWrapper
    from daphne.server import Server

    from chatsite.private_apis import direct_text_sender

    sent: list[tuple[str, bool]] = []

    class Protocol:
        def serverSend(self, content: str, binary: bool = False) -> None:
            sent.append((content, binary))

    protocol = Protocol()
    server = Server.__new__(Server)
    server.connections = {protocol: {}}
    wrapper = InstanceSessionWrapper.__new__(InstanceSessionWrapper)
    wrapper.real_send = functools.partial(server.handle_reply, protocol)
    assert "real_send" in InstanceSessionWrapper.__init__.__code__.co_names, broke(
        "channels", "InstanceSessionWrapper no longer keeps the inner send as real_send"
    )
    send_text = direct_text_sender(wrapper.send)
    assert send_text is not None, broke("channels/daphne", "the send chain is no longer session wrapper → handle_reply")
    send_text("hello")
    server.connections[protocol]["disconnected"] = True
    send_text("gone")
    assert sent == [("hello", False)]
    assert direct_text_sender(lambda message: None) is None
