"""A key must never come back out. Every provider key and an extra header value are set to
unique canary strings, the fake provider echoes them in every error body it can, and every
path is run: chat (success and each error class), the admin pages and actions, the
model-list path and the JSON endpoints. Every response body and header, WebSocket frame
and log record is kept, and none of them, nor static/ nor the SQLite file's bytes, may hold
a canary, its first eight or its last eight characters."""

from __future__ import annotations

import io
import json
import logging
import secrets
import string
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from django.http import HttpResponse
from django.test import Client

from chat import discovery
from chat.models import ChatModel, Provider
from tests.fakeprovider import FakeProvider, Script

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parent.parent


def _random(alphabet: str, n: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def _identifier_shaped(n: int) -> str:
    # Shaped like a Gemini key or a code upstream might echo: letters, digits, no dash.
    return secrets.choice(string.ascii_letters) + _random(string.ascii_letters + string.digits, n - 1)


# Random from the first character, so "first eight characters" is itself a canary.
CANARIES = {
    "openai": f"{secrets.token_hex(6)}-sk-proj-{secrets.token_hex(16)}",
    "anthropic": f"{secrets.token_hex(6)}-sk-ant-api03-{secrets.token_hex(16)}",
    "gemini": _identifier_shaped(39),
    "ollama": _identifier_shaped(32),
    "header": _identifier_shaped(30),
}


def fragments() -> list[str]:
    out = []
    for canary in CANARIES.values():
        out += [canary, canary[:8], canary[-8:]]
    return out


def echoed(canary: str, text: str = "Incorrect API key provided") -> dict[str, Any]:
    """An error body echoing the key in every field a family reads."""
    return {
        "type": "error",
        "error": {"message": f"{text}: {canary}", "type": canary, "code": canary, "status": canary},
        "error_type": canary,
    }


class Seen:
    """Everything that left the server, labelled by where it went."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, where: str, text: str) -> None:
        self.items.append((where, text))

    def response(self, where: str, response: HttpResponse) -> HttpResponse:
        body = b"".join(response.streaming_content) if response.streaming else response.content  # type: ignore[attr-defined]
        self.add(f"{where} body", body.decode("utf-8", "replace"))
        self.add(f"{where} headers", json.dumps(dict(response.headers.items())))
        self.add(f"{where} cookies", response.cookies.output())
        return response

    def leaks(self) -> list[str]:
        # Case-folded: a lower-cased echo of a key is still the key.
        folded = [(where, text.lower()) for where, text in self.items]
        return [f"{where}: {frag!r}" for where, text in folded for frag in fragments() if frag.lower() in text]


@pytest.fixture
def seen(caplog: pytest.LogCaptureFixture) -> Iterator[Seen]:
    """Captures log records at DEBUG for every logger, then checks logs, static/ and the DB."""
    # Importing the ASGI app runs django.setup(), whose dictConfig would replace the root
    # logger's handlers (caplog's among them) halfway through the test: do it first.
    import chatsite.asgi  # noqa: F401

    caplog.set_level(logging.DEBUG)
    for name in list(logging.root.manager.loggerDict):
        caplog.set_level(logging.DEBUG, logger=name)
    cache.clear()
    record = Seen()
    yield record
    discovery.wait_for_refreshes()
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    records = caplog.get_records("setup") + caplog.get_records("call") + caplog.records
    for entry in records:
        record.add(f"log {entry.name}", formatter.format(entry) + repr(entry.args))
    for path in (ROOT / "static").rglob("*"):
        if path.is_file():
            record.add(f"static {path.relative_to(ROOT)}", path.read_bytes().decode("latin-1"))
    db = Path(connection.settings_dict["NAME"])
    for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-journal")):
        if path.exists():
            record.add(f"database file {path.name}", path.read_bytes().decode("latin-1"))
    assert records, "nothing was logged: the capture is not working"
    assert not record.leaks(), "\n".join(record.leaks())
    cache.clear()


@pytest.fixture
def canary_models(transactional_db: None, fake: FakeProvider) -> dict[str, ChatModel]:
    models = {}
    for family in ("openai", "anthropic", "gemini", "ollama"):
        base = fake.url + "/v1" if family == "openai" else fake.url
        provider = Provider.objects.create(
            name=f"canary-{family}", family=family, base_url=base, first_token_timeout=1.0, read_timeout=1.0
        )
        provider.set_api_key(CANARIES[family])
        if family == "openai":
            provider.set_extra_headers({"X-Gateway-Token": CANARIES["header"]})
        provider.save()
        models[family] = ChatModel.objects.create(
            provider=provider, model_id="fake-model", display_name=f"{family} model"
        )
    return models


def error_scripts(family: str) -> dict[str, Script]:
    c = CANARIES[family]
    body = echoed(c)
    scripts = {
        "success": Script(tokens=["All", " fine"]),
        "auth-401": Script(status=401, error_body=body),
        "auth-403": Script(status=403, error_body=body),
        "quota-402": Script(status=402, error_body=echoed(c, "insufficient_quota")),
        "rate-limit": Script(status=429, headers={"Retry-After": "0"}, error_body=body),
        "overloaded": Script(status=529, headers={"Retry-After": "0"}, error_body=body),
        "unavailable": Script(status=500, headers={"Retry-After": "0"}, error_body=body),
        "context-length": Script(status=400, error_body=echoed(c, "maximum context length exceeded")),
        "bad-request": Script(status=400, error_body=body),
        "not-found": Script(status=404, error_body=body),
        "error-event-first": Script(error_event_after=0, error_body=body),
        "error-event-later": Script(tokens=["Half", " way"], error_event_after=1, error_body=body),
        "odd-finish-reason": Script(finish_reason=c),
        "content-filter": Script(finish_reason="content_filter"),
        "html": Script(html_body=True),
        "malformed": Script(tokens=["a", "b"], malformed_after=1),
        "dropped": Script(tokens=["a", "b"], drop_after=1),
        "no-terminator": Script(no_terminator=True),
    }
    if family == "openai":
        scripts["stall"] = Script(tokens=["a", "b"], stall_after=0, keepalive_interval=0.2)
    return scripts


async def test_no_key_leaks_from_the_chat_path_or_the_json_endpoints(
    alice: User, canary_models: dict[str, ChatModel], fake: FakeProvider, connect: Any, seen: Seen, settings: Any
) -> None:
    settings.PARLEY_USER_MESSAGES_PER_MINUTE = 0  # sixty-odd sends of one user, on purpose
    sock = await connect(alice)
    kinds: dict[str, str] = {}
    conversations = []
    for family, model in canary_models.items():
        for case, script in error_scripts(family).items():
            fake.reset()
            fake.script_for_model("fake-model", script)
            await sock.send(
                {
                    "type": "send",
                    "client_id": str(uuid.uuid4()),
                    "conversation": None,
                    "model": str(model.id),
                    "content": f"Say something ({case})",
                }
            )
            frames = await sock.recv_until("end", timeout=30)
            seen.add(f"frames {family}/{case}", json.dumps(frames))
            end = frames[-1]
            kinds[f"{family}/{case}"] = (end.get("error") or {}).get("kind") or end["status"]
            conversations.append(frames[0]["conversation"]["id"])
            # The key did reach the provider: the canary is live, not a typo.
            assert any(c in json.dumps(r.headers) for r in fake.requests for c in CANARIES.values())
    assert kinds["openai/success"] == "complete" and kinds["openai/auth-401"] == "auth"
    assert kinds["anthropic/error-event-first"] and kinds["openai/stall"] == "timeout"

    @sync_to_async
    def fetch_pages() -> None:
        client = Client()
        client.force_login(alice)
        seen.response("chat page", client.get("/chat/"))
        seen.response("conversation list", client.get("/api/conversations/"))
        for conversation in conversations:
            seen.response("conversation page", client.get(f"/chat/{conversation}/"))
            seen.response("conversation json", client.get(f"/api/conversations/{conversation}/"))

    await fetch_pages()


def test_no_key_leaks_from_the_admin_or_the_model_list_path(
    canary_models: dict[str, ChatModel], fake: FakeProvider, seen: Seen
) -> None:
    admin = User.objects.create_superuser("root", password="root-password-1")
    client = Client()
    client.force_login(admin)
    providers = list(Provider.objects.all())
    ids = [str(p.pk) for p in providers]

    seen.response("provider list (cold)", client.get("/admin/chat/provider/"))
    discovery.wait_for_refreshes()  # the background checks ran; their logs are captured too
    seen.response("provider list (checked)", client.get("/admin/chat/provider/"))
    for action in ("test_connection", "discover_models"):
        seen.response(
            action, client.post("/admin/chat/provider/", {"action": action, "_selected_action": ids}, follow=True)
        )
    fake.fail_model_list(Script(status=401, error_body=echoed(CANARIES["openai"])))
    for action in ("test_connection", "discover_models"):
        seen.response(
            f"{action} (401)",
            client.post("/admin/chat/provider/", {"action": action, "_selected_action": ids}, follow=True),
        )
    seen.response("provider list (unhealthy)", client.get("/admin/chat/provider/"))
    for p in providers:
        seen.response(f"change {p.name}", client.get(f"/admin/chat/provider/{p.pk}/change/"))
        seen.response(f"history {p.name}", client.get(f"/admin/chat/provider/{p.pk}/history/"))
        seen.response(f"delete {p.name}", client.get(f"/admin/chat/provider/{p.pk}/delete/"))
    seen.response("model list", client.get("/admin/chat/chatmodel/"))
    for m in ChatModel.objects.all():
        seen.response(f"model {m.model_id}", client.get(f"/admin/chat/chatmodel/{m.pk}/change/"))

    # A form with an error is shown again: the key and header values must not be.
    bad = {
        "name": "again",
        "family": "openai",
        "preset": "",
        "base_url": "not a url",
        "api_key": CANARIES["openai"],
        "extra_headers": json.dumps({"X-Gateway-Token": CANARIES["header"]}),
        "connect_timeout": "10",
        "first_token_timeout": "120",
        "read_timeout": "120",
        "models-TOTAL_FORMS": "0",
        "models-INITIAL_FORMS": "0",
        "models-MIN_NUM_FORMS": "0",
        "models-MAX_NUM_FORMS": "1000",
    }
    invalid = seen.response("add form with an error", client.post("/admin/chat/provider/add/", bad))
    assert invalid.status_code == 200 and b"errorlist" in invalid.content
    # Saving a provider through the form logs an admin LogEntry: that must hold no key either.
    good = {**bad, "name": "saved", "base_url": fake.url + "/v1"}
    assert seen.response("add form", client.post("/admin/chat/provider/add/", good)).status_code == 302
    seen.response("provider list (after add)", client.get("/admin/chat/provider/"))
    seen.response("admin index", client.get("/admin/"))

    out = io.StringIO()
    call_command("provider", "list", stdout=out)
    seen.add("provider list command", out.getvalue())
    assert ChatModel.objects.filter(enabled=False).exists() is False  # the fake lists only fake-model
