"""The response cache on the chat socket: an exact repeat is answered at once with no upstream
call and marked cached; Regenerate asks afresh. (The API's side is in tests/test_api.py.)"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.core.cache import cache

from chat.models import ChatModel, Message, UsageRecord
from tests.fakeprovider import FakeProvider, Script
from tests.test_chat_socket import send_frame, text_of

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def cached_model(fake_model: ChatModel) -> ChatModel:
    cache.clear()
    fake_model.cache_ttl, fake_model.cache_max_temperature = 60, 0.2
    fake_model.save()
    return fake_model


async def ask(sock: Any, model: ChatModel, content: str, temperature: float = 0) -> list[dict[str, Any]]:
    await sock.send(send_frame(model, content, options={"temperature": temperature}))
    frames = await sock.recv_until("end")
    await asyncio.sleep(0.2)  # a fresh answer is kept off the event loop, after it is saved
    return frames


async def test_a_repeated_question_is_answered_from_the_cache_marked_cached_with_no_upstream_call(
    alice: Any, cached_model: ChatModel, fake: FakeProvider, connect: Any
) -> None:
    sock = await connect(alice)
    fake.set_default(Script(tokens=["Paris", "."], usage=(8, 2)))
    first = await ask(sock, cached_model, "Capital of France?")
    assert "cached" not in first[-1]
    again = await ask(sock, cached_model, "Capital of France?")
    assert text_of(again) == "Paris." and again[-1]["cached"] is True and again[-1]["status"] == "complete"
    assert len(fake.requests) == 1
    saved = await database_sync_to_async(Message.objects.get)(id=again[-1]["message"])
    assert saved.cached and saved.content == "Paris."
    records = await database_sync_to_async(
        lambda: list(UsageRecord.objects.order_by("id").values_list("cached", "source"))
    )()
    assert records == [(False, "chat"), (True, "chat")]


async def test_regenerate_never_answers_from_the_cache(
    alice: Any, cached_model: ChatModel, fake: FakeProvider, connect: Any
) -> None:
    sock = await connect(alice)
    await ask(sock, cached_model, "Tell me a joke")
    again = await ask(sock, cached_model, "Tell me a joke")
    assert again[-1].get("cached") is True
    fake.set_default(Script(tokens=["A ", "new ", "one"]))
    await sock.send(
        {
            "type": "regenerate",
            "client_id": "3f2f0a8e-9d9b-4a4e-8a55-2f7d7f6f1b01",
            "message": again[-1]["message"],
        }
    )
    frames = await sock.recv_until("end")
    assert text_of(frames) == "A new one" and "cached" not in frames[-1]
    assert len(fake.requests) == 2


async def test_a_warmer_request_than_the_admin_allows_is_never_cached(
    alice: Any, cached_model: ChatModel, fake: FakeProvider, connect: Any
) -> None:
    sock = await connect(alice)
    for _ in range(2):
        frames = await ask(sock, cached_model, "Write a poem", temperature=0.7)
        assert "cached" not in frames[-1]
    assert len(fake.requests) == 2


async def test_a_model_without_a_cache_always_asks_the_provider(
    alice: Any, fake_model: ChatModel, fake: FakeProvider, connect: Any
) -> None:
    sock = await connect(alice)
    for _ in range(2):
        await ask(sock, fake_model, "Same again")
    assert len(fake.requests) == 2
