"""Cross-site WebSocket hijacking: only the server's own origin (or a trusted one) opens a socket.

A browser sends the user's cookies with a WebSocket handshake whatever page opens it, so
the Origin header is all that separates the chat page from another site, or from another
program on another port of the same machine. Handshakes are written byte by byte here, so
the Host and Origin headers are exactly the ones under test.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import Iterator

import pytest

from tests.live import LiveServer
from tests.security.conftest import Visitor, open_socket, shell

TRUSTED = "https://chat.example.test,https://*.corp.example.test"


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    live = LiveServer(
        extra_env={
            "CSRF_TRUSTED_ORIGINS": TRUSTED,
            "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto",
        }
    ).start()
    shell(
        live, ("from django.contrib.auth.models import User\nUser.objects.create_user('alice', password='pw-alice-1')")
    )
    yield live
    live.stop()


@pytest.fixture(scope="module")
def cookie(server: LiveServer) -> str:
    visitor = Visitor(server)
    assert visitor.sign_in("alice", "pw-alice-1").status_code == 302
    return visitor.cookie_header()


async def handshake(
    server: LiveServer, cookie: str, origin: str | None, host: str | None = None, **headers: str
) -> int:
    """The HTTP status Parley answers a WebSocket handshake with (101 = the socket opened)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    lines = [
        "GET /ws/chat/ HTTP/1.1",
        f"Host: {host or f'127.0.0.1:{server.port}'}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}",
        "Sec-WebSocket-Version: 13",
        f"Cookie: {cookie}",
    ]
    if origin is not None:
        lines.append(f"Origin: {origin}")
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    try:
        status_line = await asyncio.wait_for(reader.readline(), 10)
        return int(status_line.split()[1])
    finally:
        writer.close()


async def test_a_page_on_another_port_of_this_host_cannot_open_a_socket(server: LiveServer, cookie: str) -> None:
    assert await handshake(server, cookie, "http://127.0.0.1:9999") == 403
    assert await handshake(server, cookie, "http://127.0.0.1") == 403  # port 80


async def test_the_same_host_and_port_over_https_is_another_origin(server: LiveServer, cookie: str) -> None:
    assert await handshake(server, cookie, f"https://127.0.0.1:{server.port}") == 403


async def test_localhost_is_another_origin_than_127_0_0_1(server: LiveServer, cookie: str) -> None:
    assert await handshake(server, cookie, f"http://localhost:{server.port}") == 403


async def test_another_site_cannot_open_a_socket(server: LiveServer, cookie: str) -> None:
    for origin in ("https://evil.example", "null", f"http://127.0.0.1.evil.example:{server.port}"):
        assert await handshake(server, cookie, origin) == 403, origin


async def test_a_handshake_without_an_origin_is_refused(server: LiveServer, cookie: str) -> None:
    assert await handshake(server, cookie, None) == 403


async def test_a_host_outside_allowed_hosts_is_refused_even_with_a_matching_origin(
    server: LiveServer, cookie: str
) -> None:
    evil = f"evil.example:{server.port}"
    assert await handshake(server, cookie, f"http://{evil}", host=evil) == 403


async def test_the_servers_own_page_opens_a_socket(server: LiveServer, cookie: str) -> None:
    assert await handshake(server, cookie, f"http://127.0.0.1:{server.port}") == 101
    ws = await open_socket(server, cookie, origin=server.url)
    try:
        assert json.loads(await ws.recv())["type"] == "hello"
    finally:
        await ws.close()


async def test_an_origin_in_csrf_trusted_origins_opens_a_socket_and_only_with_its_scheme_and_port(
    server: LiveServer, cookie: str
) -> None:
    assert await handshake(server, cookie, "https://chat.example.test") == 101
    assert await handshake(server, cookie, "https://chat.example.test:443") == 101  # the default port
    assert await handshake(server, cookie, "https://team.corp.example.test") == 101  # a trusted wildcard
    assert await handshake(server, cookie, "http://chat.example.test") == 403
    assert await handshake(server, cookie, "https://chat.example.test:8443") == 403
    assert await handshake(server, cookie, "https://corp.example.test.evil.example") == 403


async def test_behind_a_tls_proxy_the_forwarded_scheme_is_the_pages_scheme(server: LiveServer, cookie: str) -> None:
    own = f"127.0.0.1:{server.port}"
    assert await handshake(server, cookie, f"https://{own}", X_Forwarded_Proto="https") == 101
    assert await handshake(server, cookie, f"http://{own}", X_Forwarded_Proto="https") == 403
