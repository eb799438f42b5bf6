"""In-browser models in real headless Chromium against a real Daphne process (no GPU here).

Under CI a missing browser fails the run; it never skips silently.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.live import LiveServer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser_local" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: `make browser` installs it")
        pytest.skip(f"{CHROMIUM} is missing (run `make browser`)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    """One server per module: the model download and load dominate, so tests share them."""
    live = LiveServer().start()
    live.create_user("alice", "alice-password-1")
    yield live
    live.stop()


@pytest.fixture(scope="module")
def context(chromium: Any) -> Iterator[Any]:
    """One browser profile per module, so the second visit finds the weights in its cache."""
    ctx = chromium.new_context(viewport={"width": 1280, "height": 800})
    yield ctx
    ctx.close()


def log_in(page: Any, live: LiveServer) -> None:
    page.goto(live.url + "/accounts/login/")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "alice-password-1")
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url("**/chat/**")
