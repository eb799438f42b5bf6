"""What a person can do with messages: regenerate and page through answers, edit and resend,
continue, retry, read the details, copy, and read highlighted code, in real Chromium."""

from __future__ import annotations

from typing import Any

from tests.chromium import log_in
from tests.fakeprovider import FakeProvider, Script
from tests.live import LiveServer

ANSWER = '.message[data-role="assistant"]'
QUESTION = '.message[data-role="user"]'


def ask(page: Any, text: str) -> None:
    page.fill("#prompt", text)
    page.keyboard.press("Enter")


def settled(page: Any, count: int) -> None:
    """Wait until `count` answers are on screen and none is still streaming."""
    page.wait_for_function(
        "n => document.querySelectorAll('.message[data-role=assistant]').length === n"
        " && !document.querySelector('.message[data-status=streaming], .message[data-status=sending]')",
        arg=count,
    )


def bodies(page: Any, selector: str) -> list[str]:
    return [t.strip() for t in page.locator(f"{selector} .message-body").all_inner_texts()]


def test_regenerate_keeps_both_answers_and_the_pager_switches_between_them(
    page: Any, live: LiveServer, fake_server: FakeProvider
) -> None:
    log_in(page, live)
    fake_server.enqueue(Script(tokens=["First", " answer."]))
    ask(page, "Say something")
    settled(page, 1)
    fake_server.enqueue(Script(tokens=["Second", " answer."], tokens_per_second=20))
    page.locator(ANSWER).get_by_role("button", name="Regenerate this answer").click()
    page.locator(f"{ANSWER} .pager-position", has_text="2 / 2").wait_for()
    settled(page, 1)
    assert bodies(page, ANSWER) == ["Second answer."]
    assert page.locator(f"{ANSWER} .pager-position").inner_text() == "2 / 2"
    # The model saw the question once, not the earlier answer.
    assert [m["content"] for m in fake_server.requests[-1].body["messages"]] == ["Say something"]

    page.get_by_role("button", name="Previous version").click()
    assert bodies(page, ANSWER) == ["First answer."]
    assert page.locator(f"{ANSWER} .pager-position").inner_text() == "1 / 2"
    # Keyboard: focus stays on the pager, Enter pages forward again.
    page.get_by_role("button", name="Next version").focus()
    page.keyboard.press("Enter")
    assert bodies(page, ANSWER) == ["Second answer."]

    page.reload()
    page.locator(f"{ANSWER} .pager-position").wait_for()
    assert bodies(page, ANSWER) == ["Second answer."]
    assert page.locator(f"{ANSWER} .pager-position").inner_text() == "2 / 2"
    assert not page.console_errors, page.console_errors


def test_editing_a_question_branches_and_the_old_branch_stays_reachable(
    page: Any, live: LiveServer, fake_server: FakeProvider
) -> None:
    log_in(page, live)
    fake_server.enqueue(Script(tokens=["Paris."]))
    ask(page, "Capital of France?")
    settled(page, 1)
    fake_server.enqueue(Script(tokens=["Rome."]))
    ask(page, "And Italy?")
    settled(page, 2)

    fake_server.enqueue(Script(tokens=["Madrid."]))
    page.locator(QUESTION).nth(1).get_by_role("button", name="Edit message").click()
    editor = page.get_by_role("textbox", name="Edit message")
    assert editor.input_value() == "And Italy?"
    editor.fill("And Spain?")
    editor.press("Enter")
    page.locator(f"{QUESTION} .pager-position", has_text="2 / 2").wait_for()
    settled(page, 2)
    assert bodies(page, QUESTION) == ["Capital of France?", "And Spain?"]
    assert bodies(page, ANSWER) == ["Paris.", "Madrid."]
    assert [m["content"] for m in fake_server.requests[-1].body["messages"]] == [
        "Capital of France?",
        "Paris.",
        "And Spain?",
    ]
    edited = page.locator(QUESTION).nth(1)
    assert edited.locator(".pager-position").inner_text() == "2 / 2"

    edited.get_by_role("button", name="Previous version").click()
    assert bodies(page, QUESTION) == ["Capital of France?", "And Italy?"]
    assert bodies(page, ANSWER) == ["Paris.", "Rome."]


def test_an_answer_cut_at_the_length_limit_continues_in_the_same_bubble(
    page: Any, live: LiveServer, fake_server: FakeProvider
) -> None:
    log_in(page, live)
    fake_server.enqueue(Script(tokens=["Once upon", " a time"], finish_reason="length"))
    ask(page, "Tell a story")
    settled(page, 1)
    assert "length limit" in page.locator(f"{ANSWER} .message-meta").inner_text()
    fake_server.enqueue(Script(tokens=[", the", " end."], tokens_per_second=20))
    page.get_by_role("button", name="Continue this answer").click()
    page.wait_for_selector(f'{ANSWER}[data-status="complete"] >> text=the end.')
    assert bodies(page, ANSWER) == ["Once upon a time, the end."]
    assert page.get_by_role("button", name="Continue this answer").count() == 0


def test_a_failed_answer_says_why_with_a_reference_and_retry_answers_it(
    page: Any, live: LiveServer, fake_server: FakeProvider
) -> None:
    log_in(page, live)
    fake_server.enqueue(Script(status=400, error_body={"error": {"message": "secret upstream detail"}}))
    ask(page, "Hello?")
    page.wait_for_selector(f'{ANSWER}[data-status="error"]')
    meta = page.locator(f"{ANSWER} .message-meta").inner_text()
    assert "ref " in meta and "secret upstream detail" not in meta
    fake_server.enqueue(Script(tokens=["Hello", " again."]))
    page.get_by_role("button", name="Retry this answer").click()
    page.locator(f"{ANSWER} .pager-position", has_text="2 / 2").wait_for()
    settled(page, 1)
    assert bodies(page, ANSWER) == ["Hello again."]
    assert page.locator(f"{ANSWER} .pager-position").inner_text() == "2 / 2"


def test_each_answer_names_its_model_and_shows_its_figures_on_demand(
    page: Any, live: LiveServer, fake_server: FakeProvider
) -> None:
    log_in(page, live)
    fake_server.enqueue(Script(tokens=[f"w{i} " for i in range(20)], tokens_per_second=40, usage=(12, 20)))
    ask(page, "Count")
    settled(page, 1)
    answer = page.locator(ANSWER)
    assert "Fake Model" in answer.locator(".message-meta").inner_text()
    stats = answer.locator(".message-stats p")
    assert not stats.is_visible()
    answer.locator(".message-stats summary").click()
    text = stats.inner_text()
    assert "12 tokens in" in text and "20 tokens out" in text and "first token after" in text
    assert "tokens/s" in text


def test_code_is_highlighted_and_copied_and_tables_links_and_images_render_safely(
    page: Any, live: LiveServer, fake_server: FakeProvider
) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live.url)
    log_in(page, live)
    answer_text = (
        "Here:\n\n```python\ndef add(a, b):\n    return a + b\n```\n\n"
        "| a | b |\n|---|---|\n| 1 | 2 |\n\n"
        "[site](https://example.com) [bad](javascript:alert(1)) ![x](https://example.com/x.png)\n"
    )
    fake_server.enqueue(
        Script(tokens=[answer_text[i : i + 7] for i in range(0, len(answer_text), 7)], tokens_per_second=60)
    )
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    ask(page, "Show me")
    settled(page, 1)
    body = page.locator(f"{ANSWER} .message-body")
    assert body.locator("pre code.hljs .hljs-keyword").first.inner_text() == "def"
    assert body.locator("table td").all_inner_texts() == ["1", "2"]
    link = body.locator("a", has_text="site")
    assert link.get_attribute("rel") == "noopener noreferrer" and link.get_attribute("target") == "_blank"
    assert body.locator("a", has_text="bad").get_attribute("href") is None
    assert body.locator("img").count() == 0 and not [u for u in requests if "x.png" in u]

    body.get_by_role("button", name="Copy python").click()
    assert page.evaluate("navigator.clipboard.readText()") == "def add(a, b):\n    return a + b"
    page.get_by_role("button", name="Copy message").last.click()
    assert page.evaluate("navigator.clipboard.readText()") == answer_text
    assert not page.console_errors, page.console_errors


def test_the_controls_fit_a_phone_screen(page: Any, live: LiveServer, fake_server: FakeProvider) -> None:
    page.set_viewport_size({"width": 375, "height": 700})
    log_in(page, live)
    fake_server.enqueue(Script(tokens=["Short", " answer."], finish_reason="length"))
    ask(page, "Hi")
    settled(page, 1)
    for name in ("Copy message", "Continue this answer", "Regenerate this answer", "Edit message"):
        box = page.get_by_role("button", name=name).last.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 375, (name, box)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375


def test_scrolling_up_while_an_answer_streams_keeps_the_reader_where_they_are(
    page: Any, live: LiveServer, fake_server: FakeProvider
) -> None:
    page.set_viewport_size({"width": 900, "height": 500})
    log_in(page, live)
    fake_server.enqueue(Script(tokens=[f"line {i}\n\n" for i in range(400)], tokens_per_second=80))
    ask(page, "Long please")
    page.wait_for_function(
        "() => { const m = document.getElementById('messages'); return m.scrollHeight > m.clientHeight * 3 }"
    )
    # Following: the list is at the bottom while it grows.
    assert (
        page.evaluate(
            "() => { const m = document.getElementById('messages'); return m.scrollHeight - m.scrollTop - m.clientHeight }"
        )
        < 60
    )
    page.evaluate("document.getElementById('messages').scrollTop = 100")
    page.wait_for_timeout(600)  # dozens of frames of new text
    assert page.evaluate("document.getElementById('messages').scrollTop") == 100
    assert page.locator(f'{ANSWER}[data-status="streaming"]').count() == 1
    page.click("#stop")
