"""Admission control and graceful shutdown: clear answers instead of lost or slowed ones."""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid
from typing import Any

import pytest
import websockets
from django.test import override_settings

from chat.models import ChatModel, Message
from tests.fakeprovider import FakeProvider, Script
from tests.live import LiveServer
from tests.test_chat_socket import send_frame

pytestmark = pytest.mark.django_db(transaction=True)


@override_settings(PARLEY_MAX_ACTIVE_GENERATIONS=1, PARLEY_BUSY_RETRY_SECONDS=7)
async def test_above_the_admission_limit_a_send_is_told_to_retry_later(
    alice: Any, bob: Any, fake_model: ChatModel, fake: FakeProvider, connect: Any
) -> None:
    fake.enqueue(Script(tokens=["busy "] * 50, tokens_per_second=20))
    alice_sock = await connect(alice)
    await alice_sock.send(send_frame(fake_model, "first"))
    await alice_sock.recv_until("delta")

    bob_sock = await connect(bob)
    frame = send_frame(fake_model, "second")
    await bob_sock.send(frame)
    reply = await bob_sock.recv()
    assert (reply["code"], reply["retry_after"], reply["client_id"]) == ("server_busy", 7, frame["client_id"])
    assert "Try again in 7 s" in reply["message"]
    assert len(fake.requests) == 1
    assert not await Message.objects.filter(content="second").aexists()


def test_sigterm_saves_running_answers_and_closes_sockets_with_1012(fake_server: FakeProvider) -> None:
    fake_server.reset()
    fake_server.enqueue(Script(tokens=[f"w{i} " for i in range(400)], tokens_per_second=40))
    live = LiveServer().start()
    try:
        live.create_user("alice", "alice-password-1")
        live.add_fake_provider(fake_server.url)
        from bench.relay import make_sessions, model_id

        cookie = make_sessions(live, 1)[0]
        model = model_id(live)
        seen, close_code, end = asyncio.run(_stream_until_sigterm(live, cookie, model))
        assert live.process is not None
        assert live.process.wait(15) == 0, live.log()
        saved = live.sql("select status, reason, content from chat_message where role='assistant'")[0]
    finally:
        live.stop()
    assert end is not None and (end["status"], end["reason"]) == ("incomplete", "server_restart")
    assert close_code == 1012
    assert fake_server.requests[-1].client_disconnected.wait(2)
    status, reason, content = saved
    assert (status, reason) == ("incomplete", "server_restart")
    assert content == seen and str(content).startswith("w0 ")


async def _stream_until_sigterm(
    live: LiveServer, cookie: str, model: str
) -> tuple[str, int | None, dict[str, Any] | None]:
    ws = await websockets.connect(
        live.url.replace("http", "ws") + "/ws/chat/", additional_headers={"Cookie": cookie, "Origin": live.url}
    )
    await ws.recv()  # hello
    await ws.send(
        json.dumps(
            {
                "type": "send",
                "client_id": str(uuid.uuid4()),
                "conversation": None,
                "model": model,
                "content": "a long one please",
            }
        )
    )
    text: list[str] = []
    end = None
    deadline = time.monotonic() + 20
    signalled = False
    try:
        while time.monotonic() < deadline:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if frame["type"] == "delta":
                text.append(frame["text"])
                if not signalled and len("".join(text)) > 20:
                    assert live.process is not None
                    live.process.send_signal(signal.SIGTERM)
                    signalled = True
            elif frame["type"] == "end":
                end = frame
    except websockets.ConnectionClosed:
        pass
    return "".join(text), ws.close_code, end


async def test_if_the_message_cannot_be_saved_the_sender_is_told_and_the_upstream_call_is_dropped(
    alice: Any, fake_model: ChatModel, fake: FakeProvider, connect: Any
) -> None:
    from asgiref.sync import sync_to_async

    from chat import protocol, sending
    from chat.generation import registry
    from chat.models import Conversation

    await connect(alice)  # for the fixtures that end generations and the provider client
    conversation = await Conversation.objects.acreate(owner=alice, title="about to vanish")
    fake.enqueue(Script(tokens=["never "] * 50, first_token_delay=0.5))
    command = protocol.Send(uuid.uuid4(), str(conversation.id), str(fake_model.id), "hello?")
    prepared = await sync_to_async(sending.prepare_send)(alice, command)
    assert isinstance(prepared, sending.Prepared)
    await conversation.adelete()  # deleted (say, in another tab) between the check and the save
    replies: list[Any] = []
    sink = sending.ChatSink(prepared, alice, replies.append, lambda: None)
    generation = registry.start(prepared.job(alice.id, time.monotonic()), sink)
    await asyncio.wait_for(generation.task, 5)  # type: ignore[arg-type]
    error = json.loads(replies[-1])
    assert error["code"] == "unavailable" and "could not save your message" in error["message"]
    # Either the save failed before the request went out, or the request was hung up.
    for request in fake.requests:
        assert await asyncio.to_thread(request.client_disconnected.wait, 2)
    assert not await Message.objects.filter(content="hello?").aexists()


@override_settings(PARLEY_MAX_GENERATION_SECONDS=0.5)
async def test_an_answer_past_the_time_limit_is_stopped_and_saved(
    alice: Any, fake_model: ChatModel, fake: FakeProvider, connect: Any
) -> None:
    fake.enqueue(Script(tokens=["slow "] * 100, tokens_per_second=10))
    sock = await connect(alice)
    await sock.send(send_frame(fake_model))
    end = (await sock.recv_until("end"))[-1]
    assert (end["status"], end["reason"]) == ("incomplete", "time_limit")
    assert await asyncio.to_thread(fake.requests[-1].client_disconnected.wait, 2)
    saved = await Message.objects.aget(id=end["message"])
    assert saved.reason == "time_limit" and saved.content.startswith("slow ")


async def test_without_reported_usage_the_tokens_are_estimated_and_marked_so(
    alice: Any, fake_model: ChatModel, fake: FakeProvider, connect: Any
) -> None:
    # Output: one token per streamed chunk; input: a token per four characters of the prompt.
    fake.enqueue(Script(tokens=["a", "b", "c", "d"], usage=None))
    sock = await connect(alice)
    await sock.send(send_frame(fake_model, "sixteen chars ok"))
    end = (await sock.recv_until("end"))[-1]
    assert end["usage"] == {"input_tokens": 4, "output_tokens": 4, "estimated": True}
    saved = await Message.objects.aget(id=end["message"])
    assert (saved.input_tokens, saved.output_tokens, saved.usage_estimated) == (4, 4, True)


@override_settings(PARLEY_DEFAULT_TEMPERATURE=0.9, PARLEY_DEFAULT_MAX_TOKENS=300)
async def test_sends_use_the_conversations_settings_then_the_admin_defaults(
    alice: Any, fake_model: ChatModel, fake: FakeProvider, connect: Any
) -> None:
    from chat.models import Conversation

    fake.set_default(Script(tokens=["ok"]))
    sock = await connect(alice)
    first = send_frame(fake_model, options={"temperature": 0.2, "system": "Be brief."})
    await sock.send(first)
    conversation = (await sock.recv_until("end"))[0]["conversation"]["id"]
    body = fake.requests[-1].body
    assert body["temperature"] == 0.2 and body["max_tokens"] == 300
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    await sock.send(send_frame(fake_model, "again", conversation=conversation))  # no options
    await sock.recv_until("end")
    assert fake.requests[-1].body["temperature"] == 0.2  # stored on the conversation
    await Conversation.objects.filter(id=conversation).aupdate(temperature=None)
    await sock.send(send_frame(fake_model, "and again", conversation=conversation))
    await sock.recv_until("end")
    assert fake.requests[-1].body["temperature"] == 0.9  # the admin default
