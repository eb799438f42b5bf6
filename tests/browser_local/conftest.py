"""In-browser models in real headless Chromium against a real Daphne process.

No GPU here; the tests that need WebGPU get a real adapter through SwiftShader.

Under CI a missing browser fails the run; it never skips silently.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.chromium import launch, require_chromium
from tests.live import LiveServer


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser_local" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    require_chromium()
    with launch() as instance:
        yield instance


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
