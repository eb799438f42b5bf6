"""Attaching files as a person would, in real Chromium against a real Daphne process:
by button, paste and drop; what each family is sent; who may fetch a file; every refusal."""

from __future__ import annotations

import base64
import io
import json
import sqlite3
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.chromium import log_in
from tests.fakeprovider import FakeProvider, Script, wire
from tests.files import noisy_png, pdf, png
from tests.live import LiveServer

FAMILIES = list(wire.FAMILIES)
PNG = png((120, 80))
PDF = pdf("Revenue rose 12 percent")


@pytest.fixture(scope="module")
def module_live(fake_server: FakeProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """alice and bob; a model that sees images for every family, and one that does not."""
    files = tmp_path_factory.mktemp("attachments")
    server = LiveServer(
        {
            "PARLEY_USER_MESSAGES_PER_MINUTE": "0",
            "PARLEY_ATTACHMENTS_DIR": str(files),
            "PARLEY_ATTACHMENT_MAX_BYTES": "2000000",
        }
    ).start()
    server.create_user("alice", "alice-password-1")
    server.create_user("bob", "bob-password-1")
    for family in FAMILIES:
        server.manage(
            "provider",
            "add",
            f"fake-{family}",
            "--kind",
            family,
            "--base-url",
            fake_server.url + wire.FAMILIES[family].base_suffix,
            "--label",
            f"Fake {family}",
            "--model",
            f"fake-model=Sees {family}",
        )
        server.manage("provider", "model", f"fake-{family}", "fake-model", "--vision", "yes")
    server.manage(
        "provider",
        "add",
        "blind",
        "--kind",
        "openai",
        "--base-url",
        fake_server.url + "/v1",
        "--model",
        "blind-model=Blind Model",
        "--default",
        "blind-model",
    )
    server.manage("provider", "model", "blind", "blind-model", "--vision", "no")
    server.snapshot()
    yield server
    server.stop()


def pick(page: Any, label: str) -> None:
    page.select_option("#model", label=label)


def attach(page: Any, *files: tuple[str, str, bytes]) -> None:
    page.set_input_files("#attach-input", [{"name": n, "mimeType": t, "buffer": b} for n, t, b in files])


def rows(live: LiveServer, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(live.env["SQLITE_PATH"]) as db:
        return list(db.execute(sql))


def stored(live: LiveServer) -> list[str]:
    root = Path(live.env["PARLEY_ATTACHMENTS_DIR"])
    return [str(p) for p in root.rglob("*") if p.is_file()]


def wait_ready(page: Any, count: int) -> None:
    page.wait_for_function(
        "n => document.querySelectorAll('#tray .tray-item[data-state=ready]').length === n", arg=count
    )


@pytest.mark.parametrize("family", FAMILIES)
def test_an_image_and_a_pdf_go_to_each_family_in_its_own_shape_and_show_in_the_message(
    page: Any, live: LiveServer, fake_server: FakeProvider, family: str
) -> None:
    log_in(page, live)
    pick(page, f"Sees {family}")
    fake_server.set_default(Script(echo=True))
    attach(page, ("chart.png", "image/png", PNG), ("report.pdf", "application/pdf", PDF))
    wait_ready(page, 2)
    page.fill("#prompt", "What do these show?")
    page.keyboard.press("Enter")
    page.wait_for_selector('.message[data-role="assistant"][data-status="complete"]')
    assert page.locator('.message[data-role="assistant"] .message-body').inner_text().strip() == "What do these show?"

    body = fake_server.requests[-1].body
    seen = wire.attachments_seen(family, body)
    if family in ("anthropic", "gemini"):  # both read PDFs themselves
        assert seen == ["image/png", "application/pdf"]
    else:
        assert seen == (["image"] if family == "ollama" else ["image/png"])
        assert "Revenue rose 12 percent" in json.dumps(body)
    sent = {
        "openai": lambda b: b["messages"][-1]["content"][0]["image_url"]["url"].split(",", 1)[1],
        "anthropic": lambda b: b["messages"][-1]["content"][0]["source"]["data"],
        "gemini": lambda b: b["contents"][-1]["parts"][0]["inline_data"]["data"],
        "ollama": lambda b: b["messages"][-1]["images"][0],
    }[family](body)
    assert base64.b64decode(sent).startswith(b"\x89PNG")

    question = page.locator('.message[data-role="user"]')
    thumb = question.locator(".file-thumb img")
    thumb.wait_for()
    page.wait_for_function("() => document.querySelector('.file-thumb img').naturalWidth === 120")
    href = question.locator(".file-thumb").get_attribute("href")
    assert href and href.startswith("/api/attachments/")
    chip = question.locator("a.file-chip")
    assert chip.inner_text().startswith("report.pdf")
    with page.expect_download() as download:
        chip.click()
    assert Path(download.value.path()).read_bytes() == PDF

    page.reload()  # saved with the message: still there
    page.locator('.message[data-role="user"] .file-thumb img').wait_for()
    assert not [e for e in page.console_errors if "Content Security Policy" in e], page.console_errors


def test_another_user_cannot_fetch_a_file_by_its_id(page: Any, browser: Any, live: LiveServer) -> None:
    log_in(page, live)
    pick(page, "Sees openai")
    attach(page, ("chart.png", "image/png", PNG))
    wait_ready(page, 1)
    file_id = rows(live, "select id from chat_attachment")[0][0]
    url = f"{live.url}/api/attachments/{file_id[:8]}-{file_id[8:12]}-{file_id[12:16]}-{file_id[16:20]}-{file_id[20:]}/"
    assert page.request.get(url).status == 200
    other = browser.new_context()
    bob = other.new_page()
    log_in(bob, live, "bob", "bob-password-1")
    assert bob.request.get(url).status == 404
    assert bob.request.get(url + "text/").status == 404
    other.close()


def test_a_model_that_cannot_see_says_so_before_anything_is_uploaded(
    page: Any, live: LiveServer, fake_server: FakeProvider
) -> None:
    log_in(page, live)
    pick(page, "Blind Model")
    uploads: list[str] = []
    page.on("request", lambda r: uploads.append(r.url) if "/api/attachments/" in r.url else None)
    attach(page, ("chart.png", "image/png", PNG))
    note = page.locator("#tray-note")
    note.wait_for()
    assert note.inner_text() == (
        "Blind Model cannot take images. Pick a model that can (Sees anthropic, "
        "Sees gemini, Sees ollama or 1 more) to attach chart.png."
    )
    assert uploads == [] and rows(live, "select count(*) from chat_attachment") == [(0,)]
    # Attached for a model that sees, then switched to one that does not: Send waits, and says why.
    pick(page, "Sees openai")
    attach(page, ("chart.png", "image/png", PNG))
    wait_ready(page, 1)
    pick(page, "Blind Model")
    assert "Blind Model cannot take images: remove chart.png, or pick a model that can (" in note.inner_text()
    assert page.locator("#send").is_disabled()
    with page.expect_response(lambda r: r.url.endswith("/delete/")):
        page.get_by_role("button", name="Remove chart.png").click()
    page.wait_for_function("() => !document.querySelector('#send').disabled")
    assert rows(live, "select count(*) from chat_attachment") == [(0,)]  # removed on the server too


def test_a_pasted_screenshot_and_a_dropped_file_are_attached(page: Any, live: LiveServer) -> None:
    log_in(page, live)
    pick(page, "Sees openai")
    data = list(PNG)
    page.evaluate(
        """bytes => {
        const transfer = new DataTransfer();
        transfer.items.add(new File([new Uint8Array(bytes)], "image.png", {type: "image/png"}));
        const paste = new ClipboardEvent("paste", {clipboardData: transfer, bubbles: true, cancelable: true});
        document.querySelector("#prompt").dispatchEvent(paste);
    }""",
        data,
    )
    page.evaluate("""() => {
        const transfer = new DataTransfer();
        transfer.items.add(new File(["# Notes"], "notes.md", {type: "text/markdown"}));
        const composer = document.querySelector("#composer");
        composer.dispatchEvent(new DragEvent("dragover", {dataTransfer: transfer, bubbles: true, cancelable: true}));
        composer.dispatchEvent(new DragEvent("drop", {dataTransfer: transfer, bubbles: true, cancelable: true}));
    }""")
    wait_ready(page, 2)
    assert [n[0] for n in rows(live, "select name from chat_attachment order by created")] == ["image.png", "notes.md"]
    assert page.locator("#tray .tray-thumb").count() == 1


@pytest.mark.parametrize(
    ("name", "kind", "data", "words"),
    [
        ("huge.png", "image/png", noisy_png(2_400_000), "files may be at most 2.0 MB"),
        ("photo.png", "image/png", b"%PDF-1.4 this is no image", "named like an image but its content is a PDF"),
        ("broken.png", "image/png", PNG[:70], "could not be read as an image"),
    ],
)
def test_an_oversized_mistyped_or_malformed_upload_gets_a_clear_error_and_nothing_is_kept(
    page: Any, live: LiveServer, name: str, kind: str, data: bytes, words: str
) -> None:
    log_in(page, live)
    pick(page, "Sees openai")
    before = stored(live)
    attach(page, (name, kind, data))  # an oversized file is refused by the page itself, unsent
    note = page.locator("#tray-note")
    note.wait_for()
    assert words in note.inner_text()
    assert rows(live, "select count(*) from chat_attachment") == [(0,)] and stored(live) == before


def test_an_oversized_upload_refused_by_the_server_says_why(page: Any, live: LiveServer) -> None:
    """The page's own size check aside, the server's refusal reaches the user in plain words."""
    log_in(page, live)
    status = page.evaluate(
        """async (size) => {
        const form = new FormData();
        form.append("file", new File([new Uint8Array(size)], "big.txt"));
        const token = document.cookie.match(/csrftoken=([^;]+)/)?.[1] ?? "";
        const r = await fetch("/api/attachments/", {method: "POST", body: form, headers: {"X-CSRFToken": token}});
        return [r.status, (await r.json()).error];
    }""",
        2_100_000,
    )
    assert status == [413, "This upload is 2.1 MB; files may be at most 2.0 MB."]
    assert rows(live, "select count(*) from chat_attachment") == [(0,)]


def test_files_survive_into_the_export_zip(page: Any, live: LiveServer, fake_server: FakeProvider) -> None:
    log_in(page, live)
    pick(page, "Sees openai")
    attach(page, ("chart.png", "image/png", PNG))
    wait_ready(page, 1)
    page.fill("#prompt", "Keep this")
    page.keyboard.press("Enter")
    page.wait_for_selector('.message[data-role="assistant"][data-status="complete"]')
    conversation = page.url.rstrip("/").rsplit("/", 1)[1]
    response = page.request.get(f"{live.url}/api/conversations/{conversation}/export.zip")
    assert response.status == 200 and response.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.body()))
    [member] = [n for n in archive.namelist() if n.startswith("attachments/")]
    assert member.endswith("/chart.png") and archive.read(member).startswith(b"\x89PNG")
    assert "![chart.png](attachments/" in archive.read("conversation.md").decode()
