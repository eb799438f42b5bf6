"""Find a family module by name, imported on first use, and stream through it with retries.

Dotted paths rather than imports keep start-up cheap and let a broken or unused family
cost nothing until someone actually configures it.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from typing import cast

from providers.base import ChatRequest, Event, Family, ModelInfo, Target
from providers.http import retrying

FAMILIES = {
    "openai": "providers.openai_compat",
    "anthropic": "providers.anthropic",
    "gemini": "providers.gemini",
    "ollama": "providers.ollama",
}


def family(name: str) -> Family:
    """The module implementing a family; KeyError for a name we do not know."""
    return cast(Family, importlib.import_module(FAMILIES[name]))


async def stream(family_name: str, target: Target, request: ChatRequest) -> AsyncIterator[Event]:
    """The family's stream, retried on transient failures before its first event."""
    # base.Family declares stream with "async def" and no yield, which a type checker reads
    # as a coroutine; the modules really define async generators.
    stream_fn = cast(Callable[[Target, ChatRequest], AsyncIterator[Event]], family(family_name).stream)
    async with aclosing(retrying(lambda: stream_fn(target, request))) as events:
        async for event in events:
            yield event


async def list_models(family_name: str, target: Target) -> list[ModelInfo]:
    return await family(family_name).list_models(target)
