"""A model's reasoning setting, asked of each family in its own words, and its thinking read back."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from providers import anthropic, gemini, ollama, openai_compat
from providers.base import ChatMessage, ChatRequest, Reasoning, ReasoningDelta, Target, TextDelta
from providers.presets import PRESETS
from tests.fakeprovider import FakeProvider, Script
from tests.providers.test_contract import FAMILIES, Family

REQUEST = ChatRequest(
    model="fake-model",
    messages=(ChatMessage("user", "Why is the sky blue?"),),
    temperature=0.3,
    max_tokens=500,
)
ON = Reasoning()
OFF = Reasoning(enabled=False)


def ask(reasoning: Reasoning | None, **changes: Any) -> ChatRequest:
    return dataclasses.replace(REQUEST, reasoning=reasoning, **changes)


def preset_target(preset: str) -> Target:
    return Target("http://x", quirks=dict(PRESETS[preset].quirks))


# ---- Anthropic ---------------------------------------------------------------------------------


def test_anthropic_with_a_budget_asks_for_manual_thinking_above_the_answer_limit() -> None:
    body = anthropic.build_body(Target("http://x"), ask(Reasoning(budget_tokens=2048)))
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert body["max_tokens"] == 500 + 2048  # budget_tokens must stay below max_tokens


def test_anthropic_raises_a_budget_below_the_minimum_of_1024() -> None:
    body = anthropic.build_body(Target("http://x"), ask(Reasoning(budget_tokens=100)))
    assert body["thinking"]["budget_tokens"] == 1024 and body["max_tokens"] > 1024


def test_anthropic_without_a_budget_thinks_adaptively_at_the_chosen_effort() -> None:
    body = anthropic.build_body(Target("http://x"), ask(Reasoning(effort="low")))
    assert body["thinking"] == {"type": "adaptive"}
    assert body["output_config"] == {"effort": "low"}
    assert body["max_tokens"] > 500


def test_anthropic_drops_temperature_and_a_low_top_p_while_thinking() -> None:
    body = anthropic.build_body(Target("http://x"), ask(ON, top_p=0.5))
    assert "temperature" not in body and "top_p" not in body
    assert anthropic.build_body(Target("http://x"), ask(ON, top_p=0.97))["top_p"] == 0.97


def test_anthropic_off_or_unset_asks_for_no_thinking_and_keeps_the_settings() -> None:
    for reasoning in (None, OFF):
        body = anthropic.build_body(Target("http://x"), ask(reasoning))
        assert "thinking" not in body and body["temperature"] == 0.3 and body["max_tokens"] == 500


# ---- Gemini ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reasoning", "config"),
    [
        (ON, {"includeThoughts": True}),
        (Reasoning(budget_tokens=512), {"includeThoughts": True, "thinkingBudget": 512}),
        (Reasoning(effort="high"), {"includeThoughts": True, "thinkingLevel": "high"}),
        (OFF, {"thinkingBudget": 0}),
    ],
)
def test_gemini_sends_a_thinking_config_with_a_budget_or_a_level_never_both(
    reasoning: Reasoning, config: dict[str, Any]
) -> None:
    body = gemini.build_body(Target("http://x"), ask(reasoning))
    assert body["generationConfig"]["thinkingConfig"] == config


def test_gemini_unset_sends_no_thinking_config() -> None:
    assert "thinkingConfig" not in gemini.build_body(Target("http://x"), ask(None))["generationConfig"]


# ---- Ollama ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("reasoning", "think"), [(ON, True), (OFF, False), (Reasoning(effort="medium"), "medium")])
def test_ollama_sends_think(reasoning: Reasoning, think: object) -> None:
    assert ollama.build_body(Target("http://x"), ask(reasoning))["think"] == think


def test_ollama_unset_sends_no_think() -> None:
    assert "think" not in ollama.build_body(Target("http://x"), ask(None))


# ---- OpenAI-compatible -------------------------------------------------------------------------


@pytest.mark.parametrize("preset", ["openai", "groq", "openrouter", "vllm", "ollama_v1", "gateway"])
def test_openai_style_presets_send_reasoning_effort(preset: str) -> None:
    body = openai_compat.build_body(preset_target(preset), ask(Reasoning(effort="high")))
    assert body["reasoning_effort"] == "high"
    assert openai_compat.build_body(preset_target(preset), ask(ON))["reasoning_effort"] == "medium"


def test_openai_style_has_no_portable_off_so_off_sends_nothing() -> None:
    assert "reasoning_effort" not in openai_compat.build_body(preset_target("openai"), ask(OFF))


def test_servers_that_refuse_unknown_fields_get_no_reasoning_field() -> None:
    for target in (preset_target("mistral"), Target("http://x")):
        body = openai_compat.build_body(target, ask(Reasoning(effort="high")))
        assert "reasoning_effort" not in body and "enable_thinking" not in body


@pytest.mark.parametrize(("reasoning", "switch"), [(ON, True), (OFF, False)])
def test_qwen_on_dashscope_switches_thinking_with_enable_thinking(reasoning: Reasoning, switch: bool) -> None:
    assert openai_compat.build_body(preset_target("qwen_intl"), ask(reasoning))["enable_thinking"] is switch


# ---- over real HTTP: the setting reaches the server, the thinking comes back apart ----------------

SENT = {
    "openai": ("reasoning_effort", "high"),
    "anthropic": ("thinking", {"type": "adaptive"}),
    "gemini": (
        "generationConfig",
        {
            "maxOutputTokens": 500,
            "temperature": 0.3,
            "thinkingConfig": {"includeThoughts": True, "thinkingLevel": "high"},
        },
    ),
    "ollama": ("think", "high"),
}


@pytest.fixture(params=FAMILIES, ids=[f.name for f in FAMILIES])
def family(request: pytest.FixtureRequest) -> Family:
    return request.param  # type: ignore[no-any-return]


async def test_each_family_sends_the_setting_and_streams_the_thinking_apart(fake: FakeProvider, family: Family) -> None:
    fake.set_default(Script(reasoning=["Light ", "scatters."], tokens=["Rayleigh."]))
    quirks = {"reasoning_effort": True} if family.name == "openai" else {}
    target = Target(base_url=fake.url + family.suffix, quirks=quirks)
    events = [e async for e in family.module.stream(target, ask(Reasoning(effort="high")))]
    field, value = SENT[family.name]
    assert fake.requests[0].body[field] == value
    assert "".join(e.text for e in events if isinstance(e, ReasoningDelta)) == "Light scatters."
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Rayleigh."
