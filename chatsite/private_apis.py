"""Every place Parley reaches past a library's public API, in one module.

Each touch below buys something measured (see docs/performance.md) that the library has
no public way to do. They are pinned to the exact versions tested in pyproject.toml, and
tests/test_private_apis.py checks each one against the installed libraries, failing with
the library's name and version when an upgrade breaks it. To upgrade one of these
libraries: bump its pin, run that test file, and fix what it names here, nowhere else.

No Django here (providers/ imports this module and stays free of Django), and nothing
imported at module level beyond the HTTP stack providers/ already uses: Daphne's and
Twisted's modules are imported only inside the functions that patch them, because
importing daphne.server installs Twisted's reactor.
"""

from __future__ import annotations

import logging
from typing import Any

import h11
import httpcore
import httpx

log = logging.getLogger(__name__)

# The libraries reached into here; tests/test_private_apis.py holds them to the pins.
LIBRARIES = ("httpx", "httpcore", "h11", "daphne", "twisted", "autobahn")


# ---- httpx / httpcore: the provider HTTP client --------------------------------------------


def set_connection_pool(transport: httpx.AsyncHTTPTransport, pool: httpcore.AsyncConnectionPool) -> None:
    """Give an httpx transport a pool built by us (to name httpcore's network backend).

    httpx builds its httpcore pool in ``AsyncHTTPTransport.__init__`` with no way to pass
    ``network_backend``, and keeps it in ``_pool``; providers/transport.py swaps in an
    identical pool that reads through its asyncio backend.
    """
    transport._pool = pool


def h11_connection(response: httpx.Response) -> h11.Connection | None:
    """The h11 state machine under a streaming response from our transport, or None.

    providers/transport.py reads a chunked body straight off the connection and then
    has to tell h11 the body ended, so httpcore puts the connection back for reuse
    instead of closing it. httpx and httpcore keep the path to it private:
    ``Response.stream`` (httpx's BoundAsyncStream) → ``_stream`` (httpx's
    AsyncResponseStream) → ``_httpcore_stream`` (httpcore's PoolByteStream) → ``_stream``
    (HTTP11ConnectionByteStream) → ``_connection`` (AsyncHTTP11Connection) →
    ``_h11_state``. Only h11's public API is used on what comes back. None (and the
    caller falls back to httpx's own iterator) if any step is missing.
    """
    stream: Any = response.stream
    for attribute in ("_stream", "_httpcore_stream", "_stream", "_connection", "_h11_state"):
        stream = getattr(stream, attribute, None)
        if stream is None:
            return None
    return stream if isinstance(stream, h11.Connection) else None


# ---- Twisted: the reactor and its write buffers --------------------------------------------


def asyncio_loop(reactor: Any) -> Any:
    """The asyncio loop under Twisted's AsyncioSelectorReactor (its ``_asyncioEventloop``).

    `manage.py serve` schedules its shutdown drain, a coroutine, on the loop Daphne's
    reactor runs; the reactor does not expose it.
    """
    return reactor._asyncioEventloop


def unsent_bytes(transport: Any) -> int:
    """Bytes a Twisted TCP transport holds that the socket has not taken yet.

    Twisted's FileDescriptor keeps them in ``dataBuffer`` (from ``offset`` on) plus
    ``_tempDataLen`` bytes of ``_tempDataBuffer`` queued since the last ``doWrite``; no
    public call says how much is waiting, and it is what tells a stuck reader. A
    transport without these fields counts as having nothing waiting (the cap is then off,
    never the socket broken); the test holds a real FileDescriptor to them.
    """
    return (
        len(getattr(transport, "dataBuffer", b"")) - getattr(transport, "offset", 0)
        + getattr(transport, "_tempDataLen", 0)
    )


def send_writes_at_once(connection_class: Any = None) -> None:
    """Send on a Twisted TCP connection at once when nothing is queued, not on the next pass.

    Twisted's ``FileDescriptor.write`` only queues: it registers the socket for writing
    (an epoll_ctl), the reactor's next pass sends (``doWrite``) and unregisters it
    (another epoll_ctl). At a frame per token that was two syscalls and a trip round the
    loop per frame. asyncio's own transports try ``send`` first and queue only what the
    socket did not take; this does the same on ``tcp.Server`` (every connection Daphne
    accepts): with nothing queued it calls the connection's ``writeSomeData``, and whatever
    is left over (a full socket buffer, an error) goes through Twisted's own ``write``,
    so ordering, back-pressure, the unsent-bytes cap and error handling stay Twisted's.
    Reads ``TLS``, ``disconnecting``, ``_writeDisconnected``, ``dataBuffer``, ``offset``
    and ``_tempDataLen``. ``connection_class`` is for the test (tcp.Server otherwise).
    """
    from twisted.internet import tcp

    cls: Any = connection_class or tcp.Server
    original = cls.write

    def write(self: Any, data: bytes) -> None:
        if (
            type(data) is bytes and data and self.connected and not self.TLS and not self.disconnecting
            and not self._writeDisconnected and not self._tempDataLen and len(self.dataBuffer) == self.offset
        ):
            sent = self.writeSomeData(data)
            if sent == len(data):
                return
            if isinstance(sent, int):
                data = data[sent:]
            # else an error: Twisted's own write queues it and its doWrite meets the error.
        original(self, data)

    cls.write = write


# ---- Daphne / autobahn: frames out and close codes -----------------------------------------

SERVICE_RESTART = 1012


def bound_unsent_frames(limit: int) -> None:
    """Cut a WebSocket whose client has stopped taking frames off the wire.

    Daphne hands every frame to Twisted at once (``WebSocketProtocol.serverSend``), and
    Twisted buffers what the peer does not read without bound, so the consumer's outbox
    never fills: a stuck browser would hold its whole answer (and every later one) in
    server memory. Past ``limit`` unsent bytes the connection is aborted; the answer
    carries on server-side, and the browser reconnects and resumes it in one frame. A
    close frame would only queue behind the backlog. Wraps Daphne's serverSend.
    """
    from daphne.ws_protocol import WebSocketProtocol

    original = WebSocketProtocol.serverSend

    def server_send(self: Any, content: Any, binary: bool = False) -> None:
        transport = self.transport
        unsent = unsent_bytes(transport)
        if unsent > limit:
            if not getattr(self, "parley_cut", False):
                self.parley_cut = True
                log.warning("cut a WebSocket whose client stopped reading (%d bytes unsent)", unsent)
                transport.abortConnection()
            return
        original(self, content, binary)

    WebSocketProtocol.serverSend = server_send


def allow_service_restart_close_code() -> None:
    """Let Daphne send close code 1012 ("service restart", RFC 6455 registry).

    Autobahn's ``sendClose`` only accepts 1000 and 3000-4999 from applications, so a 1012
    from the consumer would fail and the client would see an abnormal 1006 instead of the
    hint to reconnect. Daphne's ``serverClose`` calls sendClose; this wraps it to call
    autobahn's lower-level ``sendCloseFrame`` (documented as internal), which sends any code.
    """
    from daphne.ws_protocol import WebSocketProtocol

    original = WebSocketProtocol.serverClose

    def server_close(self: Any, code: int | None = None) -> None:
        if code == SERVICE_RESTART:
            self.sendCloseFrame(code=SERVICE_RESTART, isReply=False)
        else:
            original(self, code)

    WebSocketProtocol.serverClose = server_close


def direct_text_sender(send: Any) -> Any:
    """A plain function that sends one text frame straight to Daphne, or None.

    A consumer's ``send`` is a chain of coroutines: Channels' session middleware (which does
    nothing for WebSocket frames: it saves sessions on ``http.response.start`` only), then
    Daphne's ``handle_reply`` (a ``functools.partial`` holding the protocol), which checks
    that the connection is still there and calls ``serverSend``. None of it awaits anything,
    yet a frame through it cost a task switch and four coroutine frames; a token is often a
    frame of its own. This walks that chain (``InstanceSessionWrapper.real_send``, the
    partial's ``args[0]``, ``DaphneServer.connections``) and returns None if it is not what
    was tested, so callers fall back to the ordinary ``await send(...)``.
    """
    import functools

    session = getattr(send, "__self__", None)
    real = getattr(session, "real_send", None)
    if type(session).__name__ != "InstanceSessionWrapper" or not isinstance(real, functools.partial):
        return None
    server = getattr(real.func, "__self__", None)
    if getattr(real.func, "__name__", "") != "handle_reply" or server is None or len(real.args) != 1:
        return None
    protocol = real.args[0]
    connections = getattr(server, "connections", None)
    if not isinstance(connections, dict) or not hasattr(protocol, "serverSend"):
        return None

    def send_text(text: str) -> None:
        state = connections.get(protocol)
        if state is None or state.get("disconnected"):
            return  # what handle_reply does for a connection that has gone
        protocol.serverSend(text, False)

    return send_text
