"""Real headless Chromium (Debian's) against a real Daphne process.

Under CI a missing browser is a failure, never a silent skip.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakeprovider import FakeProvider
from tests.live import LiveServer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


# Module scope: Playwright's sync API runs an event loop that must be gone before the
# async tests of other modules start theirs.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium chromium-driver)")
        pytest.skip(f"{CHROMIUM} is missing (run `make browser`)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def live(fake_server: FakeProvider) -> Iterator[LiveServer]:
    fake_server.reset()
    server = LiveServer().start()
    server.create_user("alice", "alice-password-1")
    server.manage(
        "provider", "add", "fake", "--kind", "openai", "--base-url", fake_server.url + "/v1",
        "--label", "Fake Lab", "--model", "fake-model=Fake Model", "--default", "fake-model",
    )
    yield server
    server.stop()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.console_errors = errors  # type: ignore[attr-defined]
    yield page
    context.close()


def log_in(page: Any, live: LiveServer, username: str = "alice", password: str = "alice-password-1") -> None:
    page.goto(live.url + "/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url("**/chat/**")
