"""Every guarantee with two (or three) Daphne processes behind nginx, on PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest

from tests.cluster.conftest import Deployment, PrivateRedis, Socket, spread, start_deployment
from tests.fakeprovider import FakeProvider, Script

SLOW = [f"w{i} " for i in range(60)]  # 6 s at 10 tokens/s


def send(model: str, content: str = "hello") -> dict[str, Any]:
    return {"type": "send", "client_id": str(uuid.uuid4()), "conversation": None, "model": model, "content": content}


async def two_devices(d: Deployment) -> tuple[Socket, Socket]:
    """Two sessions of one user that the balancer sends to different processes."""
    by_server = await spread(d.url, d.sessions(12, username=f"dev{uuid.uuid4().hex[:6]}"))
    assert len(by_server) >= 2, f"12 sessions all went to one process: {list(by_server)}"
    (first, *_), (second, *_) = list(by_server.values())[:2]
    return await Socket.open(d.url, first), await Socket.open(d.url, second)


async def test_the_balancer_keeps_one_browsers_sockets_on_one_process(deployment: Deployment) -> None:
    (cookie,) = deployment.sessions(1)
    servers = {(await Socket.open(deployment.url, cookie)).server for _ in range(5)}
    assert len(servers) == 1 and servers != {""}


async def test_a_second_device_elsewhere_watches_resumes_and_stops_an_answer_running_on_the_first(
    deployment: Deployment, fake: FakeProvider
) -> None:
    here, there = await two_devices(deployment)
    assert here.server != there.server
    fake.set_default(Script(tokens=SLOW, tokens_per_second=10))
    await here.send(**send(deployment.model, "a long one"))
    ack = await here.next({"ack"})
    conversation = ack["conversation"]["id"]
    # The other device sees the same conversation live: its ack, start and deltas.
    await there.next({"ack"}, conversation=ack["conversation"])
    start = await there.next({"start"}, conversation=conversation)
    message = start["message"]["id"]
    await there.next({"delta"}, message=message)
    await asyncio.sleep(1.0)
    await there.send(type="resume", message=message, after_seq=0)
    replace = await there.next({"delta"}, message=message, replace=True)
    assert replace["text"].startswith("w0 w1 ") and replace["seq"] >= 2
    await there.send(type="stop", conversation=conversation)
    ends = [await s.next({"end"}, message=message) for s in (here, there)]
    assert {(e["status"], e["reason"]) for e in ends} == {("incomplete", "stopped")}
    assert await asyncio.to_thread(fake.requests[-1].client_disconnected.wait, 5), "the owner hung up upstream"
    rows = deployment.sql("select status, reason, content from chat_message where id = ?", message)
    assert rows[0][:2] == ("incomplete", "stopped") and str(rows[0][2]).startswith("w0 w1 ")


async def test_when_the_owner_is_killed_another_process_saves_its_answer_as_incomplete(
    fake_server: FakeProvider,
) -> None:
    fake_server.reset()
    d = start_deployment(fake_server, processes=2, PARLEY_CHECKPOINT_SECONDS="0.5")
    try:
        (cookie,) = d.sessions(1)
        sock = await Socket.open(d.url, cookie)
        fake_server.set_default(Script(tokens=SLOW * 3, tokens_per_second=10))
        await sock.send(**send(d.model, "do not stop"))
        start = await sock.next({"start"})
        message = start["message"]["id"]
        for _ in range(10):
            await sock.next({"delta"}, message=message)
        victim = next(s for s in d.servers if _serves(s, sock.server))
        victim.kill()
        killed_at = time.monotonic()
        deadline = killed_at + 30
        while time.monotonic() < deadline:
            status = d.sql("select status, reason from chat_message where id = ?", message)[0]
            if status[0] != "streaming":
                break
            await asyncio.sleep(0.2)
        recovered_in = time.monotonic() - killed_at
        assert status == ("incomplete", "server_restart"), status
        assert recovered_in < 20, f"recovered only after {recovered_in:.1f} s"
        # The tab reconnects (the balancer sends it to a process that is alive) and resumes.
        again = await Socket.open(d.url, cookie)
        assert again.server != sock.server
        await again.send(type="resume", message=message, after_seq=0)
        replace = await again.next({"delta"}, message=message, replace=True)
        end = await again.next({"end"}, message=message)
        saved = d.sql("select content from chat_message where id = ?", message)[0][0]
        assert replace["text"] == saved and str(saved).startswith("w0 ")
        assert (end["status"], end["reason"]) == ("incomplete", "server_restart")
    finally:
        d.stop()


def _serves(server: Any, worker: str) -> bool:
    return f"as {worker}." in server.log()


async def test_redis_stopping_mid_answer_degrades_and_everything_recovers_when_it_returns(
    fake_server: FakeProvider,
) -> None:
    fake_server.reset()
    redis = PrivateRedis().start()
    d = start_deployment(fake_server, processes=2, redis=redis.url)
    try:
        (cookie,) = d.sessions(1)
        sock = await Socket.open(d.url, cookie)
        fake_server.set_default(Script(tokens=SLOW[:40], tokens_per_second=10))
        await sock.send(**send(d.model, "keep going"))
        start = await sock.next({"start"})
        message = start["message"]["id"]
        redis.stop()
        # The owner's own socket keeps streaming and the answer is saved whole.
        end = await sock.next({"end"}, timeout=30, message=message)
        assert end["status"] == "complete"
        assert d.sql("select status from chat_message where id = ?", message)[0][0] == "complete"
        # A new send is refused clearly while ownership cannot be recorded, and costs nothing.
        before = len(fake_server.requests)
        await sock.send(**send(d.model, "now?"))
        refused = await sock.next({"error"})
        assert refused["code"] == "unavailable" and "try again" in refused["message"].lower()
        assert len(fake_server.requests) == before
        redis.start()  # the same port; empty, as a restarted Redis with nothing on disk is
        fake_server.set_default(Script(tokens=["back"]))
        deadline = time.monotonic() + 30
        while True:
            await sock.send(**send(d.model, "and now?"))
            frame = await sock.next({"error", "end"}, timeout=15)
            if frame["type"] == "end":
                break
            assert time.monotonic() < deadline, f"still refused after Redis came back: {frame}"
            await asyncio.sleep(1)
        assert frame["status"] == "complete"
    finally:
        d.stop()
        redis.stop()


async def test_the_server_wide_cap_and_per_user_limits_hold_across_processes(fake_server: FakeProvider) -> None:
    fake_server.reset()
    d = start_deployment(
        fake_server, processes=2, PARLEY_MAX_ACTIVE_GENERATIONS="2", PARLEY_USER_MAX_ACTIVE_GENERATIONS="1"
    )
    try:
        fake_server.set_default(Script(tokens=SLOW, tokens_per_second=10))
        here, there = await two_devices(d)
        await here.send(**send(d.model, "one"))
        await here.next({"start"})
        # The same user on the other process: over their one answer at a time.
        await there.send(**send(d.model, "two"))
        refused = await there.next({"error"})
        assert refused["code"] == "too_many_answers"
        # Other users: the second place is taken wherever they land, the third is refused.
        others = [await Socket.open(d.url, c) for c in d.sessions(2)]
        await others[0].send(**send(d.model, "three"))
        await others[0].next({"start"})
        await others[1].send(**send(d.model, "four"))
        busy = await others[1].next({"error"})
        assert busy["code"] == "server_busy" and busy["retry_after"] > 0
        assert len({s.server for s in [here, there, *others]}) == 2, "the test meant to use both processes"
    finally:
        d.stop()


@pytest.mark.parametrize("processes", [3])
async def test_three_processes_share_one_answer_between_a_users_devices(
    fake_server: FakeProvider, processes: int
) -> None:
    fake_server.reset()
    d = start_deployment(fake_server, processes=processes)
    try:
        by_server = await spread(d.url, d.sessions(24, username=f"tri{uuid.uuid4().hex[:6]}"))
        assert len(by_server) == 3, f"24 sessions landed on {len(by_server)} processes"
        socks = [await Socket.open(d.url, cookies[0]) for cookies in by_server.values()]
        fake_server.set_default(Script(tokens=["all ", "three ", "see ", "this"], tokens_per_second=20))
        await socks[0].send(**send(d.model))
        ends = [await s.next({"end"}) for s in socks]
        assert {e["message"] for e in ends} == {ends[0]["message"]} and {e["status"] for e in ends} == {"complete"}
    finally:
        d.stop()
