"""Ownership claims under a burst of sends, against the real Redis."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator

import pytest

from chat.cluster import LEASE, Cluster, Unavailable
from tests.test_postgres_redis import REDIS, require


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    require(6379, "Redis")
    c = Cluster(REDIS, f"test-{secrets.token_hex(5)}", f"w-{secrets.token_hex(4)}")
    yield c
    await c.redis.aclose()


async def connections_of(c: Cluster) -> int:
    clients = await c.redis.client_list()
    return sum(1 for client in clients if client.get("name") == f"parley:{c.worker_id}")


async def test_a_burst_of_200_sends_claims_every_answer_in_one_round_trip(cluster: Cluster) -> None:
    # One connection per claim (as before) opened 200 at once; on a loop busy with the same
    # burst some replies were read after the 2-s socket timeout and those sends were refused.
    answers = [(uuid.uuid4(), uuid.uuid4()) for _ in range(200)]
    await asyncio.gather(*(cluster.claim(7, conversation, message) for conversation, message in answers))
    assert await connections_of(cluster) <= 2
    for conversation, message in answers[::40]:
        assert await cluster.owner_of_conversation(conversation) == (cluster.worker_id, 7)
        assert await cluster.redis.get(cluster.key("owner-msg", message)) == cluster.worker_id.encode()
        assert 0 < await cluster.redis.ttl(cluster.key("owner", conversation)) <= LEASE


async def test_a_claim_is_refused_when_redis_cannot_be_reached() -> None:
    c = Cluster("redis://127.0.0.1:1", "test-unreachable", "w-unreachable")
    with pytest.raises(Unavailable):
        await asyncio.gather(*(c.claim(7, uuid.uuid4(), uuid.uuid4()) for _ in range(3)))
    await c.redis.aclose()
