"""The API in the page: the "Use from code" panel, a cached answer marked, tokens on the settings page."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.chromium import log_in
from tests.fakeprovider import FakeProvider, Script
from tests.live import LiveServer


def test_use_from_code_shows_ready_snippets_for_the_picked_model(page: Any, live: LiveServer) -> None:
    log_in(page, live)
    page.click("#code-panel-open")
    panel = page.locator("#code-panel")
    panel.locator(".code-snippet").nth(4).wait_for()
    assert panel.locator("#code-panel-model").inner_text() == "Fake Model"
    shown = {
        s.get_attribute("data-snippet"): s.locator("pre").inner_text()
        for s in panel.locator(".code-snippet").all()
    }
    assert set(shown) == {"curl", "python", "js-fetch", "js-openai", "go"}
    for code in shown.values():
        assert '"fake-model"' in code and live.url + "/v1" in code and "PARLEY_API_TOKEN" in code
    page.keyboard.press("Escape")
    assert not panel.is_visible()
    assert not page.console_errors, page.console_errors


def test_an_answer_from_the_cache_is_marked_so(
    page: Any, live: LiveServer, fake_server: FakeProvider
) -> None:
    live.manage(
        "shell",
        "-c",
        "from chat.models import ChatModel; ChatModel.objects.update(cache_ttl=60, cache_max_temperature=2)",
    )
    try:
        fake_server.set_default(Script(tokens=["Cached ", "words"]))
        log_in(page, live)
        page.fill("#prompt", "Say something cacheable")
        page.keyboard.press("Enter")
        page.locator('.message[data-role="assistant"][data-status="complete"]').wait_for()
        assert "From the cache" not in page.locator(".message-meta").last.inner_text()
        page.wait_for_timeout(300)  # the answer is kept in the cache just after it is saved
        page.click("#new-chat")  # the same question in a new chat is an exact repeat
        page.locator('.message[data-role="assistant"]').wait_for(state="detached")
        page.fill("#prompt", "Say something cacheable")
        page.keyboard.press("Enter")
        page.locator('.message[data-role="assistant"][data-status="complete"]').wait_for()
        assert (
            "From the cache"
            in page.locator('.message[data-role="assistant"] .message-meta').last.inner_text()
        )
        assert len(fake_server.requests) == 1
        page.reload()
        page.locator('.message[data-role="assistant"]').last.wait_for()
        assert (
            "From the cache"
            in page.locator('.message[data-role="assistant"] .message-meta').last.inner_text()
        )
    finally:
        live.manage("shell", "-c", "from chat.models import ChatModel; ChatModel.objects.update(cache_ttl=0)")


def test_a_token_made_on_the_settings_page_works_once_and_not_after_revoking(
    page: Any, live: LiveServer
) -> None:
    log_in(page, live)
    page.goto(live.url + "/settings/")
    page.fill("#id_token-name", "my script")
    page.click("#api-tokens button[type=submit].primary")
    secret = page.input_value("#new-token")
    assert re.fullmatch(r"parley-[\w-]{43}", secret)
    api = {"Authorization": f"Bearer {secret}"}
    assert httpx.get(live.url + "/v1/models", headers=api).status_code == 200
    page.click("text=Back to settings")
    assert secret not in page.content()
    page.click("button[aria-label='Revoke my script']")
    page.wait_for_selector("#no-api-tokens")
    assert httpx.get(live.url + "/v1/models", headers=api).status_code == 401
