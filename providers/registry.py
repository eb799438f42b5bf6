"""Every provider family, declared once; found by name and imported on first use.

A family is one entry of FAMILIES: its key (stored on each Provider row), the label admins
see, and the module that speaks its wire format. The model field's choices, the presets,
the fake provider and the contract tests all derive from this tuple, and
tests/providers/test_families_declared_once.py fails if any of them drifts from it.

Dotted paths rather than imports keep start-up cheap and let a broken or unused family
cost nothing until someone actually configures it.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import AsyncIterator, Callable
from typing import cast

from providers.base import ChatRequest, Event, Family, ModelInfo, Target
from providers.http import retrying


@dataclasses.dataclass(frozen=True, slots=True)
class FamilySpec:
    key: str
    label: str
    module: str
    # Reads a PDF itself (Anthropic `document` blocks, Gemini inline data): a model of this
    # family that takes images is sent the file; every other model gets the text Parley made.
    native_pdf: bool = False


FAMILIES: dict[str, FamilySpec] = {
    spec.key: spec
    for spec in (
        FamilySpec("openai", "OpenAI-compatible Chat Completions", "providers.openai_compat"),
        FamilySpec("anthropic", "Anthropic Messages API", "providers.anthropic", native_pdf=True),
        FamilySpec("gemini", "Google Gemini API", "providers.gemini", native_pdf=True),
        FamilySpec("ollama", "Ollama native API", "providers.ollama"),
    )
}


def choices() -> list[tuple[str, str]]:
    """(key, label) pairs for the Provider.family field."""
    return [(spec.key, spec.label) for spec in FAMILIES.values()]


def family(name: str) -> Family:
    """The module implementing a family; KeyError for a name we do not know."""
    return cast(Family, importlib.import_module(FAMILIES[name].module))


def stream(family_name: str, target: Target, request: ChatRequest) -> AsyncIterator[Event]:
    """The family's stream, retried on transient failures before its first event."""
    # base.Family declares stream with "async def" and no yield, which a type checker reads
    # as a coroutine; the modules really return async generators.
    stream_fn = cast(Callable[[Target, ChatRequest], AsyncIterator[Event]], family(family_name).stream)
    return retrying(lambda: stream_fn(target, request))


async def list_models(family_name: str, target: Target) -> list[ModelInfo]:
    return await family(family_name).list_models(target)
