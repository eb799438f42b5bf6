"""Exports carry attachments (a zip with the files; JSON and Markdown name and link them),
and imports restore them, checked like uploads, all or nothing."""

from __future__ import annotations

import io
import json
import os
import uuid
import zipfile
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client

from chat.attachments import files, writes
from chat.models import Attachment, ChatModel, Conversation, Message
from tests.fakeprovider import FakeProvider
from tests.files import pdf, png

pytestmark = pytest.mark.django_db(transaction=True)
PNG, PDF = png(), pdf("Revenue rose")


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def stored_files() -> list[str]:
    root = settings.PARLEY_ATTACHMENTS_DIR
    return [os.path.join(d, f) for d, _, names in os.walk(root) for f in names]


@pytest.fixture(autouse=True)
def _empty_store(transactional_db: None) -> None:
    for path in stored_files():
        os.remove(path)


@pytest.fixture
def chat_with_files(alice: User, fake_model: ChatModel) -> Conversation:
    """A conversation as a send with an image and a PDF leaves it."""
    image, report = writes.do_upload(alice, "chart.png", PNG), writes.do_upload(alice, "report.pdf", PDF)
    conversation = Conversation.objects.create(owner=alice, title="Figures", model=fake_model)
    Attachment.objects.filter(id__in=[image.id, report.id]).update(conversation=conversation)
    question = Message.objects.create(
        conversation=conversation, role="user", content="Explain these", attachments=[image.summary(), report.summary()]
    )
    Message.objects.create(conversation=conversation, parent=question, role="assistant", content="They rise.")
    return conversation


def zip_of(client: Client, conversation: Conversation) -> zipfile.ZipFile:
    response = client.get(f"/api/conversations/{conversation.id}/export.zip")
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


def post_file(client: Client, name: str, data: bytes) -> Any:
    f = io.BytesIO(data)
    f.name = name
    return client.post("/api/conversations/import/", {"file": f})


def test_the_zip_holds_the_json_a_markdown_with_working_links_and_the_files(
    alice: User, bob: User, chat_with_files: Conversation
) -> None:
    archive = zip_of(client_for(alice), chat_with_files)
    doc = json.loads(archive.read("conversation.json"))
    listed = doc["messages"][0]["attachments"]
    assert [a["name"] for a in listed] == ["chart.png", "report.pdf"]
    paths = [f"attachments/{a['id']}/{a['name']}" for a in listed]
    assert archive.read(paths[0]) == files.read(Attachment.objects.get(name="chart.png").file.name)
    assert archive.read(paths[1]) == PDF
    markdown = archive.read("conversation.md").decode()
    assert f"![chart.png]({paths[0]})" in markdown and f"[report.pdf]({paths[1]})" in markdown
    assert client_for(bob).get(f"/api/conversations/{chat_with_files.id}/export.zip").status_code == 404


def test_json_and_markdown_exports_name_and_link_the_files(alice: User, chat_with_files: Conversation) -> None:
    client = client_for(alice)
    doc = client.get(f"/api/conversations/{chat_with_files.id}/export.json").json()
    assert [a["media_type"] for a in doc["messages"][0]["attachments"]] == ["image/png", "application/pdf"]
    markdown = client.get(f"/api/conversations/{chat_with_files.id}/export.md").content.decode()
    image = Attachment.objects.get(name="chart.png")
    assert f"![chart.png](http://testserver/api/attachments/{image.id}/)" in markdown


def test_importing_the_zip_restores_the_files_under_new_ids(
    alice: User, chat_with_files: Conversation, fake: FakeProvider
) -> None:
    client = client_for(alice)
    archive = b"".join(client.get(f"/api/conversations/{chat_with_files.id}/export.zip").streaming_content)
    response = post_file(client, "figures.zip", archive)
    assert response.status_code == 201, response.content
    new = Conversation.objects.get(id=response.json()["conversation"]["id"])
    question = new.messages.get(role="user")
    restored = list(Attachment.objects.filter(conversation=new).order_by("name"))
    assert [a.name for a in restored] == ["chart.png", "report.pdf"]
    assert {a["id"] for a in question.attachments} == {str(a.id) for a in restored}
    assert not {a["id"] for a in question.attachments} & {
        str(a.id) for a in Attachment.objects.filter(conversation=chat_with_files)
    }
    assert restored[1].text == "Revenue rose" and files.read(restored[1].file.name) == PDF
    assert client.get(f"/api/attachments/{restored[0].id}/").status_code == 200
    assert len(stored_files()) == 4


def _zip(doc: dict[str, Any], members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("conversation.json", json.dumps(doc))
        for name, data in members.items():
            z.writestr(name, data)
    return out.getvalue()


def _doc(attachments: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "format": "parley.conversation",
        "version": 1,
        "conversation": {"title": "T"},
        "messages": [{"id": "m1", "role": "user", "content": "look", "attachments": attachments}],
    }


def test_a_mistyped_file_in_the_zip_is_refused_and_nothing_is_written(alice: User) -> None:
    sly = {"id": str(uuid.uuid4()), "name": "photo.png", "kind": "image"}
    response = post_file(client_for(alice), "x.zip", _zip(_doc([sly]), {f"attachments/{sly['id']}/photo.png": b"text"}))
    assert response.status_code == 400 and "photo.png" in response.json()["error"]
    assert Conversation.objects.count() == 0 and Attachment.objects.count() == 0 and stored_files() == []


def test_a_zip_over_the_users_room_is_refused_and_nothing_is_written(alice: User, settings: Any) -> None:
    settings.PARLEY_ATTACHMENT_USER_BYTES = 50
    item = {"id": str(uuid.uuid4()), "name": "chart.png", "kind": "image"}
    response = post_file(client_for(alice), "x.zip", _zip(_doc([item]), {f"attachments/{item['id']}/chart.png": PNG}))
    assert response.status_code == 400 and "does not fit" in response.json()["error"]
    assert Conversation.objects.count() == 0 and stored_files() == []


def test_a_zip_bomb_member_is_read_only_up_to_the_limit(alice: User, settings: Any) -> None:
    settings.PARLEY_ATTACHMENT_MAX_BYTES = 10_000
    item = {"id": str(uuid.uuid4()), "name": "big.txt", "kind": "document"}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("conversation.json", json.dumps(_doc([item])))
        z.writestr(f"attachments/{item['id']}/big.txt", b"a" * 50_000_000)  # deflates to ~50 kB
    response = post_file(client_for(alice), "bomb.zip", out.getvalue())
    assert response.status_code == 400 and "larger than 10 kB" in response.json()["error"]
    assert Conversation.objects.count() == 0


def test_a_json_import_keeps_the_names_and_never_reaches_someone_elses_file(
    alice: User, bob: User, fake_model: ChatModel
) -> None:
    bobs = writes.do_upload(bob, "secret.png", PNG)
    forged = [{"id": str(bobs.id), "name": "secret.png", "kind": "image"}]
    response = client_for(alice).post(
        "/api/conversations/import/", json.dumps(_doc(forged)), content_type="application/json"
    )
    assert response.status_code == 201
    kept = Message.objects.get(role="user", conversation__owner=alice).attachments
    assert kept[0]["name"] == "secret.png" and kept[0]["missing"] is True and kept[0]["id"] != str(bobs.id)
    assert Attachment.objects.filter(owner=alice).count() == 0
