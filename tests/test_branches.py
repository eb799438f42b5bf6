"""Regenerate, edit-and-resend and continue: answers branch instead of being overwritten."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from chat.models import ChatModel, Message
from tests.fakeprovider import FakeProvider, Script
from tests.test_chat_socket import send_frame, text_of

pytestmark = pytest.mark.django_db(transaction=True)


async def ask(sock: Any, frame: dict[str, Any]) -> list[dict[str, Any]]:
    await sock.send(frame)
    return await sock.recv_until("end")


async def test_regenerate_keeps_the_earlier_answer_as_a_sibling(
    alice: Any, fake_model: ChatModel, fake: FakeProvider, connect: Any
) -> None:
    sock = await connect(alice)
    fake.enqueue(Script(tokens=["First."]))
    first = await ask(sock, send_frame(fake_model, "Say something"))
    conversation, answer = first[0]["conversation"]["id"], first[1]["message"]["id"]
    fake.enqueue(Script(tokens=["Second."]))
    again = await ask(sock, {"type": "regenerate", "client_id": str(uuid.uuid4()), "message": answer})
    assert text_of(again) == "Second."
    answers = [
        m async for m in Message.objects.filter(conversation_id=conversation, role="assistant").order_by("created")
    ]
    assert [a.content for a in answers] == ["First.", "Second."]
    assert answers[0].parent_id == answers[1].parent_id  # siblings: "1 / 2", "2 / 2"
    # The model saw the question once, not the earlier answer.
    assert [m["content"] for m in fake.requests[-1].body["messages"]] == ["Say something"]


async def test_editing_a_message_branches_and_the_model_sees_only_the_new_branch(
    alice: Any, fake_model: ChatModel, fake: FakeProvider, connect: Any
) -> None:
    sock = await connect(alice)
    fake.enqueue(Script(tokens=["Paris."]))
    first = await ask(sock, send_frame(fake_model, "Capital of France?"))
    conversation = first[0]["conversation"]["id"]
    fake.enqueue(Script(tokens=["Rome."]))
    second = await ask(sock, send_frame(fake_model, "And Italy?", conversation=conversation))
    edited_parent = second[0]["message"]["parent"]  # the first answer
    fake.enqueue(Script(tokens=["Madrid."]))
    await ask(sock, send_frame(fake_model, "And Spain?", conversation=conversation, parent=edited_parent))
    assert [m["content"] for m in fake.requests[-1].body["messages"]] == ["Capital of France?", "Paris.", "And Spain?"]
    # The old branch is still there.
    assert await Message.objects.filter(conversation_id=conversation, content="Rome.").aexists()
    # Editing the very first message starts a new root.
    fake.enqueue(Script(tokens=["Berlin."]))
    await ask(sock, send_frame(fake_model, "Capital of Germany?", conversation=conversation, parent=None))
    assert [m["content"] for m in fake.requests[-1].body["messages"]] == ["Capital of Germany?"]


async def test_continue_grows_an_answer_cut_at_the_length_limit(
    alice: Any, fake_model: ChatModel, fake: FakeProvider, connect: Any
) -> None:
    sock = await connect(alice)
    fake.enqueue(Script(tokens=["Once upon", " a time"], finish_reason="length"))
    first = await ask(sock, send_frame(fake_model, "Tell a story"))
    assert first[-1]["reason"] == "length"
    answer = first[1]["message"]["id"]
    fake.enqueue(Script(tokens=[", the end."]))
    more = await ask(sock, {"type": "continue", "client_id": str(uuid.uuid4()), "message": answer})
    start = next(f for f in more if f["type"] == "start")
    assert start["message"]["content"] == "Once upon a time" and start["message"]["id"] == answer
    assert text_of(more) == ", the end."
    assert more[-1]["status"] == "complete" and more[-1]["seq"] > first[-1]["seq"]
    saved = await Message.objects.aget(id=answer)
    assert (saved.content, saved.status, saved.reason) == ("Once upon a time, the end.", "complete", "stop")
    sent = fake.requests[-1].body["messages"]
    assert sent[-2] == {"role": "assistant", "content": "Once upon a time"} and sent[-1]["role"] == "user"


async def test_a_finished_answer_cannot_be_continued_and_says_why(
    alice: Any, fake_model: ChatModel, fake: FakeProvider, connect: Any
) -> None:
    sock = await connect(alice)
    fake.enqueue(Script(tokens=["Done."]))
    first = await ask(sock, send_frame(fake_model, "hi"))
    await sock.send({"type": "continue", "client_id": str(uuid.uuid4()), "message": first[1]["message"]["id"]})
    reply = await sock.recv()
    assert reply["code"] == "not_found" and "regenerate it instead" in reply["message"]
    assert len(fake.requests) == 1


async def test_bob_cannot_regenerate_or_continue_alices_answers(
    alice: Any, bob: Any, fake_model: ChatModel, fake: FakeProvider, connect: Any
) -> None:
    alice_sock = await connect(alice)
    fake.enqueue(Script(tokens=["Private."], finish_reason="length"))
    first = await ask(alice_sock, send_frame(fake_model, "secret"))
    answer = first[1]["message"]["id"]
    bob_sock = await connect(bob)
    for kind in ("regenerate", "continue"):
        await bob_sock.send({"type": kind, "client_id": str(uuid.uuid4()), "message": answer})
        reply = await bob_sock.recv()
        assert (reply["type"], reply["code"], reply["message"]) == ("error", "not_found", "No such message.")
    assert len(fake.requests) == 1


async def test_a_resent_regenerate_makes_one_answer(
    alice: Any, fake_model: ChatModel, fake: FakeProvider, connect: Any
) -> None:
    sock = await connect(alice)
    fake.set_default(Script(tokens=["Again."]))
    first = await ask(sock, send_frame(fake_model, "hi"))
    frame = {"type": "regenerate", "client_id": str(uuid.uuid4()), "message": first[1]["message"]["id"]}
    await ask(sock, frame)
    replayed = await ask(sock, frame)
    assert replayed[0]["type"] == "ack" and replayed[0]["client_id"] == frame["client_id"]
    assert await Message.objects.filter(role="assistant").acount() == 2
    assert len(fake.requests) == 2
