"""An answer survives a reload: the page picks the stream up where it was, word for word."""

from __future__ import annotations

from typing import Any

from tests.chromium import log_in
from tests.fakeprovider import FakeProvider, Script
from tests.live import LiveServer

WORDS = [f"word{i} " for i in range(80)]


def test_reloading_mid_answer_continues_the_answer_seamlessly(page: Any, live: LiveServer, fake_server: FakeProvider) -> None:
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
