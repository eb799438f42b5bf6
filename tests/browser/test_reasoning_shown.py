"""A model set to think, in every family: asked in its own shape, its thinking shown apart on the page."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.chromium import log_in
from tests.fakeprovider import FakeProvider, Script
from tests.live import LiveServer

# family: (how the provider is added, the model's name in the picker, what the request must carry)
FAMILIES = {
    "openai": ("family='openai', preset='vllm', base_url=URL + '/v1'", "Thinker (vLLM)", ("reasoning_effort", "high")),
    "anthropic": ("family='anthropic', base_url=URL", "Thinker (Claude)", ("thinking", {"type": "adaptive"})),
    "gemini": ("family='gemini', base_url=URL", "Thinker (Gemini)", ("generationConfig", None)),
    "ollama": ("family='ollama', base_url=URL", "Thinker (Ollama)", ("think", "high")),
}
ANSWER = '.message[data-role="assistant"]'


@pytest.fixture(scope="module")
def live(fake_server: FakeProvider) -> Iterator[LiveServer]:
    server = LiveServer().start()
    server.create_user("alice", "alice-password-1")
    script = ["from chat.models import ChatModel, Provider", f"URL = {fake_server.url!r}"]
    for family, (fields, name, _) in FAMILIES.items():
        script += [
            f"p = Provider.objects.create(name={family!r}, label={family.title()!r}, {fields})",
            (
                f"ChatModel.objects.create(provider=p, model_id='fake-model', display_name={name!r},"
                " reasoning='on', reasoning_effort='high')"
            ),
        ]
    server.manage("shell", "--no-imports", "-c", "\n".join(script))
    yield server
    server.stop()


@pytest.mark.parametrize("family", list(FAMILIES))
def test_the_thinking_of_every_family_is_shown_apart_from_the_answer(
    page: Any, live: LiveServer, fake_server: FakeProvider, family: str
) -> None:
    _, name, (field, value) = FAMILIES[family]
    fake_server.reset()
    fake_server.enqueue(Script(reasoning=["Weighing ", f"the {family} way."], tokens=["The answer", "."]))
    log_in(page, live)
    page.select_option("#model", label=name)
    page.fill("#prompt", "Think first, then answer.")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelector('.message[data-role=assistant][data-status=complete]')")
    answer = page.locator(ANSWER).last
    thinking = answer.locator(".thinking")
    assert thinking.is_visible() and thinking.locator("summary").inner_text() == "Thinking"
    thinking.locator("summary").click()  # opens the details
    assert thinking.locator(".thinking-body").inner_text() == f"Weighing the {family} way."
    assert answer.locator(".message-body").inner_text().strip() == "The answer."
    sent = fake_server.requests[-1].body[field]
    if family == "gemini":
        assert sent["thinkingConfig"] == {"includeThoughts": True, "thinkingLevel": "high"}
    else:
        assert sent == value
    if os.environ.get("PARLEY_SCREENSHOTS"):
        page.screenshot(path=os.path.join(os.environ["PARLEY_SCREENSHOTS"], f"reasoning-{family}.png"))
    page.reload()  # it was saved with the answer
    saved = page.locator(ANSWER).last.locator(".thinking-body")
    saved.wait_for(state="attached")
    assert saved.text_content() == f"Weighing the {family} way."
