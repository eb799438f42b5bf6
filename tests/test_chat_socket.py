"""The chat WebSocket end to end: real ASGI app, real database, real HTTP to the fake provider."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async

from chat.models import ChatModel, Conversation, Message
from tests.conftest import open_socket, session_cookie
from tests.fakeprovider import FakeProvider, Script

pytestmark = pytest.mark.django_db(transaction=True)


def send_frame(model: ChatModel, content: str = "Hello there", conversation: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "type": "send",
        "client_id": str(uuid.uuid4()),
        "conversation": conversation,
        "model": str(model.id),
        "content": content,
        **extra,
    }


def text_of(frames: list[dict[str, Any]]) -> str:
    return "".join(f.get("text", "") for f in frames if f["type"] == "delta")


@sync_to_async
def saved_messages(conversation_id: str) -> list[Message]:
    return list(Message.objects.filter(conversation_id=conversation_id).order_by("created"))


async def test_a_socket_from_a_foreign_origin_is_refused(alice: Any) -> None:
    cookie = await sync_to_async(session_cookie)(alice)
    connected, _, _ = await open_socket(cookie, origin=b"https://evil.example")
    assert not connected


async def test_an_answer_streams_in_order_and_is_saved_complete(alice: Any, fake_model: ChatModel, fake: FakeProvider, connect: Any) -> None:
    tokens = ["The", " capital", " of", " France", " is", " Paris", "."]
    fake.enqueue(Script(tokens=tokens, usage=(21, 7)))
    sock = await connect(alice)
    await sock.send(send_frame(fake_model, "What is the capital of France?"))
    frames = await sock.recv_until("end")

    assert [f["type"] for f in frames[:2]] == ["ack", "start"]
    ack, start, end = frames[0], frames[1], frames[-1]
    assert ack["message"]["content"] == "What is the capital of France?"
    assert text_of(frames) == "The capital of France is Paris."
    seqs = [f["seq"] for f in frames if f["type"] == "delta"]
    assert seqs == list(range(1, len(seqs) + 1))
    assert end["status"] == "complete" and end["reason"] == "stop"
    assert end["usage"] == {"input_tokens": 21, "output_tokens": 7, "estimated": False}

    user_msg, answer = await saved_messages(ack["conversation"]["id"])
    assert (user_msg.role, user_msg.content) == ("user", "What is the capital of France?")
    assert answer.id == uuid.UUID(start["message"]["id"])
    assert (answer.status, answer.content, answer.output_tokens) == ("complete", "The capital of France is Paris.", 7)
    assert answer.model_name == "Fake Model" and answer.ttft_ms is not None
    # The provider got the whole history and Parley's key, and was asked for usage.
    body = fake.requests[-1].body
    assert body["messages"][-1] == {"role": "user", "content": "What is the capital of France?"}
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert fake.requests[-1].headers["authorization"] == "Bearer sk-test-key-0000"


async def test_a_follow_up_sends_the_earlier_turns(alice: Any, fake_model: ChatModel, fake: FakeProvider, connect: Any) -> None:
    sock = await connect(alice)
    fake.enqueue(Script(tokens=["Paris."]))
    await sock.send(send_frame(fake_model, "Capital of France?"))
    first = await sock.recv_until("end")
    conversation = first[0]["conversation"]["id"]
    fake.enqueue(Script(tokens=["Rome."]))
    await sock.send(send_frame(fake_model, "And Italy?", conversation=conversation))
    await sock.recv_until("end")
    assert [m["content"] for m in fake.requests[-1].body["messages"]] == ["Capital of France?", "Paris.", "And Italy?"]


async def test_stop_cancels_the_upstream_request_and_keeps_the_partial_answer(alice: Any, fake_model: ChatModel, fake: FakeProvider, connect: Any) -> None:
    fake.enqueue(Script(tokens=[f"word{i} " for i in range(400)], tokens_per_second=40))
    sock = await connect(alice)
    await sock.send(send_frame(fake_model))
    frames = await sock.recv_until("delta")
    conversation = frames[0]["conversation"]["id"]
    stopped_at = time.monotonic()
    await sock.send({"type": "stop", "conversation": conversation})
    frames += await sock.recv_until("end")
    upstream = fake.requests[-1]
    assert await asyncio.to_thread(upstream.client_disconnected.wait, 1.0), "upstream was not closed within 1 s"
    assert time.monotonic() - stopped_at < 1.5

    end = frames[-1]
    assert (end["status"], end["reason"]) == ("incomplete", "stopped")
    shown = text_of(frames)
    assert shown.startswith("word0 ") and len(shown) < len("word0 ") * 400
    _, answer = await saved_messages(conversation)
    assert (answer.status, answer.reason, answer.content) == ("incomplete", "stopped", shown)


@pytest.mark.parametrize(
    ("script", "kind"),
    [
        (Script(status=401, error_body={"error": {"message": "Incorrect API key provided: sk-canary-999"}}), "auth"),
        (Script(status=429, headers={"Retry-After": "0"}, error_body={"error": {"message": "slow down"}}), "rate_limit"),
        (Script(status=500, error_body={"error": {"message": "boom"}}), "unavailable"),
    ],
    ids=["401", "429", "500"],
)
async def test_an_upstream_error_ends_in_a_clear_error_state_and_keeps_the_user_message(
    alice: Any, fake_model: ChatModel, fake: FakeProvider, connect: Any, script: Script, kind: str
) -> None:
    fake.script_for_model("fake-model", script)  # every retry fails the same way
    sock = await connect(alice)
    await sock.send(send_frame(fake_model, "Please answer"))
    frames = await sock.recv_until("end", timeout=30)
    end = frames[-1]
    assert end["status"] == "error" and end["error"]["kind"] == kind
    assert end["error"]["message"] and len(end["error"]["ref"]) >= 6
    assert "canary" not in json.dumps(frames)
    user_msg, answer = await saved_messages(frames[0]["conversation"]["id"])
    assert user_msg.content == "Please answer"
    assert (answer.status, answer.error_kind) == ("error", kind)


async def test_a_stream_dropped_mid_answer_keeps_the_text_as_incomplete(alice: Any, fake_model: ChatModel, fake: FakeProvider, connect: Any) -> None:
    fake.enqueue(Script(tokens=["Half", " an", " answer", " and", " more"], drop_after=3))
    sock = await connect(alice)
    await sock.send(send_frame(fake_model))
    frames = await sock.recv_until("end")
    end = frames[-1]
    assert (end["status"], end["reason"]) == ("incomplete", "error")
    assert text_of(frames) == "Half an answer"
    _, answer = await saved_messages(frames[0]["conversation"]["id"])
    assert (answer.status, answer.content) == ("incomplete", "Half an answer")


async def test_a_duplicate_send_creates_one_message(alice: Any, fake_model: ChatModel, fake: FakeProvider, connect: Any) -> None:
    fake.set_default(Script(tokens=["Once."]))
    sock = await connect(alice)
    frame = send_frame(fake_model, "Only once please")
    await sock.send(frame)
    first = await sock.recv_until("end")
    await sock.send(frame)  # e.g. resent after a reconnect
    again = await sock.recv_until("end")
    assert again[0]["type"] == "ack" and again[0]["message"]["id"] == first[0]["message"]["id"]
    assert text_of(again) == "" and again[1]["message"]["content"] == "Once."
    messages = await saved_messages(first[0]["conversation"]["id"])
    assert [m.role for m in messages] == ["user", "assistant"]
    assert len(fake.requests) == 1
    assert await Conversation.objects.filter(owner=alice).acount() == 1


async def test_malformed_and_unknown_frames_get_an_error_and_the_socket_stays_usable(alice: Any, connect: Any) -> None:
    sock = await connect(alice)
    await sock.c.send_to(text_data="{not json")
    assert (await sock.recv())["code"] == "bad_frame"
    await sock.send({"type": "dance"})
    assert (await sock.recv())["code"] == "unknown_type"
    await sock.send({"type": "send", "client_id": "nope", "model": "x", "content": "hi"})
    assert (await sock.recv())["code"] == "bad_frame"
    await sock.send({"type": "send", "client_id": str(uuid.uuid4()), "model": "x", "content": "   "})
    assert (await sock.recv())["message"] == "The message is empty."
    await sock.send({"type": "ping"})
    assert (await sock.recv())["type"] == "pong"


async def test_a_model_the_user_may_not_use_is_refused_before_any_upstream_call(alice: Any, fake_model: ChatModel, fake: FakeProvider, connect: Any) -> None:
    fake_model.enabled = False
    await fake_model.asave()
    sock = await connect(alice)
    frame = send_frame(fake_model)
    await sock.send(frame)
    reply = await sock.recv()
    assert (reply["type"], reply["code"], reply["client_id"]) == ("error", "model_unavailable", frame["client_id"])
    assert fake.requests == []
    assert await Message.objects.acount() == 0


async def test_a_second_send_while_answering_is_told_the_conversation_is_busy(alice: Any, fake_model: ChatModel, fake: FakeProvider, connect: Any) -> None:
    fake.enqueue(Script(tokens=["slow "] * 100, tokens_per_second=20))
    sock = await connect(alice)
    await sock.send(send_frame(fake_model))
    frames = await sock.recv_until("delta")
    conversation = frames[0]["conversation"]["id"]
    await sock.send(send_frame(fake_model, "another", conversation=conversation))
    reply = await sock.recv_until("error")
    assert reply[-1]["code"] == "busy"
    await sock.send({"type": "stop", "conversation": conversation})
    await sock.recv_until("end")
    assert len(await saved_messages(conversation)) == 2


async def test_bob_cannot_send_to_stop_or_resume_alices_conversation(alice: Any, bob: Any, fake_model: ChatModel, fake: FakeProvider, connect: Any) -> None:
    fake.enqueue(Script(tokens=["secret "] * 100, tokens_per_second=20))
    alice_sock = await connect(alice)
    await alice_sock.send(send_frame(fake_model, "Alice's private question"))
    frames = await alice_sock.recv_until("delta")
    conversation, answer_id = frames[0]["conversation"]["id"], frames[1]["message"]["id"]

    bob_sock = await connect(bob)
    await bob_sock.send(send_frame(fake_model, "let me in", conversation=conversation))
    assert (await bob_sock.recv())["code"] == "not_found"
    await bob_sock.send({"type": "stop", "conversation": conversation})
    assert (await bob_sock.recv())["code"] == "not_found"
    await bob_sock.send({"type": "resume", "message": answer_id, "after_seq": 0})
    assert (await bob_sock.recv())["code"] == "not_found"
    # Bob's socket never saw a byte of Alice's answer.
    await bob_sock.send({"type": "ping"})
    assert (await bob_sock.recv())["type"] == "pong"

    # Alice's answer was not stopped by Bob.
    await asyncio.sleep(0.3)
    assert (await Message.objects.aget(id=answer_id)).status == "streaming"
    await alice_sock.send({"type": "stop", "conversation": conversation})
    end = (await alice_sock.recv_until("end"))[-1]
    assert end["reason"] == "stopped"
    assert len(await saved_messages(conversation)) == 2


async def test_fast_models_are_coalesced_into_few_frames(alice: Any, fake_model: ChatModel, fake: FakeProvider, connect: Any) -> None:
    tokens = [f"t{i} " for i in range(2000)]
    # A short think before the first token lets the save commit first; tokens that beat the
    # save are announced together with it (an ack means saved).
    fake.enqueue(Script(tokens=tokens, first_token_delay=0.3))
    sock = await connect(alice)
    await sock.send(send_frame(fake_model))
    frames = await sock.recv_until("end")
    deltas = [f for f in frames if f["type"] == "delta"]
    assert text_of(frames) == "".join(tokens)
    assert len(deltas) < 200, f"{len(deltas)} frames for 2,000 tokens"
    assert deltas[0]["text"] == "t0 ", "the first token must go out on its own, at once"


async def test_closing_the_socket_does_not_stop_the_answer(alice: Any, fake_model: ChatModel, fake: FakeProvider, connect: Any) -> None:
    fake.enqueue(Script(tokens=["still ", "here ", "after ", "you ", "left."], tokens_per_second=20))
    sock = await connect(alice)
    await sock.send(send_frame(fake_model))
    frames = await sock.recv_until("delta")
    await sock.close()
    answer_id = frames[1]["message"]["id"]
    for _ in range(50):
        answer = await Message.objects.aget(id=answer_id)
        if answer.status != "streaming":
            break
        await asyncio.sleep(0.1)
    assert (answer.status, answer.content) == ("complete", "still here after you left.")


async def test_a_reconnected_socket_resumes_without_missing_or_repeating_text(alice: Any, fake_model: ChatModel, fake: FakeProvider, connect: Any) -> None:
    tokens = [f"w{i} " for i in range(30)]
    fake.enqueue(Script(tokens=tokens, tokens_per_second=30))
    first = await connect(alice)
    await first.send(send_frame(fake_model))
    frames = await first.recv_until("delta")
    frames.append(await first.recv())
    seen = text_of(frames)
    last_seq = max(f["seq"] for f in frames if f["type"] == "delta")
    answer_id = frames[1]["message"]["id"]
    await first.close()

    await asyncio.sleep(0.2)  # frames go out while nobody listens
    second = await connect(alice)
    await second.send({"type": "resume", "message": answer_id, "after_seq": last_seq})
    rest = await second.recv_until("end")
    # Apply frames as a client does: a resume reply replaces, later deltas append in seq order.
    text, seq = seen, last_seq
    for frame in rest:
        if frame["type"] != "delta":
            continue
        if frame.get("replace"):
            assert frame["text"].startswith(seen) and frame["seq"] > last_seq
            text, seq = frame["text"], frame["seq"]
        elif frame["seq"] == seq + 1:
            text, seq = text + frame["text"], frame["seq"]
    assert text == "".join(tokens)
    assert any(f.get("replace") for f in rest)


async def test_a_ping_is_answered_while_the_database_thread_is_busy(alice: Any, connect: Any) -> None:
    # Frames that need no query (ping, and Stop's cancel) must not queue behind other
    # users' saves on the one database thread.
    sock = await connect(alice)
    busy = asyncio.create_task(database_sync_to_async(time.sleep)(2.0))
    await asyncio.sleep(0.1)
    started = time.monotonic()
    await sock.send({"type": "ping"})
    assert (await sock.recv(timeout=1.5))["type"] == "pong"
    assert time.monotonic() - started < 1.0
    assert not busy.done()
    await busy
