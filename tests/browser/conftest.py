"""Real headless Chromium (Debian's, see tests/chromium.py) against a real Daphne process."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.chromium import launch, require_chromium
from tests.fakeprovider import FakeProvider
from tests.live import LiveServer


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require_chromium()
    with launch() as instance:
        yield instance


@pytest.fixture(scope="module")
def module_live(fake_server: FakeProvider) -> Iterator[LiveServer]:
    """One server per module: alice, and the fake provider's model as the default.

    Alice sends in every test of the module, well over the per-minute limit in all; that
    limit has its own tests (tests/test_fair_use.py), so it is off here.
    """
    server = LiveServer({"PARLEY_USER_MESSAGES_PER_MINUTE": "0"}).start()
    server.create_user("alice", "alice-password-1")
    server.add_fake_provider(fake_server.url, model="fake-model=Fake Model", default="fake-model", label="Fake Lab")
    server.snapshot()
    yield server
    server.stop()


@pytest.fixture
def live(module_live: LiveServer, fake_server: FakeProvider) -> LiveServer:
    """The module's server, with nothing left of earlier tests (conversations, settings...)."""
    module_live.restore()
    fake_server.reset()
    return module_live


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
