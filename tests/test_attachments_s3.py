"""Attachments in an S3-compatible object store, through django-storages, against a real
server on loopback: moto's standalone server (`pip install '.[s3,test]'`).

Skipped when moto or django-storages is not installed (a local-only install); under CI a
missing package is a failure. Nothing here reaches the internet: the endpoint is 127.0.0.1
and credentials are given, so boto3 never looks for instance metadata.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from chat.attachments import files, writes
from chat.conversations import writes as conversation_writes
from chat.models import Attachment, Conversation
from tests.files import pdf, png
from tests.live import free_port, wait_for_port

BUCKET = "parley-test"
pytestmark = pytest.mark.django_db(transaction=True)


def _require(module: str) -> None:
    try:
        __import__(module)
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail(f"{module} is missing: install Parley with its s3 and test extras")
        pytest.skip(f"{module} is not installed (pip install '.[s3,test]')")


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    _require("moto.server")
    _require("storages.backends.s3")
    port = free_port()
    command = [
        shutil.which("moto_server", path=os.path.dirname(sys.executable)) or "moto_server",
        "-H",
        "127.0.0.1",
        "-p",
        str(port),
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, timeout=30)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def s3(s3_endpoint: str, settings: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The attachments alias pointed at a fresh bucket; the boto3 client to look inside it."""
    import boto3

    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    client = boto3.client(
        "s3", endpoint_url=s3_endpoint, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )
    client.create_bucket(Bucket=BUCKET)
    settings.STORAGES = {
        **settings.STORAGES,
        "attachments": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": BUCKET,
                "endpoint_url": s3_endpoint,
                "region_name": "us-east-1",
                "access_key": "test",
                "secret_key": "test",
                "location": "attachments",
                "addressing_style": "path",
                "default_acl": "private",
                "file_overwrite": False,
            },
        },
    }
    yield client
    listed = client.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    for item in listed:
        client.delete_object(Bucket=BUCKET, Key=item["Key"])
    client.delete_bucket(Bucket=BUCKET)


def keys(client: Any) -> list[str]:
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def test_an_upload_lands_in_the_bucket_and_is_served_only_to_its_owner(s3: Any, alice: User, bob: User) -> None:
    client = Client()
    client.force_login(alice)
    f = io.BytesIO(png())
    f.name = "chart.png"
    meta = client.post("/api/attachments/", {"file": f}).json()["attachment"]
    attachment = Attachment.objects.get(id=meta["id"])
    assert keys(s3) == [f"attachments/{attachment.file.name}"]
    got = client.get(f"/api/attachments/{meta['id']}/")
    assert got.status_code == 200 and b"".join(got.streaming_content).startswith(b"\x89PNG")
    other = Client()
    other.force_login(bob)
    assert other.get(f"/api/attachments/{meta['id']}/").status_code == 404
    # Private objects: the bucket does not hand them to an unsigned request.
    import httpx

    public = httpx.get(f"{s3.meta.endpoint_url}/{BUCKET}/attachments/{attachment.file.name}")
    assert public.status_code == 403


def test_history_reads_files_back_from_the_bucket(s3: Any, alice: User) -> None:
    report = writes.do_upload(alice, "report.pdf", pdf("Revenue rose"))
    assert files.read(report.file.name) == pdf("Revenue rose")


def test_purging_a_conversation_deletes_its_objects_and_the_sweep_lists_the_bucket(s3: Any, alice: User) -> None:
    image = writes.do_upload(alice, "chart.png", png())
    doomed = Conversation.objects.create(owner=alice, title="x")
    Attachment.objects.filter(id=image.id).update(conversation=doomed)
    stale = writes.do_upload(alice, "stale.png", png())
    Attachment.objects.filter(id=stale.id).update(created=image.created - writes.UNSENT_GRACE * 2)
    Conversation.objects.filter(id=doomed.id).update(deleted_at=image.created - conversation_writes.undo_window() * 2)
    other = Conversation.objects.create(owner=alice, title="y")
    conversation_writes.do_delete_conversation(alice, other.id)
    assert keys(s3) == [f"attachments/{stale.file.name}"]
    assert writes.do_sweep() == (1, 0)
    assert keys(s3) == []
