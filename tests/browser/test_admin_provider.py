"""An admin connects a provider in Django admin and enables a model; a user picks it and chats.

Real Chromium, real Daphne, the fake provider over real HTTP: the admin's form, the
"Discover models" action and the model's change form are the ones an admin would use.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.chromium import log_in
from tests.fakeprovider import FakeProvider, Script
from tests.live import LiveServer

KEY = "sk-browser-admin-key-5f3a9c"


@pytest.fixture
def bare_live(fake_server: FakeProvider) -> Iterator[LiveServer]:
    """A live server with no provider yet: the admin is about to add one."""
    fake_server.reset()
    server = LiveServer().start()
    server.create_user("root", "root-password-1", superuser=True)
    server.create_user("bob", "bob-password-1")
    yield server
    server.stop()


def admin_log_in(page: Any, live: LiveServer) -> None:
    page.goto(live.url + "/admin/login/?next=/admin/")
    page.fill("input[name=username]", "root")
    page.fill("input[name=password]", "root-password-1")
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")


def test_an_admin_adds_a_provider_and_a_user_chats_with_its_model(
    browser: Any, page: Any, bare_live: LiveServer, fake_server: FakeProvider
) -> None:
    live = bare_live
    admin_log_in(page, live)
    page.goto(live.url + "/admin/chat/provider/add/")
    page.fill("input[name=name]", "lab")
    page.fill("input[name=label]", "Lab")
    page.select_option("select[name=preset]", "gateway")
    page.fill("input[name=base_url]", fake_server.url + "/v1")
    page.fill("input[name=api_key]", KEY)
    page.click("input[name=_save]")
    page.wait_for_url("**/admin/chat/provider/")
    assert KEY not in page.content()

    # Discover the provider's models: they arrive disabled, for the admin to enable.
    page.check("input[name=_selected_action]")
    page.select_option("select[name=action]", "discover_models")
    page.click("button[name=index]")
    page.wait_for_selector("ul.messagelist li.success")
    assert "1 new imported as disabled" in page.inner_text("ul.messagelist")
    page.click("ul.messagelist a")  # "Enable the ones users may pick"
    page.click("#result_list a:text('fake-model')")
    page.fill("input[name=display_name]", "Lab Fake")
    page.check("input[name=enabled]")
    page.click("input[name=_save]")
    page.wait_for_selector("ul.messagelist li.success")
    assert KEY not in page.content()

    # Bob, an ordinary user, picks it and chats.
    fake_server.enqueue(Script(tokens=["Hello", " from", " the", " lab."], tokens_per_second=20))
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        user_page = context.new_page()
        log_in(user_page, live, "bob", "bob-password-1")
        user_page.select_option("#model", label="Lab Fake")
        user_page.fill("#prompt", "Hello?")
        user_page.keyboard.press("Enter")
        user_page.wait_for_selector('.message[data-role="assistant"][data-status="complete"]')
        body = user_page.locator('.message[data-role="assistant"] .message-body').last.inner_text()
        assert body.strip() == "Hello from the lab."
    finally:
        context.close()
    chat = fake_server.requests[-1]
    assert chat.body["model"] == "fake-model" and chat.headers["authorization"] == f"Bearer {KEY}"
