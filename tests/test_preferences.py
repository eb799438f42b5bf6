"""The user's settings page, the theme switch, and the settings page's import form."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from chat.models import ChatModel, Conversation, UserPreferences
from tests.test_http_pages import page_data

pytestmark = pytest.mark.django_db(transaction=True)


def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_settings_page_requires_signing_in() -> None:
    response = Client().get("/settings/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_saved_settings_shape_the_header_and_new_chats(alice: Any, fake_model: ChatModel) -> None:
    client = signed_in(alice)
    assert client.get("/settings/").status_code == 200
    response = client.post(
        "/settings/",
        {
            "display_name": "Alice Liddell",
            "theme": "dark",
            "default_model": str(fake_model.id),
            "default_system_prompt": "Answer in French.",
        },
    )
    assert response.status_code == 302
    page = client.get("/chat/")
    html = page.content.decode()
    assert '<html lang="en" data-theme="dark">' in html and "Alice Liddell" in html
    prefs = page_data(page)["preferences"]
    assert prefs["default_model"] == str(fake_model.id) and prefs["system_prompt"] == "Answer in French."


def test_a_default_model_the_user_may_not_use_is_refused(alice: Any, fake_model: ChatModel) -> None:
    fake_model.groups.add(Group.objects.create(name="staff-only"))
    response = signed_in(alice).post("/settings/", {"theme": "system", "default_model": str(fake_model.id)})
    assert response.status_code == 400 and "Select a valid choice" in response.content.decode()
    assert not UserPreferences.objects.exists()


def test_an_unknown_theme_is_refused(alice: Any) -> None:
    client = signed_in(alice)
    assert client.post("/settings/", {"theme": "neon"}).status_code == 400
    response = client.post("/settings/theme/", json.dumps({"theme": "neon"}), content_type="application/json")
    assert response.status_code == 400 and "theme" in response.json()["error"]


def test_the_theme_switch_saves_to_the_users_preferences_only(alice: Any, bob: Any) -> None:
    response = signed_in(alice).post(
        "/settings/theme/", json.dumps({"theme": "light"}), content_type="application/json"
    )
    assert response.json() == {"theme": "light"}
    assert UserPreferences.objects.get(user=alice).theme == "light"
    assert 'data-theme="system"' in signed_in(bob).get("/chat/").content.decode()


def test_admin_defaults_reach_the_page(alice: Any, settings: Any) -> None:
    settings.PARLEY_DEFAULT_TEMPERATURE = 0.6
    settings.PARLEY_DEFAULT_MAX_TOKENS = 900
    prefs = page_data(signed_in(alice).get("/chat/"))["preferences"]
    assert (prefs["temperature"], prefs["max_tokens"]) == (0.6, 900)


def test_the_import_form_opens_the_imported_conversation(alice: Any) -> None:
    doc = {
        "format": "parley.conversation",
        "version": 1,
        "conversation": {"title": "Imported"},
        "messages": [{"role": "user", "content": "hi"}],
    }
    upload = SimpleUploadedFile("c.json", json.dumps(doc).encode(), content_type="application/json")
    response = signed_in(alice).post("/settings/import/", {"file": upload})
    conversation = Conversation.objects.get(owner=alice)
    assert response.status_code == 302 and response["Location"] == f"/chat/{conversation.id}/"


def test_a_bad_file_in_the_import_form_says_why(alice: Any) -> None:
    upload = SimpleUploadedFile("c.json", b"not json", content_type="application/json")
    response = signed_in(alice).post("/settings/import/", {"file": upload})
    assert response.status_code == 400 and "not valid JSON" in response.content.decode()
    assert not Conversation.objects.exists()


def test_the_settings_page_has_the_strict_content_security_policy(alice: Any) -> None:
    policy = signed_in(alice).get("/settings/")["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
