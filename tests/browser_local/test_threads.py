"""In-browser chats are threads like any other: a fresh install's default model answers, the
thread and its model survive a reload, Regenerate, Edit and Continue work with the same pagers,
and the chat settings reach the model. All with the bundled SmolLM2 in real Chromium."""

from __future__ import annotations

import re
from typing import Any

from tests.browser_local.pages import (
    ANSWER,
    MODEL,
    QUESTION,
    Traffic,
    ask,
    consent_given,
    finished,
    page_data,
    saved_messages,
    set_max_tokens,
)
from tests.chromium import log_in
from tests.live import LiveServer

SAVE = "/api/browser-models/exchanges/"


def conversation_id(page: Any) -> str:
    page.wait_for_url(re.compile(r"/chat/[0-9a-f-]{36}/$"))
    return str(page.url.rstrip("/").rsplit("/", 1)[-1])


def test_a_fresh_install_starts_on_the_bundled_model_and_its_thread_reloads_as_a_thread(
    context: Any, server: LiveServer
) -> None:
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    log_in(page, server)
    data = page_data(page)
    # No server model configured and no weights host allowed: only what Parley serves itself.
    assert data["models"] == [] and [m["name"] for m in data["browser_models"]] == [MODEL]
    bundled = data["browser_models"][0]["id"]
    assert page.input_value("#model") == bundled
    traffic = Traffic(page)
    ask(page, "What is the capital of France? Answer in one sentence.")
    page.click("#local-consent-accept")
    finished(page, 1, timeout=180_000)
    assert "Paris" in page.locator(f"{ANSWER} .message-body").first.inner_text()
    ask(page, "Thank you. Say goodbye in one short sentence.")
    finished(page, 2)
    conversation = conversation_id(page)

    first, second = traffic.posts(SAVE)
    assert first["parent"] is None and second["conversation"] == conversation
    stored = saved_messages(page, conversation)
    assert [m["role"] for m in stored] == ["user", "assistant", "user", "assistant"]
    assert [m["parent"] for m in stored[1:]] == [m["id"] for m in stored[:-1]]  # one branch, not four roots
    assert second["parent"] == stored[1]["id"]
    assert "send" not in traffic.frame_types()

    page.reload()
    page.locator(ANSWER).nth(1).wait_for()
    assert page.locator(".message").count() == 4
    assert page.locator(".pager").count() == 0  # a thread, not "2 / 2" versions
    assert page.input_value("#model") == bundled  # the picker follows the conversation

    again = Traffic(page)
    ask(page, "Now say hello.")
    finished(page, 3)
    assert "send" not in again.frame_types()  # the next message stayed in the browser
    (third,) = again.posts(SAVE)
    assert third["parent"] == stored[3]["id"]
    assert len(saved_messages(page, conversation)) == 6
    assert not errors, errors
    page.close()


def test_regenerate_edit_and_continue_work_on_in_browser_answers_with_the_same_pagers(
    context: Any, server: LiveServer
) -> None:
    page = context.new_page()
    page.goto(server.url + "/chat/")
    if "/accounts/login/" in page.url:
        log_in(page, server)
    consent_given(page)
    set_max_tokens(page, 12)  # the chat settings reach the in-browser model
    ask(page, "Write a long story about a robot who learns to paint.")
    finished(page, 1)
    answer = page.locator(ANSWER).first
    assert "Cut off at the length limit" in answer.locator(".message-meta").inner_text()
    conversation = conversation_id(page)
    before = saved_messages(page, conversation)[1]

    # Continue: the same answer grows, in place and on the server.
    answer.locator("button.continue").click()
    page.wait_for_function(
        "(n) => { const a = document.querySelector('.message[data-role=assistant]');"
        " return a.dataset.status !== 'streaming' && a.querySelector('.message-body').innerText.length > n; }",
        arg=len(before["content"]),
        timeout=120_000,
    )
    stored = saved_messages(page, conversation)
    assert len(stored) == 2 and stored[1]["id"] == before["id"]
    assert stored[1]["content"].startswith(before["content"]) and len(stored[1]["content"]) > len(before["content"])

    # Regenerate: a sibling answer, shown with "2 / 2", kept after a reload.
    page.locator(ANSWER).first.locator("button.regenerate").click()
    page.locator(f"{ANSWER} .pager-position").wait_for(timeout=120_000)
    finished(page, 1)
    assert page.locator(f"{ANSWER} .pager-position").inner_text() == "2 / 2"
    stored = saved_messages(page, conversation)
    assert [m["parent"] for m in stored if m["role"] == "assistant"] == [stored[0]["id"]] * 2

    # Edit: a second version of the question, answered in the browser, on its own branch.
    page.locator(QUESTION).first.locator("button.edit").click()
    page.fill(".edit-text", "Write a short poem about the sea.")
    page.keyboard.press("Enter")
    page.locator(f"{QUESTION} .pager-position").wait_for(timeout=120_000)
    finished(page, 1)
    assert page.locator(f"{QUESTION} .pager-position").inner_text() == "2 / 2"
    assert page.locator(f"{QUESTION} .message-body").inner_text() == "Write a short poem about the sea."

    page.reload()
    page.locator(f"{QUESTION} .pager-position").wait_for()
    assert page.locator(f"{QUESTION} .pager-position").inner_text() == "2 / 2"
    page.locator(f"{QUESTION} button.prev").click()  # back to the first question and its two answers
    assert "robot" in page.locator(f"{QUESTION} .message-body").inner_text()
    assert page.locator(f"{ANSWER} .pager-position").inner_text() == "2 / 2"
    assert len(saved_messages(page, conversation)) == 5
    page.close()


def test_an_answer_the_server_refuses_to_save_stays_on_screen_and_says_why(context: Any, server: LiveServer) -> None:
    page = context.new_page()
    page.goto(server.url + "/chat/")
    if "/accounts/login/" in page.url:
        log_in(page, server)
    consent_given(page)
    page.select_option("#model", label=MODEL)  # agreed to before: the page loads it at once
    page.wait_for_function("() => document.getElementById('local-status').innerText.includes('ready')", timeout=60_000)
    # The admin disables the model while the page still has it loaded.
    toggle = (
        "from chat.models import BrowserModel; "
        "BrowserModel.objects.filter(weights_url__startswith='bundled:').update(enabled={})"
    )
    server.manage("shell", "-c", toggle.format(False))
    try:
        ask(page, "What is the capital of France? Answer in one sentence.")
        page.wait_for_function(
            "() => document.querySelector('.message[data-role=assistant] .message-meta')?.innerText.includes('Not saved')",
            timeout=120_000,
        )
        answer = page.locator(ANSWER).first
        assert "That model is not available to you." in answer.locator(".message-meta").inner_text()
        assert answer.locator(".message-body").inner_text().strip()  # the text is still there to copy
        assert page.url.endswith("/chat/")  # no conversation was made
    finally:
        server.manage("shell", "-c", toggle.format(True))
    page.close()
