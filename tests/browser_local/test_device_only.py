"""A "This device only" chat lives in this browser: it is listed, survives a reload, can be
renamed, exported and deleted, and nothing of it ever reaches the server (every request and
WebSocket frame the page and its workers send is recorded)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.browser_local.pages import ANSWER, QUESTION, Traffic, ask, consent_given, finished, saved_messages
from tests.chromium import log_in
from tests.live import LiveServer

SECRET = "zebra-7731"


def device_row(page: Any) -> Any:
    return page.locator("#conversations li.on-device")


def test_a_device_only_chat_is_a_thread_that_survives_reload_and_never_reaches_the_server(
    context: Any, server: LiveServer
) -> None:
    page = context.new_page()
    page.goto(server.url + "/chat/")
    if "/accounts/login/" in page.url:
        log_in(page, server)
    consent_given(page)
    traffic = Traffic(page)  # from here on, everything the page sends
    page.check("#device-only")
    ask(page, f"Name a colour of the {SECRET} sky.")
    finished(page, 1)
    page.wait_for_url(re.compile(r"/chat/#device-[0-9a-f-]{36}$"))
    device_id = page.url.split("#", 1)[1]
    ask(page, "And of the sea?")
    finished(page, 2)
    assert device_row(page).count() == 1
    assert "on this device" in device_row(page).inner_text() and SECRET in device_row(page).inner_text()
    assert page.is_disabled("#device-only") and page.is_checked("#device-only")

    page.reload()
    page.locator(ANSWER).nth(1).wait_for()
    assert page.locator(".message").count() == 4 and page.locator(".pager").count() == 0
    assert SECRET in page.locator(QUESTION).first.inner_text()
    assert device_row(page).locator("a.conversation").get_attribute("aria-current") == "page"

    # Rename and export from the row's menu: both happen in the browser.
    device_row(page).locator("button.row-menu").click()
    page.click('#conversation-menu [data-action="rename"]')
    page.fill("#conversations input.rename", "Skies and seas")
    page.keyboard.press("Enter")
    device_row(page).locator("a.conversation", has_text="Skies and seas").wait_for()
    device_row(page).locator("button.row-menu").click()
    with page.expect_download() as download:
        page.click('#conversation-menu [data-file="export.md"]')
    exported = Path(download.value.path()).read_text(encoding="utf-8")
    assert exported.startswith("# Skies and seas") and SECRET in exported

    page.reload()
    device_row(page).locator("a.conversation", has_text="Skies and seas").wait_for()
    device_row(page).locator("button.row-menu").click()
    page.click('#conversation-menu [data-action="delete"]')
    page.wait_for_function("() => !document.querySelector('#conversations li.on-device')")
    page.reload()
    page.locator("#prompt").wait_for()
    page.wait_for_timeout(500)  # the IndexedDB listing is asynchronous
    assert device_row(page).count() == 0

    assert traffic.mentions(SECRET) == [] and traffic.mentions(device_id) == []
    assert traffic.mentions("Skies and seas") == []
    assert [r for r in traffic.requests if r[0] not in ("GET", "HEAD")] == []  # nothing written anywhere
    assert set(traffic.frame_types()) <= {"ping"}
    assert traffic.frames or traffic.requests  # the recorder did see the page's traffic
    page.close()


def test_a_device_only_chat_reads_a_text_file_here_and_refuses_what_needs_the_server(
    context: Any, server: LiveServer
) -> None:
    """Issue 16: an in-browser model gets documents as text; a chat kept on this device never
    uploads, so a text file is read in the page, and an image or a PDF is refused in words."""
    page = context.new_page()
    page.goto(server.url + "/chat/")
    if "/accounts/login/" in page.url:
        log_in(page, server)
    consent_given(page)
    traffic = Traffic(page)
    page.check("#device-only")
    page.set_input_files("#attach-input", [{"name": "photo.png", "mimeType": "image/png", "buffer": b"\x89PNG\r\n"}])
    assert "runs in your browser and cannot see images" in page.locator("#tray-note").inner_text()
    page.set_input_files(
        "#attach-input", [{"name": "report.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4"}]
    )
    assert "kept on this device only, so report.pdf cannot go to the server" in page.locator("#tray-note").inner_text()
    page.set_input_files(
        "#attach-input",
        [{"name": "notes.txt", "mimeType": "text/plain", "buffer": f"The password is {SECRET}.".encode()}],
    )
    page.wait_for_function("() => document.querySelector('#tray .tray-item[data-state=ready]')")
    ask(page, "What is the password?")
    finished(page, 1)
    chip = page.locator(f"{QUESTION} .file-chip")
    assert chip.inner_text().startswith("notes.txt")
    page.reload()
    page.locator(f"{QUESTION} .file-chip").wait_for()  # kept with the message in IndexedDB
    assert traffic.mentions(SECRET) == [] and [r for r in traffic.requests if "/api/attachments/" in r[1]] == []
    page.close()


def test_an_in_browser_model_in_a_saved_chat_reads_an_uploaded_documents_text(context: Any, server: LiveServer) -> None:
    """Not kept on this device: the file is uploaded and read by the server, and the page hands
    its text to the in-browser model (GET …/text/); the saved question keeps the file."""
    page = context.new_page()
    page.goto(server.url + "/chat/")
    if "/accounts/login/" in page.url:
        log_in(page, server)
    consent_given(page)
    traffic = Traffic(page)
    page.set_input_files(
        "#attach-input", [{"name": "plan.md", "mimeType": "text/markdown", "buffer": b"# Plan\nShip on Friday."}]
    )
    page.wait_for_function("() => document.querySelector('#tray .tray-item[data-state=ready]')")
    ask(page, "When do we ship?")
    finished(page, 1)
    page.wait_for_url(re.compile(r"/chat/[0-9a-f-]{36}/$"))
    conversation = page.url.rstrip("/").rsplit("/", 1)[1]
    question = saved_messages(page, conversation)[0]
    assert [a["name"] for a in question["attachments"]] == ["plan.md"]
    texts = [u for m, u, _ in traffic.requests if m == "GET" and u.endswith("/text/")]
    assert texts == [f"{server.url}/api/attachments/{question['attachments'][0]['id']}/text/"]
    assert traffic.posts("/api/browser-models/exchanges/")[0]["attachments"] == [question["attachments"][0]["id"]]
    page.close()
