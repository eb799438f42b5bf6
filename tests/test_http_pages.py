"""Accounts and the JSON the chat page reads, over Django's test client."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.test.utils import override_settings

from chat.models import ChatModel, Conversation, Message

pytestmark = pytest.mark.django_db(transaction=True)


def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def page_data(response: Any) -> dict[str, Any]:
    html = response.content.decode()
    start = html.index('id="parley-data"')
    start = html.index(">", start) + 1
    return json.loads(html[start : html.index("</script>", start)])


def test_the_chat_page_requires_signing_in() -> None:
    response = Client().get("/chat/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@override_settings(PARLEY_SIGNUP_OPEN=True)
def test_with_sign_up_opened_someone_can_sign_up_and_lands_signed_in_on_the_chat_page() -> None:
    client = Client()
    response = client.post(
        "/accounts/signup/", {"username": "carol", "password1": "a-long-pass-phrase", "password2": "a-long-pass-phrase"}
    )
    assert response.status_code == 302 and response["Location"] == "/chat/"
    assert client.get("/chat/").status_code == 200


@override_settings(PARLEY_SIGNUP_OPEN=True)
def test_a_mismatched_sign_up_is_refused_with_the_reason() -> None:
    response = Client().post(
        "/accounts/signup/", {"username": "carol", "password1": "a-long-pass-phrase", "password2": "different-phrase"}
    )
    assert response.status_code == 400
    assert "didn’t match" in response.content.decode() or "didn't match" in response.content.decode()


def test_sign_up_is_closed_by_default_and_says_how_to_get_an_account() -> None:
    page = Client().get("/accounts/signup/")
    assert page.status_code == 404 and "Sign-up is by invitation" in page.content.decode()
    assert "Create an account" not in Client().get("/accounts/login/").content.decode()
    response = Client().post(
        "/accounts/signup/",
        {"username": "mallory", "password1": "a-long-pass-phrase", "password2": "a-long-pass-phrase"},
    )
    assert response.status_code == 404 and not User.objects.filter(username="mallory").exists()


def test_log_in_log_out_and_change_password(alice: Any) -> None:
    client = Client()
    assert client.post("/accounts/login/", {"username": "alice", "password": "alice-password-1"}).status_code == 302
    response = client.post(
        "/accounts/password/",
        {
            "old_password": "alice-password-1",
            "new_password1": "brand-new-phrase-9",
            "new_password2": "brand-new-phrase-9",
        },
    )
    assert response.status_code == 302
    client.post("/accounts/logout/")
    assert client.get("/chat/").status_code == 302
    # Signing in goes through the form: the throttle needs the request (Client.login has none).
    signed_in = Client().post("/accounts/login/", {"username": "alice", "password": "brand-new-phrase-9"})
    assert signed_in.status_code == 302


def test_the_page_lists_only_the_users_conversations_newest_first_and_usable_models(
    alice: Any, bob: Any, fake_model: ChatModel
) -> None:
    older = Conversation.objects.create(owner=alice, title="older")
    newer = Conversation.objects.create(owner=alice, title="newer")
    Conversation.objects.create(owner=bob, title="bob's secret")
    data = page_data(signed_in(alice).get("/chat/"))
    assert [c["title"] for c in data["conversations"]] == ["newer", "older"]
    assert [c["id"] for c in data["conversations"]] == [str(newer.id), str(older.id)]
    assert data["models"] == [
        {
            "id": str(fake_model.id),
            "name": "Fake Model",
            "provider": "Fake",
            "default": True,
            "vision": False,
            "pdf": False,
            "context_window": None,
            "api_id": "fake-model",  # what scripts name it by (docs/api.md)
        }
    ]


def test_bob_cannot_read_alices_conversation_over_http(alice: Any, bob: Any) -> None:
    conversation = Conversation.objects.create(owner=alice, title="private")
    Message.objects.create(conversation=conversation, role="user", content="my secret")
    bob_client = signed_in(bob)
    assert bob_client.get(f"/api/conversations/{conversation.id}/").status_code == 404
    assert bob_client.get(f"/chat/{conversation.id}/").status_code == 404
    assert "my secret" not in bob_client.get("/api/conversations/").content.decode()
    alice_view = signed_in(alice).get(f"/api/conversations/{conversation.id}/").json()
    assert [m["content"] for m in alice_view["messages"]] == ["my secret"]


def test_conversations_page_in_fifties_with_a_cursor(alice: Any) -> None:
    for i in range(120):
        Conversation.objects.create(owner=alice, title=f"c{i}")
    client = signed_in(alice)
    first = client.get("/api/conversations/").json()
    second = client.get("/api/conversations/", {"before": first["next"]}).json()
    third = client.get("/api/conversations/", {"before": second["next"]}).json()
    titles = [c["title"] for page in (first, second, third) for c in page["conversations"]]
    assert len(titles) == 120 and len(set(titles)) == 120 and third["next"] is None
    assert client.get("/api/conversations/", {"before": "yesterday"}).status_code == 400


def test_every_page_carries_a_strict_content_security_policy(alice: Any) -> None:
    for url in ("/chat/", "/accounts/password/"):
        policy = signed_in(alice).get(url)["Content-Security-Policy"]
        directives = {d.split()[0]: d.split()[1:] for d in policy.split("; ")}
        assert directives["script-src"][0] == "'self'"
        sources = {source for values in directives.values() for source in values}
        assert "'unsafe-inline'" not in sources and "'unsafe-eval'" not in sources
        assert directives["frame-ancestors"] == ["'none'"]
