"""An answer survives a reload: the page picks the stream up where it was, word for word."""

from __future__ import annotations

from typing import Any

from tests.chromium import log_in
from tests.fakeprovider import FakeProvider, Script
from tests.live import LiveServer

WORDS = [f"word{i} " for i in range(80)]


def test_reloading_mid_answer_continues_the_answer_seamlessly(
    page: Any, live: LiveServer, fake_server: FakeProvider
) -> None:
    fake_server.enqueue(Script(tokens=WORDS, tokens_per_second=25))
    log_in(page, live)
    page.fill("#prompt", "Count slowly")
    page.keyboard.press("Enter")
    page.wait_for_function(
        "() => (document.querySelector('.message[data-role=assistant] .message-body')?.innerText || '').includes('word10')"
    )
    page.wait_for_url("**/chat/*-*/")
    page.reload()
    answer = page.locator('.message[data-role="assistant"]').last
    answer.locator(".message-body").wait_for()
    # Still streaming after the reload, then complete — with every word exactly once.
    page.wait_for_selector('.message[data-role="assistant"][data-status="complete"]', timeout=15_000)
    shown = answer.locator(".message-body").inner_text().split()
    assert shown == [w.strip() for w in WORDS]
    assert len(fake_server.requests) == 1  # the reload did not ask the provider again


def test_after_a_hard_kill_the_tab_shows_the_saved_text_not_the_unsaved_rest(
    page: Any, fake_server: FakeProvider
) -> None:
    # Checkpoints every 5 s: the tab sees far more words than were saved when the server dies.
    server = LiveServer({"PARLEY_CHECKPOINT_SECONDS": "5", "PARLEY_CHECKPOINT_CHARS": "100000"}).start()
    try:
        server.create_user("alice", "alice-password-1")
        server.add_fake_provider(fake_server.url, default="fake-model")
        fake_server.reset()
        fake_server.enqueue(Script(tokens=[f"w{i} " for i in range(400)], tokens_per_second=40))
        log_in(page, server)
        page.fill("#prompt", "Keep counting")
        page.keyboard.press("Enter")
        body = page.locator('.message[data-role="assistant"] .message-body').last
        # Past the first checkpoint (at 5 s, ~200 words) and well beyond it.
        page.wait_for_function(
            "() => (document.querySelectorAll('.message[data-role=assistant] .message-body')[0]?.innerText || '')"
            ".includes('w300')",
            timeout=20_000,
        )
        server.kill()
        server.start()  # start-up recovery marks the answer incomplete with its checkpoint
        page.wait_for_selector('.message[data-role="assistant"][data-status="incomplete"]', timeout=30_000)
        saved = server.sql("select content from chat_message where role = 'assistant'")[0][0]
        assert "w300" not in str(saved), "the checkpoint was later than this test means to check"
        assert body.inner_text().split() == str(saved).split()
    finally:
        server.stop()


def test_a_message_too_long_to_send_is_refused_in_the_page_and_never_resent(
    page: Any, live: LiveServer, fake_server: FakeProvider
) -> None:
    sent: list[str] = []
    page.on("websocket", lambda ws: ws.on("framesent", lambda payload: sent.append(str(payload))))
    log_in(page, live)
    page.evaluate(
        "() => { const p = document.querySelector('#prompt'); p.value = 'x'.repeat(600000); "
        "p.dispatchEvent(new Event('input', {bubbles: true})); }"
    )
    page.focus("#prompt")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=longer than 100,000 characters", timeout=10_000)
    page.wait_for_timeout(1500)
    assert not any('"send"' in frame for frame in sent), "the page sent a frame the server cannot take"
    assert fake_server.requests == []
    assert page.locator("#prompt").input_value().startswith("xxxx"), "the text is kept for the user to shorten"
