"""Presets are data the registry can resolve; the fake server keeps its promised pace."""

from __future__ import annotations

import time

import httpx
import pytest

from providers import registry
from providers.base import ChatMessage, ChatRequest, Target, TextDelta
from providers.presets import PRESETS, choices
from tests.fakeprovider import FakeProvider, Script


def test_every_hosted_preset_has_an_https_base_url_and_needs_a_key() -> None:
    for key in (
        "openai",
        "groq",
        "together",
        "fireworks",
        "mistral",
        "deepseek",
        "openrouter",
        "qwen_intl",
        "qwen_cn",
        "huggingface",
        "anthropic",
        "gemini",
    ):
        assert PRESETS[key].base_url.startswith("https://") and PRESETS[key].key_required, key


def test_mistral_does_not_get_fields_it_rejects() -> None:
    assert PRESETS["mistral"].quirks["no_stream_options"] is True


def test_the_gateway_takes_a_custom_url_and_headers() -> None:
    assert PRESETS["gateway"].base_url == "" and PRESETS["gateway"].custom_headers


def test_choices_list_every_preset_once() -> None:
    assert sorted(k for k, _ in choices()) == sorted(PRESETS)


def test_an_unknown_family_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        registry.family("nope")


async def test_the_fake_server_holds_its_tokens_per_second(fake: FakeProvider) -> None:
    fake.set_default(Script(tokens=["w"] * 31, tokens_per_second=50))
    request = ChatRequest(model="fake-model", messages=(ChatMessage("user", "hi"),))
    arrivals = []
    started = time.monotonic()
    async for event in registry.stream("openai", Target(fake.url + "/v1"), request):
        if isinstance(event, TextDelta):
            arrivals.append(time.monotonic() - started)
    # 31 tokens at 50/s: the last is due 0.6 s after the first.
    assert 0.55 <= arrivals[-1] - arrivals[0] <= 0.75
    assert len(arrivals) == 31


def test_a_script_can_be_enqueued_over_http(fake: FakeProvider) -> None:
    httpx.post(fake.url + "/_script", json={"tokens": ["remote"], "usage": [1, 1]}).raise_for_status()
    body = {"model": "x", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    with httpx.stream("POST", fake.url + "/v1/chat/completions", json=body) as response:
        assert '"remote"' in response.read().decode()
