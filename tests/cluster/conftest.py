"""Several real Daphne processes on PostgreSQL and Redis behind a real nginx.

The PostgreSQL and Redis this machine runs on loopback (under CI their absence fails the
run). A test that stops Redis gets a Redis server of its own, so nothing else on the
machine loses its Redis meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import websockets

from bench.relay import model_id
from tests.cluster.balancer import Balancer, require_nginx
from tests.fakeprovider import FakeProvider
from tests.live import LiveServer, drop_postgres, free_port, fresh_postgres, wait_for_port
from tests.test_postgres_redis import PG, REDIS, require


@dataclass
class Deployment:
    servers: list[LiveServer]
    balancer: Balancer
    database: str
    redis: str
    model: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.balancer.url

    def manage(self, *args: str) -> str:
        return self.servers[0].manage(*args)

    def sql(self, query: str, *args: object) -> list[tuple[object, ...]]:
        return self.servers[0].sql(query, *args)

    def sessions(self, count: int, username: str | None = None) -> list[str]:
        """Session cookies: `count` fresh users, or `count` sessions of one new user."""
        one = username or ""
        script = (
            "from django.contrib.auth.models import User\n"
            "from django.contrib.auth import SESSION_KEY, BACKEND_SESSION_KEY, HASH_SESSION_KEY\n"
            "from django.contrib.sessions.backends.db import SessionStore\n"
            f"one = {one!r}\n"
            "u = User.objects.create_user(one) if one else None\n"
            f"for i in range({count}):\n"
            f"    v = u or User.objects.create_user('c{uuid.uuid4().hex[:6]}_' + str(i))\n"
            "    s = SessionStore()\n"
            "    s[SESSION_KEY] = str(v.pk); s[BACKEND_SESSION_KEY] = 'django.contrib.auth.backends.ModelBackend'\n"
            "    s[HASH_SESSION_KEY] = v.get_session_auth_hash(); s.create(); print('KEY', s.session_key)\n"
        )
        out = self.manage("shell", "-c", script)
        return [f"sessionid={line.split()[1]}" for line in out.splitlines() if line.startswith("KEY ")]

    def stop(self) -> None:
        for server in self.servers:
            server.stop(keep_data=True)
        self.balancer.stop()
        drop_postgres(self.database)


def start_deployment(fake: FakeProvider, processes: int = 2, redis: str = REDIS, **env: str) -> Deployment:
    require(5432, "PostgreSQL")
    require_nginx()
    database = fresh_postgres(PG + "/postgres")
    shared = {
        "DATABASE_URL": database,
        "REDIS_URL": redis,
        "PARLEY_CACHE_PREFIX": f"t{uuid.uuid4().hex[:10]}",
        "PARLEY_PROXY_COUNT": "1",
        "PARLEY_USER_MESSAGES_PER_MINUTE": "0",
        **env,
    }
    servers = [LiveServer(shared) for _ in range(processes)]
    servers[0].manage("migrate", "--noinput")
    for server in servers:
        server.start(migrate=False)
    balancer = Balancer([s.port for s in servers]).start()
    deployment = Deployment(servers, balancer, database, redis, extra=shared)
    servers[0].add_fake_provider(fake.url, default="fake-model")
    deployment.model = model_id(servers[0])
    return deployment


@pytest.fixture(scope="module")
def deployment(fake_server: FakeProvider) -> Iterator[Deployment]:
    require(6379, "Redis")
    d = start_deployment(fake_server, processes=2)
    yield d
    d.stop()


@pytest.fixture
def fake(fake_server: FakeProvider) -> FakeProvider:
    fake_server.reset()
    return fake_server


class Socket:
    """One tab's socket through the balancer, with the process that took it."""

    def __init__(self, ws: Any, server: str) -> None:
        self.ws, self.server = ws, server

    @classmethod
    async def open(cls, url: str, cookie: str) -> Socket:
        ws = await websockets.connect(
            url.replace("http", "ws") + "/ws/chat/", max_size=None, additional_headers={"Cookie": cookie, "Origin": url}
        )
        hello = json.loads(await ws.recv())
        assert hello["type"] == "hello", hello
        return cls(ws, hello.get("server", ""))

    async def send(self, **frame: Any) -> None:
        await self.ws.send(json.dumps(frame))

    async def next(self, kinds: set[str], timeout: float = 15, **match: Any) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                frame = json.loads(await self.ws.recv())
                if frame["type"] in kinds and all(frame.get(k) == v for k, v in match.items()):
                    return frame  # type: ignore[no-any-return]

    async def close(self) -> None:
        await self.ws.close()


async def spread(url: str, cookies: list[str]) -> dict[str, list[str]]:
    """The cookies by the process the balancer sends each one to."""
    by_server: dict[str, list[str]] = {}
    for cookie in cookies:
        sock = await Socket.open(url, cookie)
        by_server.setdefault(sock.server, []).append(cookie)
        await sock.close()
    return by_server


class PrivateRedis:
    """A Redis server of the test's own, to stop and start at will."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> PrivateRedis:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
