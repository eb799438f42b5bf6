"""Sending files over the real socket: what each family is sent, and every refusal before it."""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command
from django.utils import timezone

from chat.attachments import writes
from chat.conversations import writes as conversation_writes
from chat.models import Attachment, ChatModel, Conversation, Message, Provider
from tests.fakeprovider import FakeProvider, Script, wire
from tests.files import pdf, png
from tests.test_chat_socket import send_frame, text_of

pytestmark = pytest.mark.django_db(transaction=True)


async def ask(sock: Any, frame: dict[str, Any]) -> list[dict[str, Any]]:
    await sock.send(frame)
    return await sock.recv_until("end")


async def refused(sock: Any, frame: dict[str, Any]) -> dict[str, Any]:
    await sock.send(frame)
    got = await sock.recv_until("error")
    assert got[-1]["client_id"] == frame["client_id"]
    return got[-1]


def upload(user: User, name: str, data: bytes) -> Any:
    return database_sync_to_async(writes.do_upload)(user, name, data)


def model_for(fake: FakeProvider, family: str, vision: bool | None = True, **fields: Any) -> ChatModel:
    provider = Provider.objects.create(
        name=f"fake-{family}", family=family, base_url=fake.url + wire.FAMILIES[family].base_suffix
    )
    return ChatModel.objects.create(
        provider=provider, model_id="fake-model", display_name=f"Fake {family}", vision=vision, **fields
    )


def strings(body: Any) -> str:
    """Every string in a request body, one per line: where a model's words are, in any family."""
    if isinstance(body, str):
        return body
    if isinstance(body, dict):
        body = list(body.values())
    return "\n".join(strings(v) for v in body) if isinstance(body, list) else ""


def stored_files() -> list[str]:
    root = settings.PARLEY_ATTACHMENTS_DIR
    return [os.path.join(d, f) for d, _, names in os.walk(root) for f in names]


@pytest.fixture(autouse=True)
def _empty_store(transactional_db: None) -> None:
    for path in stored_files():
        os.remove(path)


@pytest.mark.parametrize("family", list(wire.FAMILIES))
async def test_an_image_and_a_pdf_reach_each_family_in_its_own_shape(
    family: str, alice: User, fake: FakeProvider, connect: Any
) -> None:
    model = await database_sync_to_async(model_for)(fake, family)
    image = await upload(alice, "chart.png", png())
    report = await upload(alice, "report.pdf", pdf("Revenue rose 12%"))
    sock = await connect(alice)
    fake.set_default(Script(echo=True))
    frames = await ask(sock, send_frame(model, "What do these say?", attachments=[str(image.id), str(report.id)]))
    assert text_of(frames) == "What do these say?"
    assert [a["name"] for a in frames[0]["message"]["attachments"]] == ["chart.png", "report.pdf"]
    body = fake.requests[-1].body
    native_pdf = family in ("anthropic", "gemini")
    assert wire.attachments_seen(family, body) == (
        ["image/png", "application/pdf"] if native_pdf else ["image" if family == "ollama" else "image/png"]
    )
    if not native_pdf:
        assert '<document name="report.pdf">\nRevenue rose 12%\n</document>' in strings(body)
    saved = await Message.objects.aget(id=frames[0]["message"]["id"])
    assert [a["id"] for a in saved.attachments] == [str(image.id), str(report.id)]
    conversation = frames[0]["conversation"]["id"]
    assert await Attachment.objects.filter(conversation_id=conversation).acount() == 2


async def test_regenerate_continue_and_a_later_turn_keep_the_files_of_the_branch(
    alice: User, fake: FakeProvider, connect: Any
) -> None:
    model = await database_sync_to_async(model_for)(fake, "openai")
    image = await upload(alice, "chart.png", png())
    sock = await connect(alice)
    first = await ask(sock, send_frame(model, "Describe", attachments=[str(image.id)]))
    conversation, answer = first[0]["conversation"]["id"], first[1]["message"]["id"]
    await ask(sock, {"type": "regenerate", "client_id": str(uuid.uuid4()), "message": answer})
    assert wire.attachments_seen("openai", fake.requests[-1].body) == ["image/png"]
    fake.enqueue(Script(tokens=["cut"], finish_reason="length"))
    cut = await ask(sock, send_frame(model, "More", conversation=conversation))
    assert wire.attachments_seen("openai", fake.requests[-1].body) == ["image/png"]
    await ask(sock, {"type": "continue", "client_id": str(uuid.uuid4()), "message": cut[1]["message"]["id"]})
    assert wire.attachments_seen("openai", fake.requests[-1].body) == ["image/png"]


async def test_an_edit_sends_the_edited_messages_files_again(alice: User, fake: FakeProvider, connect: Any) -> None:
    model = await database_sync_to_async(model_for)(fake, "openai")
    image = await upload(alice, "chart.png", png())
    sock = await connect(alice)
    first = await ask(sock, send_frame(model, "Describe", attachments=[str(image.id)]))
    conversation = first[0]["conversation"]["id"]
    edit = send_frame(model, "Describe briefly", conversation=conversation, parent=None, attachments=[str(image.id)])
    edited = await ask(sock, edit)
    assert edited[0]["message"]["attachments"][0]["id"] == str(image.id)
    assert wire.attachments_seen("openai", fake.requests[-1].body) == ["image/png"]


async def test_a_file_sent_in_one_conversation_cannot_be_sent_in_another(
    alice: User, fake: FakeProvider, connect: Any
) -> None:
    model = await database_sync_to_async(model_for)(fake, "openai")
    image = await upload(alice, "chart.png", png())
    sock = await connect(alice)
    await ask(sock, send_frame(model, "Describe", attachments=[str(image.id)]))
    error = await refused(sock, send_frame(model, "Again", attachments=[str(image.id)]))
    assert error["code"] == "not_found"


async def test_someone_elses_file_is_not_found_and_nothing_is_sent(
    alice: User, bob: User, fake: FakeProvider, connect: Any
) -> None:
    model = await database_sync_to_async(model_for)(fake, "openai")
    bobs = await upload(bob, "secret.png", png())
    sock = await connect(alice)
    error = await refused(sock, send_frame(model, "Describe", attachments=[str(bobs.id)]))
    assert error["code"] == "not_found" and "secret.png" not in error["message"]
    assert fake.requests == [] and await Message.objects.acount() == 0


async def test_a_model_that_cannot_see_says_so_before_anything_is_sent(
    alice: User, fake: FakeProvider, connect: Any
) -> None:
    model = await database_sync_to_async(model_for)(fake, "openai", vision=False)
    image = await upload(alice, "chart.png", png())
    sock = await connect(alice)
    error = await refused(sock, send_frame(model, "Describe", attachments=[str(image.id)]))
    assert error["code"] == "attachment_unsupported"
    assert (
        error["message"] == "Fake openai cannot take images (chart.png). Pick a model that can, or remove the images."
    )
    assert fake.requests == [] and await Message.objects.acount() == 0
    assert (await Attachment.objects.aget(id=image.id)).conversation_id is None  # still in the composer


async def test_earlier_images_are_named_in_words_to_a_model_that_cannot_see(
    alice: User, fake: FakeProvider, connect: Any
) -> None:
    seeing = await database_sync_to_async(model_for)(fake, "openai")
    blind = await database_sync_to_async(ChatModel.objects.create)(
        provider=seeing.provider, model_id="blind", display_name="Blind", vision=False
    )
    image = await upload(alice, "chart.png", png())
    sock = await connect(alice)
    first = await ask(sock, send_frame(seeing, "Describe", attachments=[str(image.id)]))
    await ask(sock, send_frame(blind, "And now?", conversation=first[0]["conversation"]["id"]))
    body = fake.requests[-1].body
    assert wire.attachments_seen("openai", body) == []
    assert "[An image, chart.png, was attached here; this model cannot see images.]" in strings(body)


async def test_a_document_too_long_for_the_context_window_is_refused_with_the_numbers(
    alice: User, fake: FakeProvider, connect: Any
) -> None:
    model = await database_sync_to_async(model_for)(fake, "openai", context_window=1000)
    long = await upload(alice, "book.txt", ("All work and no play. " * 400).encode())
    sock = await connect(alice)
    error = await refused(sock, send_frame(model, "Summarise", attachments=[str(long.id)]))
    assert error["code"] == "context_length"
    assert error["message"].startswith(
        "book.txt is about 2,210 tokens. With the rest of this conversation the model would have to read about 2,213 tokens,"
    )
    assert "reads at most 1,000 (its context window)" in error["message"]
    assert fake.requests == [] and await Message.objects.acount() == 0


async def test_without_a_context_window_the_documented_default_applies(
    alice: User, fake: FakeProvider, connect: Any, settings: Any
) -> None:
    settings.PARLEY_DEFAULT_CONTEXT_TOKENS = 500
    model = await database_sync_to_async(model_for)(fake, "openai")
    long = await upload(alice, "book.txt", ("word " * 1000).encode())
    sock = await connect(alice)
    error = await refused(sock, send_frame(model, "Summarise", attachments=[str(long.id)]))
    assert "reads at most 500 (the default context window for models without one)" in error["message"]


async def test_a_message_may_be_files_alone(alice: User, fake: FakeProvider, connect: Any) -> None:
    model = await database_sync_to_async(model_for)(fake, "openai")
    notes = await upload(alice, "notes.md", b"# Todo")
    sock = await connect(alice)
    frames = await ask(sock, send_frame(model, "", attachments=[str(notes.id)]))
    assert frames[0]["conversation"]["title"] == "notes.md"
    assert fake.requests[-1].body["messages"][-1]["content"] == [
        {"type": "text", "text": '<document name="notes.md">\n# Todo\n</document>'}
    ]


@pytest.mark.parametrize(
    ("attachments", "code"),
    [
        ("not-a-list", "bad_frame"),
        (["nope"], "bad_frame"),
        ([str(uuid.UUID(int=1))] * 2, "bad_frame"),
        ([str(uuid.uuid4()) for _ in range(11)], "too_large"),
    ],
)
async def test_bad_attachment_lists_are_refused(
    alice: User, fake_model: ChatModel, connect: Any, attachments: Any, code: str
) -> None:
    sock = await connect(alice)
    assert (await refused(sock, send_frame(fake_model, "x", attachments=attachments)))["code"] == code


async def test_purging_a_deleted_conversation_deletes_its_files(
    alice: User, fake: FakeProvider, connect: Any, settings: Any
) -> None:
    model = await database_sync_to_async(model_for)(fake, "openai")
    image = await upload(alice, "chart.png", png())
    sock = await connect(alice)
    first = await ask(sock, send_frame(model, "Describe", attachments=[str(image.id)]))
    doomed = first[0]["conversation"]["id"]
    other = await ask(sock, send_frame(model, "Another chat"))
    assert len(stored_files()) == 1
    await database_sync_to_async(conversation_writes.do_delete_conversation)(alice, doomed)
    assert len(stored_files()) == 1  # restorable for the undo window: the file stays
    await Conversation.objects.filter(id=doomed).aupdate(deleted_at=timezone.now() - conversation_writes.undo_window())
    await database_sync_to_async(conversation_writes.do_delete_conversation)(alice, other[0]["conversation"]["id"])
    assert stored_files() == [] and not await Attachment.objects.filter(id=image.id).aexists()


def test_the_sweep_deletes_unsent_uploads_and_files_without_rows(alice: User) -> None:
    kept = writes.do_upload(alice, "fresh.png", png())
    stale = writes.do_upload(alice, "stale.png", png())
    Attachment.objects.filter(id=stale.id).update(created=timezone.now() - writes.UNSENT_GRACE * 2)
    stray = os.path.join(settings.PARLEY_ATTACHMENTS_DIR, str(alice.pk), "0" * 32)
    with open(stray, "wb") as f:
        f.write(b"left by a crash")
    os.utime(stray, (0, 0))
    call_command("attachments", "sweep")
    assert list(Attachment.objects.values_list("id", flat=True)) == [kept.id]
    assert stored_files() == [os.path.join(settings.PARLEY_ATTACHMENTS_DIR, kept.file.name)]
