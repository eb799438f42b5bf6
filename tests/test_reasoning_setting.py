"""Reasoning is a per-model setting: set in admin or `manage.py provider model`, asked of the provider."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client

from chat.models import ChatModel, Provider
from providers.base import Reasoning
from tests.fakeprovider import FakeProvider, Script

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def claude(transactional_db: None, fake: FakeProvider) -> ChatModel:
    provider = Provider.objects.create(name="claude", family="anthropic", base_url=fake.url)
    return ChatModel.objects.create(provider=provider, model_id="fake-model", display_name="Claude")


def test_the_setting_becomes_the_request_the_adapters_read(claude: ChatModel) -> None:
    assert claude.reasoning_request() is None  # by default nothing is asked
    claude.reasoning = "off"
    assert claude.reasoning_request() == Reasoning(enabled=False)
    claude.reasoning, claude.reasoning_effort, claude.reasoning_budget = "on", "high", 4096
    assert claude.reasoning_request() == Reasoning(budget_tokens=4096, effort="high")


async def test_a_model_set_to_think_is_asked_to_and_its_thinking_streams_apart(
    alice: User, claude: ChatModel, fake: FakeProvider, connect: Any
) -> None:
    claude.reasoning, claude.reasoning_budget = "on", 2048
    await claude.asave()
    fake.enqueue(Script(reasoning=["Rayleigh ", "scattering."], tokens=["Blue light scatters most."]))
    sock = await connect(alice)
    await sock.send(
        {
            "type": "send",
            "client_id": str(uuid.uuid4()),
            "conversation": None,
            "model": str(claude.id),
            "content": "Why is the sky blue?",
        }
    )
    frames = await sock.recv_until("end")
    body = fake.requests[-1].body
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert body["max_tokens"] > 2048
    deltas = [f for f in frames if f["type"] == "delta"]
    assert "".join(f.get("reasoning", "") for f in deltas) == "Rayleigh scattering."
    assert "".join(f.get("text", "") for f in deltas) == "Blue light scatters most."


def test_the_command_line_sets_reasoning_on_a_model(claude: ChatModel) -> None:
    call_command("provider", "model", "claude", "fake-model", "--reasoning", "on", "--reasoning-budget=3000")
    claude.refresh_from_db()
    assert (claude.reasoning, claude.reasoning_budget) == ("on", 3000)
    call_command("provider", "model", "claude", "fake-model", "--reasoning", "default")
    claude.refresh_from_db()
    assert (claude.reasoning, claude.reasoning_budget, claude.reasoning_effort) == ("", None, "")


def test_the_command_line_refuses_a_budget_anthropic_would_reject(claude: ChatModel) -> None:
    with pytest.raises(CommandError, match="at least 1024"):
        call_command("provider", "model", "claude", "fake-model", "--reasoning=on", "--reasoning-budget=500")
    claude.refresh_from_db()
    assert claude.reasoning == ""  # nothing half-saved


def test_an_admin_sets_reasoning_on_the_model_page(claude: ChatModel) -> None:
    admin = User.objects.create_superuser("root", password="root-password-1")
    client = Client()
    client.force_login(admin)
    url = f"/admin/chat/chatmodel/{claude.pk}/change/"
    page = client.get(url).content.decode()
    for field in ("reasoning", "reasoning_effort", "reasoning_budget"):
        assert f'name="{field}"' in page
    form = {
        "provider": str(claude.provider_id),
        "model_id": "fake-model",
        "display_name": "Claude",
        "enabled": "on",
        "reasoning": "on",
        "reasoning_effort": "low",
        "reasoning_budget": "",
        # What the page pre-fills for the price and the response cache, as a browser sends it.
        "price_currency": "USD",
        "cache_ttl": "0",
        "cache_max_temperature": "0",
    }
    saved = client.post(url, form)
    assert saved.status_code == 302, saved.context["adminform"].form.errors
    claude.refresh_from_db()
    assert claude.reasoning_request() == Reasoning(effort="low")
    refused = client.post(url, {**form, "reasoning": "", "reasoning_effort": "high"})
    assert refused.status_code == 200 and "Set reasoning to On" in refused.content.decode()
