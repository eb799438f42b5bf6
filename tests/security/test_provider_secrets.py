"""Provider secrets: never on a command line, and a dropped encryption key is caught, not crashed on."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from tests.fakeprovider import FakeProvider, Script
from tests.live import ROOT, LiveServer, free_port
from tests.security.conftest import Visitor, ask, manage, model_id, shell

GATEWAY_TOKEN = "gw-token-piped-3f9a1c7e5b"
ENV_TOKEN = "gw-token-from-env-8d2b6a4f"
# The key the stale providers were encrypted with, and then "removed" (the server never has it).
REMOVED_KEY = Fernet.generate_key().decode()
OLD_SECRET = "sk-old-provider-key-71c3"


@pytest.fixture(scope="module")
def server(fake_server: FakeProvider) -> Iterator[LiveServer]:
    live = LiveServer(extra_env={"GW_TOKEN": ENV_TOKEN}).start()
    shell(
        live,
        (
            "from django.contrib.auth.models import User\n"
            "User.objects.create_user('alice', password='alice-password-1')\n"
            "User.objects.create_superuser('root', password='root-password-1')\n"
        ),
    )
    # Two providers whose secrets only REMOVED_KEY opens: as if it was dropped before rotate-keys.
    shell(
        live,
        (
            "from chat.models import ChatModel, Provider\n"
            "for name in ('forgotten', 'reentered'):\n"
            f"    p = Provider(name=name, family='openai', base_url={fake_server.url + '/v1'!r})\n"
            f"    p.set_api_key({OLD_SECRET!r}); p.set_extra_headers({{'X-Old': 'v'}}); p.save()\n"
            "    ChatModel.objects.create(provider=p, model_id='fake-model')\n"
        ),
        PARLEY_ENCRYPTION_KEYS=REMOVED_KEY,
    )
    yield live
    live.stop()


@pytest.fixture
def fake(fake_server: FakeProvider) -> FakeProvider:
    fake_server.reset()
    return fake_server


@pytest.fixture
def alice(server: LiveServer) -> Iterator[Visitor]:
    visitor = Visitor(server)
    assert visitor.sign_in("alice", "alice-password-1").status_code == 302
    yield visitor
    visitor.close()


@pytest.fixture
def root(server: LiveServer) -> Iterator[Visitor]:
    visitor = Visitor(server)
    assert visitor.sign_in("root", "root-password-1", "/admin/login/").status_code == 302
    yield visitor
    visitor.close()


def add_reading_headers_from_stdin(server: LiveServer, name: str, base_url: str, lines: str) -> str:
    """`provider add NAME --header-stdin`, fed ``lines``; returns what `ps` showed while it ran."""
    command = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "provider",
            "add",
            name,
            "--kind",
            "openai",
            "--base-url",
            base_url,
            "--header-stdin",
            "--model",
            "gw-model",
        ],
        cwd=ROOT,
        env=server.env,
        text=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    time.sleep(0.5)  # the command is up and waiting for its input, as another user's `ps` would see it
    seen_by_ps = Path(f"/proc/{command.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    out, err = command.communicate(lines, timeout=60)
    assert command.returncode == 0, err
    assert GATEWAY_TOKEN not in out + err
    return seen_by_ps


# ---- credentials in headers stay off the command line --------------------------------------------


async def test_a_gateway_token_piped_in_never_shows_in_the_process_list_and_reaches_the_gateway(
    server: LiveServer, fake: FakeProvider, alice: Visitor
) -> None:
    lines = f"X-Gateway-Token={GATEWAY_TOKEN}\nX-Team=blue\n"
    seen_by_ps = add_reading_headers_from_stdin(server, "gw", fake.url + "/v1", lines)
    assert "--header-stdin" in seen_by_ps and GATEWAY_TOKEN not in seen_by_ps

    fake.enqueue(Script(tokens=["ok"]))
    frames = await ask(server, alice, model_id(server, "gw", "gw-model"))
    assert frames[-1].get("status") == "complete", frames
    assert fake.requests[-1].headers["x-gateway-token"] == GATEWAY_TOKEN
    assert fake.requests[-1].headers["x-team"] == "blue"


@pytest.mark.sqlite  # reads the database's own files
async def test_a_header_named_by_an_environment_variable_is_read_at_call_time_and_never_stored(
    server: LiveServer, fake: FakeProvider, alice: Visitor
) -> None:
    added = manage(
        server,
        "provider",
        "add",
        "gw-env",
        "--kind",
        "openai",
        "--base-url",
        fake.url + "/v1",
        "--header-env",
        "X-Gateway-Token=GW_TOKEN",
        "--model",
        "env-model",
    )
    assert added.returncode == 0, added.stderr
    fake.enqueue(Script(tokens=["ok"]))
    frames = await ask(server, alice, model_id(server, "gw-env", "env-model"))
    assert frames[-1].get("status") == "complete", frames
    assert fake.requests[-1].headers["x-gateway-token"] == ENV_TOKEN  # the server's environment
    database = Path(server.env["SQLITE_PATH"])
    stored = b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))
    assert ENV_TOKEN.encode() not in stored and b"GW_TOKEN" in stored


def test_a_malformed_header_line_on_stdin_is_refused_without_echoing_it(server: LiveServer) -> None:
    result = manage(
        server,
        "provider",
        "add",
        "bad",
        "--kind",
        "openai",
        "--base-url",
        "http://127.0.0.1:9/v1",
        "--header-stdin",
        stdin="X-Gateway-Token gw-secret-no-equals\n",
    )
    assert result.returncode != 0
    assert "--header-stdin must look like NAME=VALUE" in result.stderr
    assert "gw-secret-no-equals" not in result.stdout + result.stderr


# ---- an encryption key dropped before rotate-keys ------------------------------------------------


def test_a_removed_encryption_key_stops_start_up_naming_the_providers_and_the_fix(server: LiveServer) -> None:
    # A server that starts anyway would still be running when the timeout fails this test.
    started = manage(server, "serve", "--host", "127.0.0.1", "--port", str(free_port()), timeout=30)
    said = started.stdout + started.stderr
    assert started.returncode != 0, said
    assert "forgotten (API key, extra headers)" in said
    assert "put that key back in PARLEY_ENCRYPTION_KEYS" in said and "--api-key-stdin" in said
    assert OLD_SECRET not in said and REMOVED_KEY not in said and "Parley is serving" not in said


def test_rotate_keys_refuses_rather_than_crashing_on_an_undecryptable_secret(server: LiveServer) -> None:
    rotated = manage(server, "provider", "rotate-keys")
    assert rotated.returncode != 0 and "Nothing was re-encrypted" in rotated.stderr
    assert "forgotten" in rotated.stderr and "Traceback" not in rotated.stderr


def test_an_admin_sees_the_undecryptable_key_instead_of_an_error_page_and_enters_it_again(
    server: LiveServer, fake: FakeProvider, root: Visitor
) -> None:
    listing = root.get("/admin/chat/provider/")
    assert listing.status_code == 200 and "cannot be decrypted" in listing.text
    pk = shell(server, "from chat.models import Provider\nprint(Provider.objects.get(name='reentered').pk)")
    pk = pk.strip()
    page = f"/admin/chat/provider/{pk}/change/"
    shown = root.get(page)
    assert shown.status_code == 200, shown.text[:500]
    assert "cannot be decrypted with the current PARLEY_ENCRYPTION_KEYS" in shown.text
    assert OLD_SECRET not in shown.text

    checked = root.form("/admin/chat/provider/", {"action": "test_connection", "_selected_action": pk})
    assert checked.status_code == 302
    assert "cannot be decrypted" in root.get("/admin/chat/provider/").text
    # Nothing was sent for it (the list page checks the gateways added above in the background).
    assert all("x-gateway-token" in r.headers for r in fake.requests)

    saved = root.form(
        page,
        {
            "name": "reentered",
            "label": "",
            "family": "openai",
            "preset": "",
            "base_url": fake.url + "/v1",
            "api_key": "sk-re-entered-key-0042",
            "api_key_env": "",
            "extra_headers": "{}",
            "extra_headers_env": "{}",
            "connect_timeout": "10",
            "first_token_timeout": "120",
            "read_timeout": "120",
            "enabled": "on",
            "models-TOTAL_FORMS": "0",
            "models-INITIAL_FORMS": "0",
            "models-MIN_NUM_FORMS": "0",
            "models-MAX_NUM_FORMS": "1000",
        },
    )
    assert saved.status_code == 302, saved.text[:2000]
    assert "cannot be decrypted" not in root.get(page).text
    script = "from chat.models import Provider\nprint(Provider.objects.get(name='reentered').unreadable_secrets())"
    assert shell(server, script).strip() == "[]"
