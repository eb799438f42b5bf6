"""Shared fixtures: Alice and Bob, the fake provider over real HTTP, sockets signed in as someone."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.test import Client

from chat.models import ChatModel, Provider
from tests.fakeprovider import FakeProvider

ORIGIN = b"http://127.0.0.1:8000"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # `make test-postgres` runs the same suite on PostgreSQL; tests of SQLite's own files and
    # write lock have nothing to check there.
    if os.environ.get("DATABASE_URL", "").startswith("postgres"):
        skip = pytest.mark.skip(reason="checks SQLite itself; this run is on PostgreSQL")
        for item in items:
            if item.get_closest_marker("sqlite"):
                item.add_marker(skip)


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeProvider]:
    fake = FakeProvider().start()
    yield fake
    fake.stop()


@pytest.fixture
def fake(fake_server: FakeProvider) -> FakeProvider:
    fake_server.reset()
    return fake_server


@pytest.fixture
def alice(transactional_db: None) -> User:
    return User.objects.create_user("alice", password="alice-password-1")


@pytest.fixture
def bob(transactional_db: None) -> User:
    return User.objects.create_user("bob", password="bob-password-1")


@pytest.fixture
def fake_model(transactional_db: None, fake: FakeProvider) -> ChatModel:
    provider = Provider.objects.create(name="fake", label="Fake", family="openai", base_url=fake.url + "/v1")
    provider.set_api_key("sk-test-key-0000")
    provider.save()
    return ChatModel.objects.create(provider=provider, model_id="fake-model", display_name="Fake Model", is_default=True)


def session_cookie(user: User) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


class Socket:
    """A signed-in WebSocket to the real ASGI application (auth and Origin checks included)."""

    def __init__(self, communicator: WebsocketCommunicator) -> None:
        self.c = communicator

    async def send(self, frame: dict[str, Any]) -> None:
        await self.c.send_json_to(frame)

    async def recv(self, timeout: float = 5) -> dict[str, Any]:
        frame: dict[str, Any] = await self.c.receive_json_from(timeout=timeout)
        return frame

    async def recv_until(self, kind: str, timeout: float = 10) -> list[dict[str, Any]]:
        """Every frame up to and including the first of type `kind`."""
        frames = []
        while True:
            frame = await self.recv(timeout)
            frames.append(frame)
            if frame["type"] == kind:
                return frames

    async def close(self) -> None:
        await self.c.disconnect()


async def open_socket(cookie: bytes | None, origin: bytes = ORIGIN) -> tuple[bool, Any, WebsocketCommunicator]:
    from chatsite.asgi import application

    headers = [(b"origin", origin), (b"host", b"127.0.0.1:8000")]
    if cookie:
        headers.append((b"cookie", cookie))
    communicator = WebsocketCommunicator(application, "/ws/chat/", headers=headers)
    connected, code = await communicator.connect()
    return connected, code, communicator


@pytest.fixture
def connect(_no_generation_outlives_its_test: None, _close_provider_client: None) -> Any:
    """Open signed-in sockets; generations and the provider client end with the test."""
    opened: list[WebsocketCommunicator] = []

    async def _connect(user: User) -> Socket:
        from asgiref.sync import sync_to_async

        cookie = await sync_to_async(session_cookie)(user)
        ok, code, communicator = await open_socket(cookie)
        assert ok, f"socket refused with {code}"
        opened.append(communicator)
        sock = Socket(communicator)
        hello = await sock.recv()
        assert hello["type"] == "hello"
        return sock

    return _connect


@pytest.fixture
async def _close_provider_client() -> AsyncIterator[None]:
    # The shared httpx client belongs to one event loop; each test has its own loop.
    yield
    from providers.http import aclose_client

    await aclose_client()


@pytest.fixture
async def _no_generation_outlives_its_test() -> AsyncIterator[None]:
    # Generations belong to the process, and each test has its own event loop: end them
    # (saving their state, as a shutdown would) before the loop goes away.
    yield
    from chat.generation import registry

    await registry.shutdown(grace=5)


@pytest.fixture(autouse=True)
def _fresh_catalog_cache() -> None:
    # Each test builds its own catalogue; a model cached by an earlier test must not linger.
    from chat import catalog_cache

    catalog_cache.clear()
