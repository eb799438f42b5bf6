"""Settings, themes, per-chat settings, export/import, the layout on a phone, and axe-core
checks, in real Chromium against a real Daphne."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.chromium import log_in
from tests.fakeprovider import FakeProvider, Script
from tests.live import ROOT, LiveServer

AXE = next((ROOT / "static" / "vendor").glob("axe-core-*/axe.min.js"))


@pytest.fixture
def a11y_page(browser: Any) -> Iterator[Any]:
    # axe is injected as an inline script, which the page's CSP rightly refuses; only here,
    # where the CSP is not what is being tested, is it bypassed.
    context = browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True)
    yield context.new_page()
    context.close()


def serious_violations(page: Any) -> list[str]:
    page.add_script_tag(path=str(AXE))
    results = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations")
    return [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}"
        for v in results
        if v["impact"] in ("serious", "critical")
    ]


def theme_colors(page: Any) -> tuple[str, str]:
    return page.evaluate(
        "() => [getComputedStyle(document.body).backgroundColor, getComputedStyle(document.body).color]"
    )


def test_the_theme_switch_cycles_and_is_remembered_on_the_server_and_in_the_browser(
    page: Any, live: LiveServer
) -> None:
    page.emulate_media(color_scheme="light")
    log_in(page, live)
    assert theme_colors(page)[0] == "rgb(255, 255, 255)"
    toggle = page.get_by_role("button", name="Theme: follow the system")
    toggle.click()  # -> light
    page.get_by_role("button", name="Theme: light").click()  # -> dark
    page.get_by_role("button", name="Theme: dark").wait_for()
    assert theme_colors(page)[0] == "rgb(22, 24, 28)"
    page.wait_for_timeout(200)  # the save is a fire-and-forget POST
    page.reload()
    assert page.locator("html").get_attribute("data-theme") == "dark"
    assert theme_colors(page)[0] == "rgb(22, 24, 28)"
    # The sign-in page has no user: it follows the browser's memory of the choice.
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/accounts/login/**")
    page.wait_for_function("() => document.documentElement.dataset.theme === 'dark'")
    assert theme_colors(page)[0] == "rgb(22, 24, 28)"


def test_the_theme_follows_the_system_when_not_chosen(page: Any, live: LiveServer) -> None:
    page.emulate_media(color_scheme="dark")
    log_in(page, live)
    assert theme_colors(page)[0] == "rgb(22, 24, 28)"
    page.emulate_media(color_scheme="light")
    assert theme_colors(page)[0] == "rgb(255, 255, 255)"


def test_user_settings_set_the_display_name_default_system_prompt_and_model(
    page: Any, live: LiveServer, fake_server: FakeProvider
) -> None:
    fake_server.enqueue(Script(tokens=["Bonjour"]))
    log_in(page, live)
    page.get_by_role("link", name="Settings").click()
    page.get_by_label("Display name").fill("Alice Liddell")
    page.get_by_label("Dark").check()
    page.get_by_label("Default model").select_option(label="Fake Model (Fake Lab)")
    page.get_by_label("Default system prompt").fill("Answer in French.")
    page.get_by_role("button", name="Save settings").click()
    page.get_by_text("Settings saved.").wait_for()
    assert page.locator("html").get_attribute("data-theme") == "dark"
    assert page.locator(".user-name").inner_text() == "Alice Liddell"
    assert page.get_by_role("link", name="Change password").is_visible()

    page.get_by_role("link", name="Back to chat").click()
    page.wait_for_url("**/chat/")  # and its scripts, or Enter would submit the bare form
    page.fill("#prompt", "Hello")
    page.keyboard.press("Enter")
    page.wait_for_selector('.message[data-role="assistant"][data-status="complete"]')
    body = fake_server.requests[-1].body
    assert body["messages"][0] == {"role": "system", "content": "Answer in French."}


def test_chat_settings_travel_with_each_message_and_are_kept_per_conversation(
    page: Any, live: LiveServer, fake_server: FakeProvider
) -> None:
    fake_server.enqueue(Script(tokens=["One"]))
    fake_server.enqueue(Script(tokens=["Two"]))
    log_in(page, live)
    page.get_by_role("button", name="Chat settings").click()
    dialog = page.get_by_role("dialog", name="Chat settings")
    assert dialog.get_by_label("System prompt").evaluate("el => el === document.activeElement")
    dialog.get_by_label("System prompt").fill("Be terse.")
    dialog.get_by_label("Temperature").fill("5")
    dialog.get_by_role("button", name="Save").click()
    assert dialog.is_visible()  # 5 is out of range: the browser says so and nothing is saved
    dialog.get_by_label("Temperature").fill("0.3")
    dialog.get_by_label("Max tokens").fill("99")
    dialog.get_by_role("button", name="Save").click()
    dialog.wait_for(state="hidden")

    page.fill("#prompt", "First")
    page.keyboard.press("Enter")
    page.wait_for_selector('.message[data-role="assistant"][data-status="complete"]')
    first = fake_server.requests[-1].body
    assert first["messages"][0] == {"role": "system", "content": "Be terse."}
    assert first["temperature"] == 0.3 and first.get("max_tokens", first.get("max_completion_tokens")) == 99

    page.wait_for_timeout(300)  # the new chat's settings are saved after its ack
    page.reload()
    page.get_by_role("button", name="Chat settings").click()
    assert dialog.get_by_label("Temperature").input_value() == "0.3"
    assert dialog.get_by_label("Max tokens").input_value() == "99"
    assert dialog.get_by_label("System prompt").input_value() == "Be terse."
    dialog.get_by_label("Max tokens").fill("")
    dialog.get_by_role("button", name="Save").click()
    dialog.wait_for(state="hidden")
    page.fill("#prompt", "Second")
    page.keyboard.press("Enter")
    page.locator('.message[data-role="assistant"][data-status="complete"]').nth(1).wait_for()
    second = fake_server.requests[-1].body
    assert second["temperature"] == 0.3 and "max_tokens" not in second and "max_completion_tokens" not in second


def test_a_conversation_is_exported_and_imported_back_from_the_settings_page(
    page: Any, live: LiveServer, fake_server: FakeProvider, tmp_path: Path
) -> None:
    fake_server.enqueue(Script(tokens=["Nine", " minutes."]))
    log_in(page, live)
    page.fill("#prompt", "How long to boil an egg?")
    page.keyboard.press("Enter")
    page.wait_for_selector('.message[data-role="assistant"][data-status="complete"]')

    page.get_by_role("button", name="Options for How long to boil an egg?").click()
    with page.expect_download() as md:
        page.get_by_role("menuitem", name="Export as Markdown").click()
    markdown = Path(md.value.path()).read_text()
    assert markdown.startswith("# How long to boil an egg?") and "Nine minutes." in markdown

    page.get_by_role("button", name="Options for How long to boil an egg?").click()
    with page.expect_download() as js:
        page.get_by_role("menuitem", name="Export as JSON").click()
    exported = tmp_path / "egg.json"
    js.value.save_as(exported)
    assert json.loads(exported.read_text())["messages"][1]["content"] == "Nine minutes."

    page.goto(live.url + "/settings/")
    with page.expect_download() as everything:
        page.get_by_role("link", name="Download all my data (JSON)").click()
    assert json.loads(Path(everything.value.path()).read_text())["account"]["username"] == "alice"

    broken = tmp_path / "broken.json"
    broken.write_text('{"format": "parley.conversation", "version": 1, "conversation": {}, "messages": []}')
    page.get_by_label("Import a conversation").set_input_files(str(broken))
    page.get_by_role("button", name="Import", exact=True).click()
    assert "`messages` must be a non-empty list." in page.get_by_role("alert").inner_text()

    page.get_by_label("Import a conversation").set_input_files(str(exported))
    page.get_by_role("button", name="Import", exact=True).click()
    page.wait_for_url("**/chat/*-*/")
    page.locator(".message-body").nth(1).wait_for()
    assert page.locator(".message-body").nth(1).inner_text().strip() == "Nine minutes."
    assert page.locator("#conversations a.conversation").count() == 2


def test_the_sidebar_collapses_on_a_desktop_and_slides_over_on_a_phone(browser: Any, live: LiveServer) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    log_in(page, live)
    sidebar = page.locator("#sidebar")
    toggle = page.get_by_role("button", name="Conversations")
    assert sidebar.is_visible() and toggle.get_attribute("aria-expanded") == "true"
    toggle.click()
    assert sidebar.is_hidden() and toggle.get_attribute("aria-expanded") == "false"
    page.keyboard.press("Control+k")  # search brings it back
    assert sidebar.is_visible() and page.locator("#search").evaluate("el => el === document.activeElement")
    context.close()

    phone = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True)
    page = phone.new_page()
    log_in(page, live)
    toggle = page.get_by_role("button", name="Conversations")
    assert toggle.get_attribute("aria-expanded") == "false"
    page.wait_for_function("() => getComputedStyle(document.querySelector('#sidebar')).visibility === 'hidden'")
    toggle.click()
    page.wait_for_function("() => getComputedStyle(document.querySelector('#sidebar')).visibility === 'visible'")
    assert page.get_by_role("link", name="New chat").is_visible()
    assert page.locator("#new-chat").evaluate("el => el === document.activeElement")  # focus moved in
    page.keyboard.press("Escape")
    page.wait_for_function("() => getComputedStyle(document.querySelector('#sidebar')).visibility === 'hidden'")
    assert page.locator("#prompt").evaluate("el => el === document.activeElement")  # and out again
    assert page.evaluate("() => document.documentElement.scrollWidth <= innerWidth")
    phone.close()


def test_the_model_picker_groups_models_by_provider(page: Any, live: LiveServer, fake_server: FakeProvider) -> None:
    live.manage(
        "provider",
        "add",
        "other",
        "--kind",
        "openai",
        "--base-url",
        fake_server.url + "/v1",
        "--label",
        "Other Lab",
        "--model",
        "other-model=Other Model",
    )
    log_in(page, live)
    groups = page.eval_on_selector_all(
        "#model optgroup", "gs => gs.map(g => [g.label, [...g.children].map(o => o.textContent)])"
    )
    assert ["Fake Lab", ["Fake Model"]] in groups and ["Other Lab", ["Other Model"]] in groups
    assert page.locator("#model").evaluate("s => s.selectedOptions[0].textContent") == "Fake Model"

    # The model picked in a conversation becomes its model.
    fake_server.enqueue(Script(tokens=["Hi"]))
    page.fill("#prompt", "Hello")
    page.keyboard.press("Enter")
    page.wait_for_selector('.message[data-role="assistant"][data-status="complete"]')
    with page.expect_response("**/edit/"):
        page.locator("#model").select_option(label="Other Model")
    page.reload()
    assert page.locator("#model").evaluate("s => s.selectedOptions[0].textContent") == "Other Model"


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_no_serious_accessibility_violations_on_the_chat_login_and_settings_pages(
    a11y_page: Any, live: LiveServer, fake_server: FakeProvider, scheme: str
) -> None:
    page = a11y_page
    page.emulate_media(color_scheme=scheme)
    page.goto(live.url + "/accounts/login/")
    assert serious_violations(page) == []
    log_in(page, live)
    fake_server.enqueue(Script(tokens=["A **bold** answer with `code`."]))
    page.fill("#prompt", "Hello")
    page.keyboard.press("Enter")
    page.wait_for_selector('.message[data-role="assistant"][data-status="complete"]')
    assert serious_violations(page) == []
    page.get_by_role("button", name="Options for Hello").click()
    assert serious_violations(page) == []  # with the menu open
    page.keyboard.press("Escape")
    page.keyboard.press("Control+/")
    assert serious_violations(page) == []  # with the help dialog open
    page.goto(live.url + "/settings/")
    assert serious_violations(page) == []
