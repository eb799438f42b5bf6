"""A person's first chat, in real Chromium against a real Daphne process."""

from __future__ import annotations

from typing import Any

from tests.chromium import log_in
from tests.fakeprovider import FakeProvider, Script
from tests.live import LiveServer


def test_a_user_logs_in_sees_a_streamed_answer_stops_it_and_finds_it_after_reload(
    page: Any, live: LiveServer, fake_server: FakeProvider
) -> None:
    fake_server.enqueue(Script(tokens=["**Paris**", " is", " the", " capital."], tokens_per_second=20))
    fake_server.enqueue(Script(tokens=[f"word{i} " for i in range(300)], tokens_per_second=15))
    log_in(page, live)

    page.fill("#prompt", "What is the capital of France?")
    page.keyboard.press("Enter")
    answer = page.locator('.message[data-role="assistant"]').last
    answer.locator(".message-body strong").wait_for()  # markdown rendered while streaming
    page.wait_for_selector('.message[data-role="assistant"][data-status="complete"]')
    assert answer.locator(".message-body").inner_text().strip() == "Paris is the capital."

    page.fill("#prompt", "Tell me a long story")
    page.click("#send")
    second = page.locator('.message[data-role="assistant"]').nth(1)
    page.wait_for_function(
        "() => (document.querySelectorAll('.message[data-role=assistant]')[1]?.innerText || '').includes('word3')"
    )
    page.click("#stop")
    page.wait_for_selector('.message[data-role="assistant"][data-status="incomplete"]')
    partial = second.locator(".message-body").inner_text().strip()
    assert partial.startswith("word0") and "word299" not in partial
    assert fake_server.requests[-1].client_disconnected.wait(2)

    page.reload()
    messages = page.locator(".message")
    messages.nth(3).wait_for()
    assert [messages.nth(i).get_attribute("data-role") for i in range(4)] == ["user", "assistant", "user", "assistant"]
    assert page.locator(".message-body").nth(0).inner_text().strip() == "What is the capital of France?"
    assert page.locator(".message").nth(3).get_attribute("data-status") == "incomplete"
    assert page.locator(".message-body").nth(3).inner_text().strip() == partial
    sidebar = page.locator("#conversations a.conversation")
    assert sidebar.count() == 1 and "capital of France" in sidebar.first.inner_text()
    assert not [e for e in page.console_errors if "Content Security Policy" in e], page.console_errors


def test_a_wrong_password_is_refused_with_a_clear_message(page: Any, live: LiveServer) -> None:
    page.goto(live.url + "/accounts/login/")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "wrong")
    page.click("button[type=submit], input[type=submit]")
    assert "/accounts/login/" in page.url
    assert "correct username and password" in page.content()
