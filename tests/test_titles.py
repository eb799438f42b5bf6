"""Generated titles, against the fake provider over real HTTP."""

from __future__ import annotations

import time
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import override_settings

from chat import titles
from chat.generation import hub
from chat.models import ChatModel, Conversation, Message, TitleSource
from tests.fakeprovider import FakeProvider, Script

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("_close_provider_client")]


@sync_to_async
def answered(
    owner: Any,
    model: ChatModel,
    question: str = "How do I boil an egg?",
    answer: str = "Nine minutes.",
    status: str = "complete",
) -> Conversation:
    conversation = Conversation.objects.create(owner=owner, title=question[:60], model=model)
    user = Message.objects.create(conversation=conversation, role="user", content=question)
    Message.objects.create(conversation=conversation, role="assistant", content=answer, parent=user, status=status)
    return conversation


@sync_to_async
def reload(conversation: Conversation) -> Conversation:
    return Conversation.objects.get(id=conversation.id)


@pytest.fixture
def frames(alice: Any) -> Any:
    got: list[str] = []
    hub.subscribe(alice.id, got.append)
    yield got
    hub.unsubscribe(alice.id, got.append)


async def test_after_the_first_answer_the_model_writes_a_title_that_reaches_open_tabs(
    alice: Any, fake_model: ChatModel, fake: FakeProvider, frames: list[str]
) -> None:
    fake.enqueue(Script(tokens=['"Boiling', " eggs", ' perfectly."']))
    conversation = await answered(alice, fake_model)
    assert await titles.maybe_title(conversation.id, alice.id) == "Boiling eggs perfectly"
    saved = await reload(conversation)
    assert (saved.title, saved.title_source) == ("Boiling eggs perfectly", TitleSource.GENERATED)
    assert frames == [f'{{"type":"title","conversation":"{conversation.id}","title":"Boiling eggs perfectly"}}']
    body = fake.requests[-1].body
    assert body["model"] == "fake-model" and body["max_tokens"] == 24
    assert "How do I boil an egg?" in body["messages"][-1]["content"]
    # Only once: later answers do not retitle.
    assert await titles.maybe_title(conversation.id, alice.id) is None and len(fake.requests) == 1


async def test_an_admin_chosen_title_model_writes_every_title(
    alice: Any, fake_model: ChatModel, fake: FakeProvider, settings: Any
) -> None:
    cheap = await sync_to_async(ChatModel.objects.create)(provider=fake_model.provider, model_id="tiny-titler")
    settings.PARLEY_TITLE_MODEL = str(cheap.id)
    fake.enqueue(Script(tokens=["Eggs"]))
    conversation = await answered(alice, fake_model)
    assert await titles.maybe_title(conversation.id, alice.id) == "Eggs"
    assert fake.requests[-1].body["model"] == "tiny-titler"


async def test_a_title_the_user_typed_is_never_replaced(alice: Any, fake_model: ChatModel, fake: FakeProvider) -> None:
    conversation = await answered(alice, fake_model)
    await sync_to_async(Conversation.objects.filter(id=conversation.id).update)(
        title="Mine", title_source=TitleSource.USER
    )
    assert await titles.maybe_title(conversation.id, alice.id) is None
    assert fake.requests == [] and (await reload(conversation)).title == "Mine"


async def test_a_rename_during_generation_wins(
    alice: Any, fake_model: ChatModel, fake: FakeProvider, settings: Any
) -> None:
    settings.PARLEY_AUTO_TITLES = True
    fake.enqueue(Script(tokens=["Generated"], first_token_delay=0.5))
    conversation = await answered(alice, fake_model)
    task = titles.schedule(conversation.id, alice.id)
    assert task is not None
    await sync_to_async(fake.wait_for_requests, thread_sensitive=False)(1)  # the DB thread is the task's
    from chat.conversations.writes import Changes, do_change_conversation

    await sync_to_async(do_change_conversation)(alice, conversation.id, Changes(title="Typed by me"))
    assert await task is None
    assert (await reload(conversation)).title == "Typed by me"


async def test_a_failing_provider_leaves_the_first_message_title(
    alice: Any, fake_model: ChatModel, fake: FakeProvider, frames: list[str]
) -> None:
    fake.enqueue(Script(status=400, error_body={"error": {"message": "nope"}}))
    conversation = await answered(alice, fake_model)
    assert await titles.maybe_title(conversation.id, alice.id) is None
    saved = await reload(conversation)
    assert (saved.title, saved.title_source) == ("How do I boil an egg?", TitleSource.FALLBACK)
    assert frames == []


async def test_a_slow_title_model_times_out_quickly(
    alice: Any, fake_model: ChatModel, fake: FakeProvider, settings: Any
) -> None:
    settings.PARLEY_TITLE_TIMEOUT = 0.3
    fake.enqueue(Script(tokens=["Late"], first_token_delay=5))
    conversation = await answered(alice, fake_model)
    started = time.monotonic()
    assert await titles.maybe_title(conversation.id, alice.id) is None
    assert time.monotonic() - started < 2
    assert (await reload(conversation)).title_source == TitleSource.FALLBACK


async def test_nothing_is_asked_before_a_complete_answer_or_for_someone_else(
    alice: Any, bob: Any, fake_model: ChatModel, fake: FakeProvider
) -> None:
    failed = await answered(alice, fake_model, answer="", status="error")
    assert await titles.maybe_title(failed.id, alice.id) is None
    assert (await reload(failed)).title_source == TitleSource.FIRST_MESSAGE  # the next answer may title it
    theirs = await answered(alice, fake_model)
    assert await titles.maybe_title(theirs.id, bob.id) is None
    assert fake.requests == []


@pytest.mark.parametrize(
    "raw, title",
    [
        ("Title: Boiling Eggs.", "Boiling Eggs"),
        ("**“Trip to Lisbon”**\nmore text", "Trip to Lisbon"),
        ("  \n  a   b  ", "a b"),
        ("word " * 30, ("word " * 12).strip()),
        ("", ""),
    ],
)
def test_titles_are_cleaned_to_one_short_line(raw: str, title: str) -> None:
    assert titles.clean_title(raw) == title


async def test_admins_can_turn_generated_titles_off(alice: Any, settings: Any) -> None:
    settings.PARLEY_AUTO_TITLES = False
    assert titles.schedule("00000000-0000-0000-0000-000000000000", alice.id) is None


@override_settings(PARLEY_AUTO_TITLES=True)
async def test_after_the_first_answer_every_tab_gets_the_generated_title(
    alice: Any, fake_model: ChatModel, fake: FakeProvider, connect: Any
) -> None:
    from tests.test_chat_socket import send_frame

    fake.enqueue(Script(tokens=["Paris is the capital."]))
    fake.enqueue(Script(tokens=["French capital question"]))  # the title request
    sock = await connect(alice)
    await sock.send(send_frame(fake_model, "What is the capital of France?"))
    title = (await sock.recv_until("title"))[-1]
    assert title["title"] == "French capital question"
    conversation = await Conversation.objects.aget(id=title["conversation"])
    assert (conversation.title, conversation.title_source) == ("French capital question", "generated")
