"""The sidebar's endpoints over Django's test client: list, search, rename, pin, settings,
delete and restore, export and import. Bob gets a 404 for every one of Alice's objects."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.test.utils import override_settings
from django.utils import timezone

from chat.models import ChatModel, Conversation, Message, TitleSource

pytestmark = pytest.mark.django_db(transaction=True)


def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def post(client: Client, url: str, body: Any = None) -> Any:
    return client.post(url, json.dumps(body if body is not None else {}), content_type="application/json")


def chat_with(owner: Any, title: str, *lines: str, **fields: Any) -> Conversation:
    conversation = Conversation.objects.create(owner=owner, title=title, **fields)
    for i, line in enumerate(lines):
        Message.objects.create(conversation=conversation, role="user" if i % 2 == 0 else "assistant", content=line)
    return conversation


# --- Listing, pinning, searching -----------------------------------------------------------


def test_pinned_conversations_come_apart_on_the_first_page_only(alice: Any) -> None:
    chat_with(alice, "old pinned", pinned=True)
    chat_with(alice, "plain")
    client = signed_in(alice)
    first = client.get("/api/conversations/").json()
    assert [c["title"] for c in first["pinned"]] == ["old pinned"]
    assert [c["title"] for c in first["conversations"]] == ["plain"]
    assert first["conversations"][0]["pinned"] is False


def test_search_finds_titles_and_message_text_of_the_users_own_conversations(alice: Any, bob: Any) -> None:
    chat_with(alice, "Trip to Lisbon", "where to eat")
    chat_with(alice, "Cooking", "How long do I boil an EGG?", "Nine minutes.")
    chat_with(alice, "Unrelated", "nothing here")
    chat_with(bob, "bob's egg", "egg egg")
    client = signed_in(alice)
    assert [c["title"] for c in client.get("/api/conversations/", {"q": "egg"}).json()["conversations"]] == ["Cooking"]
    assert [c["title"] for c in client.get("/api/conversations/", {"q": "lisbon"}).json()["conversations"]] == [
        "Trip to Lisbon"
    ]
    assert client.get("/api/conversations/", {"q": "minutes"}).json()["conversations"][0]["title"] == "Cooking"
    assert client.get("/api/conversations/", {"q": "zebra"}).json() == {"conversations": [], "next": None}


def test_search_results_page_with_the_same_cursor(alice: Any) -> None:
    for i in range(60):
        chat_with(alice, f"needle {i}")
    chat_with(alice, "haystack")
    client = signed_in(alice)
    first = client.get("/api/conversations/", {"q": "needle"}).json()
    second = client.get("/api/conversations/", {"q": "needle", "before": first["next"]}).json()
    titles = [c["title"] for c in first["conversations"] + second["conversations"]]
    assert len(titles) == 60 == len(set(titles)) and second["next"] is None


def test_a_bad_cursor_is_a_clear_400(alice: Any) -> None:
    response = signed_in(alice).get("/api/conversations/", {"before": "yesterday~nope"})
    assert response.status_code == 400 and "before" in response.json()["error"]


def test_five_thousand_conversations_page_in_a_bounded_number_of_queries(
    alice: Any, django_assert_max_num_queries: Any
) -> None:
    now = timezone.now()
    rows = [Conversation(owner=alice, title=f"c{i}") for i in range(5000)]
    Conversation.objects.bulk_create(rows)
    # Many share a timestamp (the worst case for a time cursor): spread half, leave ties in the rest.
    for i, row in enumerate(rows[:2500]):
        row.updated = now - timedelta(seconds=i)
    Conversation.objects.bulk_update(rows[:2500], ["updated"], batch_size=500)
    client = signed_in(alice)
    seen: list[str] = []
    cursor = None
    for _ in range(101):
        # Session + user + one page (+ pinned on the first): the same for page 1 and page 100.
        with django_assert_max_num_queries(4):
            page = client.get("/api/conversations/", {"before": cursor} if cursor else {}).json()
        seen += [c["id"] for c in page["conversations"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert len(seen) == 5000 == len(set(seen))
    with django_assert_max_num_queries(4):
        assert len(client.get("/api/conversations/", {"q": "c49"}).json()["conversations"]) == 50


def test_the_chat_page_stays_bounded_with_five_thousand_conversations(
    alice: Any, django_assert_max_num_queries: Any
) -> None:
    Conversation.objects.bulk_create([Conversation(owner=alice, title=f"c{i}") for i in range(5000)])
    client = signed_in(alice)
    with django_assert_max_num_queries(12):
        assert client.get("/chat/").status_code == 200


# --- Rename, pin, settings -------------------------------------------------------------------


def test_renaming_keeps_the_users_title_and_does_not_reorder_the_list(alice: Any) -> None:
    conversation = chat_with(alice, "first words")
    before = Conversation.objects.get(id=conversation.id).updated
    response = post(signed_in(alice), f"/api/conversations/{conversation.id}/edit/", {"title": "  My   plan "})
    assert response.status_code == 200 and response.json()["conversation"]["title"] == "My plan"
    saved = Conversation.objects.get(id=conversation.id)
    assert saved.title_source == TitleSource.USER and saved.updated == before


def test_pinning_moves_a_conversation_to_the_pinned_group(alice: Any) -> None:
    conversation = chat_with(alice, "keep me handy")
    client = signed_in(alice)
    assert post(client, f"/api/conversations/{conversation.id}/edit/", {"pinned": True}).json()["conversation"][
        "pinned"
    ]
    assert [c["title"] for c in client.get("/api/conversations/").json()["pinned"]] == ["keep me handy"]


def test_per_conversation_settings_are_saved_and_read_back(alice: Any, fake_model: ChatModel) -> None:
    conversation = chat_with(alice, "tuned")
    client = signed_in(alice)
    body = {"system_prompt": "Be terse.", "temperature": 0.3, "max_tokens": 256, "model": str(fake_model.id)}
    assert post(client, f"/api/conversations/{conversation.id}/edit/", body).status_code == 200
    settings = client.get(f"/api/conversations/{conversation.id}/").json()["settings"]
    assert settings == {
        "model": str(fake_model.id),
        "system_prompt": "Be terse.",
        "temperature": 0.3,
        "max_tokens": 256,
    }
    cleared = post(client, f"/api/conversations/{conversation.id}/edit/", {"temperature": None}).json()["settings"]
    assert cleared["temperature"] is None and cleared["max_tokens"] == 256


@pytest.mark.parametrize(
    "body, words",
    [
        ({"title": ""}, "title"),
        ({"title": 5}, "title"),
        ({"pinned": "yes"}, "pinned"),
        ({"temperature": 3}, "between 0 and 2"),
        ({"temperature": True}, "number"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": 1.5}, "number"),
        ({"system_prompt": "x" * 20_001}, "system_prompt"),
        ([1, 2], "JSON object"),
    ],
)
def test_bad_edits_are_refused_with_the_reason_and_change_nothing(alice: Any, body: Any, words: str) -> None:
    conversation = chat_with(alice, "unchanged", temperature=0.5)
    response = post(signed_in(alice), f"/api/conversations/{conversation.id}/edit/", body)
    assert response.status_code == 400 and words in response.json()["error"]
    saved = Conversation.objects.get(id=conversation.id)
    assert (saved.title, saved.temperature, saved.pinned) == ("unchanged", 0.5, False)


def test_a_body_that_is_not_json_is_a_400(alice: Any) -> None:
    conversation = chat_with(alice, "x")
    response = signed_in(alice).post(
        f"/api/conversations/{conversation.id}/edit/", "{nope", content_type="application/json"
    )
    assert response.status_code == 400


def test_a_model_the_user_may_not_use_is_refused(alice: Any, fake_model: ChatModel) -> None:
    fake_model.enabled = False
    fake_model.save()
    conversation = chat_with(alice, "x")
    response = post(signed_in(alice), f"/api/conversations/{conversation.id}/edit/", {"model": str(fake_model.id)})
    assert response.status_code == 404


def test_edits_need_post_and_a_signed_in_user(alice: Any) -> None:
    conversation = chat_with(alice, "x")
    assert signed_in(alice).get(f"/api/conversations/{conversation.id}/edit/").status_code == 405
    assert post(Client(), f"/api/conversations/{conversation.id}/edit/", {"title": "y"}).status_code == 302


# --- Delete and undo -------------------------------------------------------------------------


def test_a_deleted_conversation_disappears_and_can_be_restored(alice: Any) -> None:
    conversation = chat_with(alice, "oops", "hello")
    client = signed_in(alice)
    response = post(client, f"/api/conversations/{conversation.id}/delete/")
    assert response.status_code == 200 and response.json()["undo_until"]
    assert client.get("/api/conversations/").json()["conversations"] == []
    assert client.get(f"/api/conversations/{conversation.id}/").status_code == 404
    assert client.get(f"/chat/{conversation.id}/").status_code == 404
    assert client.get("/api/conversations/", {"q": "hello"}).json()["conversations"] == []

    restored = post(client, f"/api/conversations/{conversation.id}/restore/")
    assert restored.status_code == 200 and restored.json()["conversation"]["title"] == "oops"
    assert [c["title"] for c in client.get("/api/conversations/").json()["conversations"]] == ["oops"]


@override_settings(PARLEY_DELETE_UNDO_SECONDS=60)
def test_after_the_undo_window_a_deletion_is_final_and_purged_on_the_next_one(alice: Any) -> None:
    old = chat_with(alice, "old", "bye")
    Conversation.objects.filter(id=old.id).update(deleted_at=timezone.now() - timedelta(seconds=61))
    client = signed_in(alice)
    assert post(client, f"/api/conversations/{old.id}/restore/").status_code == 410
    post(client, f"/api/conversations/{chat_with(alice, 'another').id}/delete/")
    assert not Conversation.objects.filter(id=old.id).exists()
    assert not Message.objects.filter(conversation_id=old.id).exists()


def test_restoring_a_conversation_that_is_not_deleted_is_a_404(alice: Any) -> None:
    conversation = chat_with(alice, "alive")
    assert post(signed_in(alice), f"/api/conversations/{conversation.id}/restore/").status_code == 404


# --- Ownership -------------------------------------------------------------------------------


def test_bob_gets_a_404_for_everything_of_alices(alice: Any, bob: Any) -> None:
    conversation = chat_with(alice, "private", "my secret")
    bob_client = signed_in(bob)
    base = f"/api/conversations/{conversation.id}"
    assert post(bob_client, f"{base}/edit/", {"title": "mine now"}).status_code == 404
    assert post(bob_client, f"{base}/delete/").status_code == 404
    assert bob_client.get(f"{base}/export.md").status_code == 404
    assert bob_client.get(f"{base}/export.json").status_code == 404
    assert "my secret" not in bob_client.get("/api/conversations/", {"q": "secret"}).content.decode()
    assert "my secret" not in bob_client.get("/api/export/").content.decode()
    Conversation.objects.filter(id=conversation.id).update(deleted_at=timezone.now())
    assert post(bob_client, f"{base}/restore/").status_code == 404
    saved = Conversation.objects.get(id=conversation.id)
    assert saved.title == "private" and saved.deleted_at is not None


# --- Export and import ---------------------------------------------------------------------


def test_a_conversation_exports_as_markdown_and_json_and_imports_back(alice: Any) -> None:
    conversation = chat_with(
        alice, "Boiling eggs", "How long?", "**Nine** minutes.", system_prompt="Be brief.", temperature=0.4
    )
    Message.objects.filter(conversation=conversation, role="assistant").update(model_name="Fake Model")
    client = signed_in(alice)
    md = client.get(f"/api/conversations/{conversation.id}/export.md")
    assert md["Content-Disposition"] == 'attachment; filename="boiling-eggs.md"'
    text = md.content.decode()
    assert (
        text.startswith("# Boiling eggs")
        and "## You\n\nHow long?" in text
        and "## Fake Model\n\n**Nine** minutes." in text
    )

    exported = client.get(f"/api/conversations/{conversation.id}/export.json")
    doc = exported.json()
    assert doc["format"] == "parley.conversation" and doc["conversation"]["system_prompt"] == "Be brief."
    assert [m["content"] for m in doc["messages"]] == ["How long?", "**Nine** minutes."]

    response = client.post("/api/conversations/import/", exported.content, content_type="application/json")
    assert response.status_code == 201
    copy = Conversation.objects.get(id=response.json()["conversation"]["id"])
    assert copy.id != conversation.id and copy.owner == alice and copy.title == "Boiling eggs"
    assert (copy.system_prompt, copy.temperature) == ("Be brief.", 0.4)
    messages = list(copy.messages.order_by("created"))
    assert [(m.role, m.content, m.model_name) for m in messages] == [
        ("user", "How long?", ""),
        ("assistant", "**Nine** minutes.", "Fake Model"),
    ]


def test_import_keeps_branches_linked_by_new_ids(alice: Any) -> None:
    doc = {
        "format": "parley.conversation",
        "version": 1,
        "conversation": {"title": "Branches"},
        "messages": [
            {"id": "a", "role": "user", "content": "Hi"},
            {"id": "b", "parent": "a", "role": "assistant", "content": "One"},
            {"id": "c", "parent": "a", "role": "assistant", "content": "Two"},
        ],
    }
    response = post(signed_in(alice), "/api/conversations/import/", doc)
    assert response.status_code == 201
    first, one, two = Message.objects.filter(conversation_id=response.json()["conversation"]["id"]).order_by("created")
    assert one.parent_id == first.id == two.parent_id and str(first.id) != "a"


GOOD = {
    "format": "parley.conversation",
    "version": 1,
    "conversation": {"title": "t"},
    "messages": [{"role": "user", "content": "hi"}],
}


@pytest.mark.parametrize(
    "doc, words",
    [
        ({"format": "something else"}, "Not a Parley"),
        ({**GOOD, "version": 2}, "version"),
        ({**GOOD, "messages": []}, "non-empty"),
        ({**GOOD, "messages": [{"role": "wizard", "content": "hi"}]}, "messages[0]: `role`"),
        ({**GOOD, "messages": [{"role": "user", "content": 5}]}, "`content` must be a string"),
        ({**GOOD, "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "parent": "zz"}]}, "parent"),
        ({**GOOD, "messages": [{"role": "assistant", "content": "x", "status": "streaming"}]}, "status"),
        ({**GOOD, "conversation": {"title": "t", "temperature": 9}}, "temperature"),
        ({**GOOD, "conversation": []}, "`conversation`"),
    ],
)
def test_a_bad_import_is_a_clear_400_and_creates_nothing(alice: Any, doc: Any, words: str) -> None:
    response = post(signed_in(alice), "/api/conversations/import/", doc)
    assert response.status_code == 400 and words in response.json()["error"]
    assert not Conversation.objects.exists() and not Message.objects.exists()


def test_an_import_that_is_not_json_or_too_large_is_refused(alice: Any) -> None:
    client = signed_in(alice)
    response = client.post("/api/conversations/import/", b"\xff{", content_type="application/json")
    assert response.status_code == 400 and "not valid JSON" in response.json()["error"]
    with override_settings(PARLEY_IMPORT_MAX_BYTES=100):
        big = {**GOOD, "messages": [{"role": "user", "content": "x" * 200}]}
        response = post(client, "/api/conversations/import/", big)
    assert response.status_code == 400 and "larger than 100 bytes" in response.json()["error"]
    assert not Conversation.objects.exists()


def test_export_all_holds_every_live_conversation_and_the_preferences(alice: Any, bob: Any) -> None:
    chat_with(alice, "one", "a")
    chat_with(alice, "two", "b", "c")
    chat_with(alice, "gone", "d", deleted_at=timezone.now())
    chat_with(bob, "bob's", "e")
    client = signed_in(alice)
    client.post("/settings/", {"display_name": "Alice A.", "theme": "dark", "default_system_prompt": "Hi"})
    response = client.get("/api/export/")
    assert response["Content-Disposition"] == 'attachment; filename="parley-alice.json"'
    doc = response.json()
    assert doc["format"] == "parley.export" and doc["account"]["username"] == "alice"
    assert doc["preferences"]["display_name"] == "Alice A." and doc["preferences"]["theme"] == "dark"
    assert [c["conversation"]["title"] for c in doc["conversations"]] == ["one", "two"]
    assert [m["content"] for m in doc["conversations"][1]["messages"]] == ["b", "c"]
