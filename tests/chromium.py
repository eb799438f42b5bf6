"""One way to start Debian's headless Chromium for every browser test and benchmark.

Under CI a missing browser is a failure, never a silent skip. Playwright's sync API runs an
event loop while a browser is open, so callers keep it open per module, not per session:
the async tests of later modules need the loop gone.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.live import LiveServer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def require_chromium() -> None:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium chromium-driver)")
        pytest.skip(f"{CHROMIUM} is missing (run `make browser`)")


# A real WebGPU adapter with no GPU: Vulkan through SwiftShader (a CPU implementation).
WEBGPU_ARGS = [a for a in CHROMIUM_ARGS if a != "--disable-gpu"] + [
    "--enable-unsafe-webgpu",
    "--enable-features=Vulkan",
    "--use-vulkan=swiftshader",
    "--use-webgpu-adapter=swiftshader",
]


@contextmanager
def launch(args: list[str] = CHROMIUM_ARGS) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=args)
        try:
            yield browser
        finally:
            browser.close()


def log_in(page: Any, live: LiveServer, username: str = "alice", password: str = "alice-password-1") -> None:
    page.goto(live.url + "/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url("**/chat/**")
