"""Fair use over the real socket: per-user limits, budgets, and what every answer is metered at.

Real Daphne processes on loopback, real HTTP to the fake provider; the counters behind the
limits are Django's cache (local memory, or the real Redis on this machine).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import websockets

from bench.relay import Tab, make_sessions, model_id
from tests.fakeprovider import FakeProvider, Script
from tests.live import LiveServer
from tests.test_postgres_redis import REDIS, require

SLOW = Script(tokens=[f"s{i} " for i in range(40)], tokens_per_second=10)  # 4 s


def start_server(fake: FakeProvider, **env: str) -> LiveServer:
    live = LiveServer(env).start()
    live.manage("provider", "add", "fake", "--kind", "openai", "--base-url", fake.url + "/v1",
                "--model", "fake-model", "--default", "fake-model")
    live.model = model_id(live)  # type: ignore[attr-defined]
    return live


@pytest.fixture(scope="module")
def server(fake_server: FakeProvider) -> Iterator[LiveServer]:
    live = start_server(fake_server, PARLEY_USER_MAX_ACTIVE_GENERATIONS="2", PARLEY_MAX_ACTIVE_GENERATIONS="3",
                        PARLEY_USER_MESSAGES_PER_MINUTE="6", PARLEY_USER_MAX_SOCKETS="2")
    yield live
    live.stop()


@pytest.fixture
def fake(fake_server: FakeProvider) -> FakeProvider:
    fake_server.reset()
    return fake_server


def send(model: str, content: str = "hi") -> str:
    return json.dumps({"type": "send", "client_id": str(uuid.uuid4()), "conversation": None,
                       "model": model, "content": content})


async def early_in_a_minute() -> None:
    """Rate limits count per clock minute: start a counting test where the minute is young."""
    while time.time() % 60 > 30:  # noqa: ASYNC110 — waiting on the clock, not on an event
        await asyncio.sleep(1)


async def first_of(ws: Any, kinds: set[str], timeout: float = 10) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            frame = json.loads(await ws.recv())
            if frame["type"] in kinds:
                return frame  # type: ignore[no-any-return]


def db(live: LiveServer, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    return live.sql(sql, *args)


def shell(live: LiveServer, code: str) -> str:
    return live.manage("shell", "-c", "from django.contrib.auth.models import User, Group\n"
                       "from chat.models import Budget, ChatModel\nfrom decimal import Decimal\n" + code)


# ---- limits ----------------------------------------------------------------------------------

async def test_one_user_cannot_take_every_slot_and_another_user_is_never_starved(
    server: LiveServer, fake: FakeProvider
) -> None:
    hog, other = _fresh_sessions(server, 2)
    fake.set_default(SLOW)
    tab = await Tab.open(server, hog)
    await tab.ws.send(send(server.model))  # type: ignore[attr-defined]
    await tab.ws.send(send(server.model))  # type: ignore[attr-defined]
    for _ in range(2):
        await first_of(tab.ws, {"start"})
    await tab.ws.send(send(server.model))  # type: ignore[attr-defined]
    refused = await first_of(tab.ws, {"error"})
    assert refused["code"] == "too_many_answers" and refused["retry_after"] > 0
    await asyncio.to_thread(fake.wait_for_requests, 2)
    await asyncio.sleep(0.5)
    assert len(fake.requests) == 2, "the refused third answer was asked upstream"
    # Two of the server's three places are taken by one user; the third is the other user's.
    fake.set_default(Script(tokens=["yours"]))
    answer = await (await Tab.open(server, other)).ask(server.model)  # type: ignore[attr-defined]
    assert answer["end"]["status"] == "complete" and answer["text"] == "yours"


def _fresh_sessions(live: LiveServer, count: int) -> list[str]:
    """Users no earlier test has touched (their counters start at zero)."""
    return make_sessions_named(live, count, f"f{uuid.uuid4().hex[:6]}")


def make_sessions_named(live: LiveServer, count: int, prefix: str) -> list[str]:
    script = (
        "from django.contrib.auth.models import User\n"
        "from django.contrib.auth import SESSION_KEY, BACKEND_SESSION_KEY, HASH_SESSION_KEY\n"
        "from django.contrib.sessions.backends.db import SessionStore\n"
        f"for i in range({count}):\n"
        f"    u = User.objects.create_user('{prefix}' + str(i))\n"
        "    s = SessionStore()\n"
        "    s[SESSION_KEY] = str(u.pk); s[BACKEND_SESSION_KEY] = 'django.contrib.auth.backends.ModelBackend'\n"
        "    s[HASH_SESSION_KEY] = u.get_session_auth_hash(); s.create(); print('KEY', s.session_key)\n"
    )
    out = live.manage("shell", "-c", script)
    return [f"sessionid={line.split()[1]}" for line in out.splitlines() if line.startswith("KEY ")]


async def test_messages_past_the_per_minute_limit_are_refused_with_when_to_retry(
    server: LiveServer, fake: FakeProvider
) -> None:
    (cookie,) = _fresh_sessions(server, 1)
    fake.set_default(Script(tokens=["ok"]))
    tab = await Tab.open(server, cookie)
    await early_in_a_minute()
    for _ in range(6):
        assert (await tab.ask(server.model))["end"]["status"] == "complete"  # type: ignore[attr-defined]
    refused = (await tab.ask(server.model))["end"]  # type: ignore[attr-defined]
    assert refused["code"] == "rate_limited" and 1 <= refused["retry_after"] <= 60
    assert len(fake.requests) == 6


async def test_too_many_tabs_are_told_so_and_other_users_are_not(server: LiveServer) -> None:
    cookie, other = _fresh_sessions(server, 2)
    kept = [await Tab.open(server, cookie), await Tab.open(server, cookie)]
    async with websockets.connect(server.url.replace("http", "ws") + "/ws/chat/",
                                  additional_headers={"Cookie": cookie, "Origin": server.url}) as ws:
        error = json.loads(await ws.recv())
        assert error["code"] == "too_many_sockets"
        with pytest.raises(websockets.ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 4429
    await Tab.open(server, other)  # a different user is not counted against this one
    for tab in kept:
        await tab.ws.close()


# ---- budgets ---------------------------------------------------------------------------------

async def test_an_answer_that_crosses_the_budget_finishes_and_the_next_is_refused_before_any_call(
    server: LiveServer, fake: FakeProvider
) -> None:
    (cookie,) = _fresh_sessions(server, 1)
    name = _username(server, cookie)
    shell(server, f"Budget.objects.create(user=User.objects.get(username='{name}'), period='day', max_tokens=10)")
    fake.set_default(Script(tokens=["a ", "whole ", "answer"], usage=(8, 6)))
    tab = await Tab.open(server, cookie)
    first = await tab.ask(server.model)  # type: ignore[attr-defined]
    assert first["end"]["status"] == "complete" and first["text"] == "a whole answer"
    warning = await first_of(tab.ws, {"budget"})
    assert warning["budgets"][0]["used_tokens"] == 14 and warning["budgets"][0]["fraction"] >= 1
    refused = (await tab.ask(server.model))["end"]  # type: ignore[attr-defined]
    assert refused["code"] == "budget_exceeded" and "resets at" in refused["message"]
    assert refused["retry_after"] > 0
    assert len(fake.requests) == 1, "a refused answer must cost nothing upstream"


def _username(live: LiveServer, cookie: str) -> str:
    key = cookie.split("=", 1)[1]
    return shell(live, (
        "from django.contrib.sessions.models import Session\n"
        f"print(User.objects.get(pk=Session.objects.get(session_key='{key}').get_decoded()['_auth_user_id']).username)"
    )).strip().splitlines()[-1]


async def test_the_most_specific_budget_wins_and_money_budgets_count_the_price_at_the_time(
    server: LiveServer, fake: FakeProvider
) -> None:
    generous, limited = _fresh_sessions(server, 2)
    g, lim = _username(server, generous), _username(server, limited)
    shell(server, (
        f"team = Group.objects.create(name='team-{uuid.uuid4().hex[:6]}')\n"
        f"team.user_set.add(User.objects.get(username='{g}'), User.objects.get(username='{lim}'))\n"
        "Budget.objects.update_or_create(user=None, group=None, period='month', defaults={'max_cost': Decimal('0.10')})\n"
        "Budget.objects.create(group=team, period='month', max_cost=Decimal('10'))\n"
        f"Budget.objects.create(user=User.objects.get(username='{lim}'), period='month', max_cost=Decimal('0.05'))\n"
        "ChatModel.objects.filter(model_id='fake-model').update(price_input_per_mtok=Decimal('1'), price_output_per_mtok=Decimal('4'))\n"
    ))
    try:
        # 100,000 input tokens at 1 and 10,000 output tokens at 4 per million: 0.14 an answer.
        fake.set_default(Script(tokens=["ok"], usage=(100_000, 10_000)))
        for cookie in (generous, limited):
            end = (await (await Tab.open(server, cookie)).ask(server.model))["end"]  # type: ignore[attr-defined]
            assert end.get("status") == "complete", end
        # The group's budget is more specific than everyone's; the user's own beats the group's.
        assert (await (await Tab.open(server, generous)).ask(server.model))["end"]["status"] == "complete"  # type: ignore[attr-defined]
        assert (await (await Tab.open(server, limited)).ask(server.model))["end"]["code"] == "budget_exceeded"  # type: ignore[attr-defined]
        shell(server, "ChatModel.objects.filter(model_id='fake-model').update(price_input_per_mtok=Decimal('100'))")
        costs = db(server, "select cost, currency from chat_usagerecord where username = ?", g)
        assert [(Decimal(str(c)), cur) for c, cur in costs] == [(Decimal("0.14"), "USD")] * 2, "history kept its price"
    finally:
        shell(server, "Budget.objects.all().delete()\n"
                      "ChatModel.objects.update(price_input_per_mtok=None, price_output_per_mtok=None)")


# ---- metering --------------------------------------------------------------------------------

async def test_every_answer_is_metered_with_its_tokens_timing_model_and_source(server: LiveServer, fake: FakeProvider) -> None:
    (cookie,) = _fresh_sessions(server, 1)
    name = _username(server, cookie)
    fake.set_default(Script(tokens=["metered ", "answer"], usage=(21, 2), first_token_delay=0.1))
    end = (await (await Tab.open(server, cookie)).ask(server.model))["end"]  # type: ignore[attr-defined]
    rows = db(server, "select source, input_tokens, output_tokens, estimated, ttft_ms, duration_ms, model_name, "
                      "provider_name, status, message_id from chat_usagerecord where username = ?", name)
    assert len(rows) == 1
    source, tokens_in, tokens_out, estimated, ttft, duration, model, provider, status, message = rows[0]
    assert (source, tokens_in, tokens_out, estimated, status) == ("chat", 21, 2, 0, "complete")
    assert ttft >= 100 and duration >= ttft and (model, provider) == ("fake-model", "fake")
    assert uuid.UUID(str(message)) == uuid.UUID(end["message"])


# ---- across restarts and processes -----------------------------------------------------------

async def test_with_redis_a_rate_limit_survives_a_restart(fake_server: FakeProvider) -> None:
    require(6379, "Redis")
    fake_server.reset()
    fake_server.set_default(Script(tokens=["ok"]))
    env = {"REDIS_URL": REDIS, "PARLEY_CACHE_PREFIX": f"test-{uuid.uuid4().hex}", "PARLEY_USER_MESSAGES_PER_MINUTE": "2"}
    live = start_server(fake_server, **env)
    try:
        (cookie,) = make_sessions(live, 1)
        tab = await Tab.open(live, cookie)
        await early_in_a_minute()
        for _ in range(2):
            assert (await tab.ask(live.model))["end"]["status"] == "complete"  # type: ignore[attr-defined]
        live.stop(keep_data=True)
        live.start()  # the same database and Redis, a new process
        tab = await Tab.open(live, cookie)
        refused = (await tab.ask(live.model))["end"]  # type: ignore[attr-defined]
        assert refused.get("code") == "rate_limited", refused
    finally:
        live.stop()
