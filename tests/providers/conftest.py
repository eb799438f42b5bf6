"""Provider tests use the shared fake upstream (tests/conftest.py) and no database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from providers.http import aclose_client


@pytest.fixture(autouse=True)
async def _close_shared_client() -> AsyncIterator[None]:
    # Each test has its own event loop, hence its own shared client: close it with the loop.
    yield
    await aclose_client()
