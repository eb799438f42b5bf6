"""Uploading, fetching and removing attachments over HTTP, as the page does."""

from __future__ import annotations

import io
import os
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from PIL import Image

from chat.models import Attachment
from tests.files import image, noisy_png, pdf, png


def client_for(user: User, csrf: bool = False) -> Client:
    client = Client(enforce_csrf_checks=csrf)
    client.force_login(user)
    return client


def upload(client: Client, name: str, data: bytes) -> Any:
    return client.post("/api/attachments/", {"file": _named(name, data)})


def _named(name: str, data: bytes) -> io.BytesIO:
    f = io.BytesIO(data)
    f.name = name
    return f


def stored_files() -> list[str]:
    root = settings.PARLEY_ATTACHMENTS_DIR
    return [os.path.join(d, f) for d, _, names in os.walk(root) for f in names]


@pytest.fixture(autouse=True)
def _empty_store(transactional_db: None) -> None:
    for path in stored_files():
        os.remove(path)


def test_an_image_is_kept_reencoded_and_shown_only_to_its_owner(alice: User, bob: User) -> None:
    response = upload(client_for(alice), "shot.png", png((640, 480)))
    assert response.status_code == 201
    meta = response.json()["attachment"]
    assert meta | {"id": "x", "size": 0} == {
        "id": "x",
        "name": "shot.png",
        "kind": "image",
        "media_type": "image/png",
        "size": 0,
        "width": 640,
        "height": 480,
    }
    got = client_for(alice).get(f"/api/attachments/{meta['id']}/")
    assert got.status_code == 200 and got["Content-Type"] == "image/png"
    assert got["X-Content-Type-Options"] == "nosniff" and "attachment" not in got.get("Content-Disposition", "")
    assert Image.open(io.BytesIO(b"".join(got.streaming_content))).size == (640, 480)
    assert client_for(bob).get(f"/api/attachments/{meta['id']}/").status_code == 404
    assert client_for(bob).get(f"/api/attachments/{meta['id']}/text/").status_code == 404
    assert Client().get(f"/api/attachments/{meta['id']}/").status_code == 302  # to the login page


def test_a_pdf_is_read_to_text_and_downloaded_as_an_attachment(alice: User) -> None:
    client = client_for(alice)
    meta = upload(client, "report.pdf", pdf("Revenue rose", "Costs fell")).json()["attachment"]
    assert (meta["kind"], meta["media_type"], meta["pages"]) == ("document", "application/pdf", 2)
    got = client.get(f"/api/attachments/{meta['id']}/")
    assert (
        got["Content-Disposition"].startswith("attachment;") and 'filename="report.pdf"' in got["Content-Disposition"]
    )
    assert got["X-Content-Type-Options"] == "nosniff"
    assert client.get(f"/api/attachments/{meta['id']}/text/").json()["text"] == "Revenue rose\n\nCosts fell"


@pytest.mark.parametrize(
    ("name", "data", "kind"),
    [
        ("notes.md", "# Title\nsome *markdown* ✓".encode(), "text/markdown"),
        ("table.csv", b"a,b\n1,2\n", "text/csv"),
        ("data.json", b'{"a": 1}', "application/json"),
        ("main.rs", b"fn main() {}\n", "text/plain"),
    ],
)
def test_text_documents_of_every_kind_are_taken(alice: User, name: str, data: bytes, kind: str) -> None:
    meta = upload(client_for(alice), name, data).json()["attachment"]
    assert (meta["kind"], meta["media_type"], meta["chars"]) == ("document", kind, len(data.decode()))


def test_metadata_is_stripped_when_an_image_is_reencoded(alice: User) -> None:
    exif = Image.Exif()
    exif[0x010F] = "SpyCam"  # Make
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (1, 2, 3)).save(out, format="JPEG", exif=exif.tobytes())
    meta = upload(client_for(alice), "photo.jpg", out.getvalue()).json()["attachment"]
    kept = b"".join(client_for(alice).get(f"/api/attachments/{meta['id']}/").streaming_content)
    assert b"SpyCam" in out.getvalue() and b"SpyCam" not in kept


def test_a_huge_image_is_shrunk_to_the_longest_edge_kept(alice: User, settings: Any) -> None:
    settings.PARLEY_IMAGE_MAX_EDGE = 100
    meta = upload(client_for(alice), "wide.png", image("PNG", (400, 200))).json()["attachment"]
    assert (meta["width"], meta["height"]) == (100, 50)


@pytest.mark.parametrize(
    ("name", "data", "words"),
    [
        ("photo.png", b"%PDF-1.4 not an image", "content is a PDF"),
        ("photo.png", b"just some text", "not a PNG image"),
        ("report.pdf", png(), "content is an image"),
        ("report.pdf", b"plain words", "not a PDF"),
        ("notes.txt", png(), "content is an image"),
        ("archive.zip", b"PK\x03\x04\x00\x00binary", ".zip files are not taken"),
        ("blob.bin", b"\x00\x01\x02\x03binary", "not a text file"),
    ],
)
def test_a_mistyped_file_is_refused_by_its_content_and_nothing_is_kept(
    alice: User, name: str, data: bytes, words: str
) -> None:
    response = upload(client_for(alice), name, data)
    assert response.status_code == 400 and words in response.json()["error"]
    assert Attachment.objects.count() == 0 and stored_files() == []


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("broken.png", png()[:60]),  # a truncated PNG: the right signature, no image after it
        ("broken.gif", b"GIF89a" + b"\x00" * 40),
        ("broken.pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog >> garbage"),
    ],
)
def test_a_malformed_file_is_refused_and_nothing_is_kept(alice: User, name: str, data: bytes) -> None:
    response = upload(client_for(alice), name, data)
    assert response.status_code == 400 and "could not be read" in response.json()["error"]
    assert Attachment.objects.count() == 0 and stored_files() == []


def test_an_oversized_file_is_refused_with_the_numbers_and_nothing_is_kept(alice: User, settings: Any) -> None:
    settings.PARLEY_ATTACHMENT_MAX_BYTES = 50_000
    response = upload(client_for(alice), "big.png", noisy_png(120_000))
    assert response.status_code == 413
    assert "files may be at most 50 kB" in response.json()["error"]
    assert Attachment.objects.count() == 0 and stored_files() == []


def test_a_user_over_their_storage_is_refused_with_the_numbers(alice: User, bob: User, settings: Any) -> None:
    settings.PARLEY_ATTACHMENT_USER_BYTES = 30_000
    assert upload(client_for(alice), "a.png", noisy_png(20_000)).status_code == 201
    response = upload(client_for(alice), "b.png", noisy_png(20_000))
    assert response.status_code == 413
    assert "does not fit: you keep 20 kB of files and may keep 30 kB" in response.json()["error"]
    assert upload(client_for(bob), "b.png", noisy_png(20_000)).status_code == 201  # Bob's room is his own
    assert Attachment.objects.filter(owner=alice).count() == 1 and len(stored_files()) == 2


def test_a_user_with_the_most_files_is_refused(alice: User, settings: Any) -> None:
    settings.PARLEY_ATTACHMENT_USER_FILES = 1
    assert upload(client_for(alice), "a.txt", b"one").status_code == 201
    response = upload(client_for(alice), "b.txt", b"two")
    assert response.status_code == 413 and "the most allowed" in response.json()["error"]


def test_an_upload_without_the_csrf_token_is_refused(alice: User) -> None:
    response = upload(client_for(alice, csrf=True), "a.txt", b"hello")
    assert response.status_code == 403 and Attachment.objects.count() == 0


def test_a_form_without_a_file_gets_a_clear_error(alice: User) -> None:
    response = client_for(alice).post("/api/attachments/", {"other": "x"})
    assert response.status_code == 400 and "`file` field" in response.json()["error"]


def test_an_unsent_file_can_be_removed_by_its_owner_only(alice: User, bob: User) -> None:
    meta = upload(client_for(alice), "a.txt", b"hello").json()["attachment"]
    assert client_for(bob).post(f"/api/attachments/{meta['id']}/delete/").status_code == 404
    assert len(stored_files()) == 1
    assert client_for(alice).post(f"/api/attachments/{meta['id']}/delete/").status_code == 200
    assert Attachment.objects.count() == 0 and stored_files() == []


def test_a_file_name_is_cleaned_of_paths_and_control_characters(alice: User) -> None:
    meta = upload(client_for(alice), "../../etc/pass\x07wd.txt", b"x").json()["attachment"]
    assert meta["name"] == "passwd.txt"
    assert all(".." not in path for path in stored_files())
