"""The same chat on PostgreSQL and Redis, switched on by DATABASE_URL/REDIS_URL.

Uses the services this machine runs on loopback; under CI their absence is a failure.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from bench.relay import Tab, make_sessions, model_id
from tests.fakeprovider import FakeProvider, Script
from tests.live import LiveServer

PG = "postgres://postgres@127.0.0.1:5432"
REDIS = "redis://127.0.0.1:6379/0"


def reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def require(port: int, what: str) -> None:
    if not reachable(port):
        if os.environ.get("CI"):
            pytest.fail(f"{what} is not listening on 127.0.0.1:{port}; .ci/run starts it")
        pytest.skip(f"{what} is not running on 127.0.0.1:{port}")


@pytest.fixture
def pg_database() -> Iterator[str]:
    require(5432, "PostgreSQL")
    name = f"parley_live_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG + "/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"{PG}/{name}"
    with psycopg.connect(PG + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_chat_streams_and_is_saved_on_postgresql_with_redis(pg_database: str, fake_server: FakeProvider) -> None:
    require(6379, "Redis")
    fake_server.reset()
    fake_server.enqueue(Script(tokens=["Saved", " in", " Postgres."], usage=(5, 3)))
    live = LiveServer({"DATABASE_URL": pg_database, "REDIS_URL": REDIS}).start()
    try:
        settings_used = live.manage(
            "shell",
            "-c",
            "from django.conf import settings; from django.db import connection; "
            "print(connection.vendor, settings.CACHES['default']['BACKEND'])",
        )
        assert "postgresql django.core.cache.backends.redis.RedisCache" in settings_used
        live.add_fake_provider(fake_server.url)
        cookie, model = make_sessions(live, 1)[0], model_id(live)

        async def chat() -> dict[str, object]:
            tab = await Tab.open(live, cookie)
            try:
                return await tab.ask(model, "Where will this be saved?")
            finally:
                await tab.ws.close()

        answer = asyncio.run(chat())
    finally:
        live.stop()
    assert answer["text"] == "Saved in Postgres." and answer["end"]["status"] == "complete"  # type: ignore[index]
    with psycopg.connect(pg_database) as conn:
        rows = conn.execute("select role, content, status, output_tokens from chat_message order by created").fetchall()
    assert rows == [
        ("user", "Where will this be saved?", "complete", None),
        ("assistant", "Saved in Postgres.", "complete", 3),
    ]


# redis-py's socket timeout is 5 s; channels_redis blocked on Redis for 5 s per receive, so
# sockets died at ~6 s. Three times that, idle and mid-answer, shows nothing times out.
HELD_SECONDS = 16


def test_an_idle_socket_and_a_slow_answer_outlive_redis_timeouts(fake_server: FakeProvider) -> None:
    require(6379, "Redis")
    fake_server.reset()
    tokens = [f"t{i} " for i in range(HELD_SECONDS * 2)]
    fake_server.enqueue(Script(tokens=tokens, tokens_per_second=2))  # 16 s of answer
    live = LiveServer({"REDIS_URL": REDIS}).start()
    try:
        live.add_fake_provider(fake_server.url)
        idle_cookie, busy_cookie = make_sessions(live, 2)
        model = model_id(live)

        async def hold() -> tuple[dict[str, object], dict[str, object]]:
            idle = await Tab.open(live, idle_cookie)
            busy = await Tab.open(live, busy_cookie)
            try:
                answer = await busy.ask(model, "Take your time.")
                # The idle socket said nothing for the whole answer; it must still be open.
                await idle.ws.send('{"type": "ping"}')
                pong = json.loads(await asyncio.wait_for(idle.ws.recv(), 5))
                return answer, pong
            finally:
                await idle.ws.close()
                await busy.ws.close()

        started = time.monotonic()
        answer, pong = asyncio.run(hold())
        held = time.monotonic() - started
    finally:
        live.stop()
    assert held > HELD_SECONDS - 1
    assert answer["text"] == "".join(tokens) and answer["end"]["status"] == "complete"  # type: ignore[index]
    assert pong == {"type": "pong"}
    assert "Timeout reading" not in live.log()
