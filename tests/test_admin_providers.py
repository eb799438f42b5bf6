"""Admin-managed providers: the write-only key form, the two admin actions over real HTTP
to the fake provider, provider health that never stalls a page, group-restricted models,
and the `provider` management command including its errors and key rotation."""

from __future__ import annotations

import io
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth.models import Group, User
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.test import Client, override_settings

from chat import crypto, discovery
from chat.access import usable_models
from chat.models import ChatModel, Provider
from tests.fakeprovider import FakeProvider, Script
from tests.live import TEST_KEY

pytestmark = pytest.mark.django_db(transaction=True)

KEY = "sk-admin-form-key-7c1e9d2a5b"
UPSTREAM_401 = {
    "error": {
        "message": "Incorrect API key provided: sk-admin-form-key-7c1e9d2a5b",
        "type": "invalid_request_error",
        "code": "invalid_api_key",
    }
}


@pytest.fixture(autouse=True)
def _fresh_health() -> Iterator[None]:
    cache.clear()
    yield
    discovery.wait_for_refreshes()
    cache.clear()


@pytest.fixture
def admin_client(transactional_db: None) -> Client:
    admin = User.objects.create_superuser("root", password="root-password-1")
    client = Client()
    client.force_login(admin)
    return client


@pytest.fixture
def provider(transactional_db: None, fake: FakeProvider) -> Provider:
    p = Provider.objects.create(name="lab", label="Lab", family="openai", base_url=fake.url + "/v1")
    p.set_api_key(KEY)
    p.save()
    ChatModel.objects.create(provider=p, model_id="fake-model", display_name="Fake Model", is_default=True)
    return p


def add_form(fake: FakeProvider, **overrides: str) -> dict[str, str]:
    data = {
        "name": "gateway",
        "label": "Gateway",
        "family": "openai",
        "preset": "",
        "base_url": fake.url + "/v1",
        "api_key": KEY,
        "api_key_env": "",
        "extra_headers": "",
        "connect_timeout": "10",
        "first_token_timeout": "120",
        "read_timeout": "120",
        "enabled": "on",
        "models-TOTAL_FORMS": "1",
        "models-INITIAL_FORMS": "0",
        "models-MIN_NUM_FORMS": "0",
        "models-MAX_NUM_FORMS": "1000",
        "models-0-model_id": "fake-model",
        "models-0-display_name": "Fake Model",
        "models-0-enabled": "on",
    }
    data.update(overrides)
    return data


def run_action(client: Client, action: str, *providers: Provider) -> str:
    response = client.post(
        "/admin/chat/provider/",
        {"action": action, "_selected_action": [str(p.pk) for p in providers]},
        follow=True,
    )
    assert response.status_code == 200
    return "\n".join(str(m) for m in response.context["messages"])


# ---- the form ---------------------------------------------------------------------------


def test_an_admin_adds_a_provider_and_the_key_is_never_shown_again(admin_client: Client, fake: FakeProvider) -> None:
    response = admin_client.post("/admin/chat/provider/add/", add_form(fake))
    assert response.status_code == 302, response.content.decode()[:2000]

    provider = Provider.objects.get(name="gateway")
    assert provider.api_key() == KEY and KEY not in provider.api_key_encrypted
    assert provider.models.get().model_id == "fake-model"
    change = admin_client.get(f"/admin/chat/provider/{provider.pk}/change/").content.decode()
    changelist = admin_client.get("/admin/chat/provider/").content.decode()
    for page in (change, changelist):
        assert KEY not in page and KEY[:8] not in page and KEY[-8:] not in page
        assert "…" + KEY[-4:] in page


def test_saving_the_change_form_with_a_blank_key_keeps_the_stored_key(
    admin_client: Client, fake: FakeProvider, provider: Provider
) -> None:
    data = add_form(fake, name="lab", api_key="", **{"models-TOTAL_FORMS": "0"})
    response = admin_client.post(f"/admin/chat/provider/{provider.pk}/change/", data)
    assert response.status_code == 302
    provider.refresh_from_db()
    assert provider.api_key() == KEY


def test_a_preset_fills_in_the_family_and_base_url(admin_client: Client, fake: FakeProvider) -> None:
    data = add_form(fake, name="claude", preset="anthropic", base_url="", **{"models-TOTAL_FORMS": "0"})
    assert admin_client.post("/admin/chat/provider/add/", data).status_code == 302
    provider = Provider.objects.get(name="claude")
    assert (provider.family, provider.base_url) == ("anthropic", "https://api.anthropic.com")


def test_the_gateway_preset_without_a_base_url_is_refused_with_a_reason(
    admin_client: Client, fake: FakeProvider
) -> None:
    data = add_form(fake, preset="gateway", base_url="")
    response = admin_client.post("/admin/chat/provider/add/", data)
    assert response.status_code == 200
    assert "Give a base URL" in response.content.decode()
    assert not Provider.objects.filter(name="gateway").exists()


# ---- test connection and discovery --------------------------------------------------------


def test_test_connection_reports_success_with_latency(
    admin_client: Client, fake: FakeProvider, provider: Provider
) -> None:
    shown = run_action(admin_client, "test_connection", provider)
    assert "lab: connected in" in shown and " ms" in shown
    listing = fake.requests[-1]
    assert (listing.method, listing.path) == ("GET", "/v1/models")
    assert listing.headers["authorization"] == f"Bearer {KEY}"
    assert "healthy, " in admin_client.get("/admin/chat/provider/").content.decode()


def test_test_connection_shows_a_safe_message_and_ref_for_a_rejected_key(
    admin_client: Client, fake: FakeProvider, provider: Provider, caplog: pytest.LogCaptureFixture
) -> None:
    fake.fail_model_list(Script(status=401, error_body=UPSTREAM_401))
    shown = run_action(admin_client, "test_connection", provider)
    status = discovery.cached_health(provider)
    assert status is not None and not status.ok and status.kind == "auth"
    assert "rejected Parley's credentials" in shown and f"ref {status.ref}" in shown
    assert "Incorrect API key" not in shown and KEY[-8:] not in shown
    assert status.ref in caplog.text and "provider=lab" in caplog.text
    page = admin_client.get("/admin/chat/provider/").content.decode()
    assert "unhealthy: auth" in page and "Incorrect API key" not in page


def test_discover_imports_listed_models_disabled_and_keeps_existing_ones(
    admin_client: Client, fake: FakeProvider, provider: Provider
) -> None:
    fake.script_for_model("big-model", Script())
    fake.script_for_model("small-model", Script())
    shown = run_action(admin_client, "discover_models", provider)
    assert "3 model(s) listed, 2 new imported as disabled" in shown
    models = {m.model_id: m.enabled for m in provider.models.all()}
    assert models == {"fake-model": True, "big-model": False, "small-model": False}

    again = run_action(admin_client, "discover_models", provider)
    assert "0 new imported" in again and provider.models.count() == 3


def test_discover_with_a_rejected_key_imports_nothing(
    admin_client: Client, fake: FakeProvider, provider: Provider
) -> None:
    fake.fail_model_list(Script(status=401, error_body=UPSTREAM_401))
    fake.script_for_model("big-model", Script())
    shown = run_action(admin_client, "discover_models", provider)
    assert "rejected Parley's credentials" in shown and "ref " in shown
    assert list(provider.models.values_list("model_id", flat=True)) == ["fake-model"]


def test_discovery_speaks_each_family(admin_client: Client, fake: FakeProvider) -> None:
    for family, base in (("anthropic", fake.url), ("gemini", fake.url), ("ollama", fake.url)):
        p = Provider.objects.create(name=family, family=family, base_url=base)
        assert "1 model(s) listed, 1 new" in run_action(admin_client, "discover_models", p), family
        assert p.models.get().model_id == "fake-model"


def test_discovery_records_which_models_take_images_where_the_list_says(
    admin_client: Client, fake: FakeProvider, provider: Provider
) -> None:
    fake.script_for_model("pixel-vision", Script())
    run_action(admin_client, "discover_models", provider)
    found = {m.model_id: (m.vision, m.takes_images()) for m in provider.models.all()}
    # fake-model was there before: the list's "no" fills in what nobody had decided.
    assert found == {"fake-model": (False, False), "pixel-vision": (True, True)}


def test_a_model_nobody_decided_for_follows_its_presets_default(transactional_db: None) -> None:
    def model(preset: str, family: str) -> ChatModel:
        p = Provider.objects.create(
            name=f"p{Provider.objects.count()}", family=family, preset=preset, base_url="http://x"
        )
        return ChatModel.objects.create(provider=p, model_id="m")

    assert model("openai", "openai").takes_images() and model("anthropic", "anthropic").takes_images()
    assert model("", "gemini").takes_images() and not model("llamacpp", "openai").takes_images()
    assert not model("", "ollama").takes_images()
    assert model("anthropic", "anthropic").reads_pdfs() and not model("openai", "openai").reads_pdfs()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers: a hung provider."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


@override_settings(PARLEY_DISCOVERY_TIMEOUT=1.0)
def test_a_hung_provider_shows_as_unhealthy_without_stalling_the_provider_list(
    admin_client: Client, silent_port: int
) -> None:
    Provider.objects.create(name="hung", family="openai", base_url=f"http://127.0.0.1:{silent_port}/v1")
    started = time.monotonic()
    first = admin_client.get("/admin/chat/provider/").content.decode()
    assert time.monotonic() - started < 0.9
    assert "not checked yet" in first

    discovery.wait_for_refreshes()
    later = admin_client.get("/admin/chat/provider/").content.decode()
    assert "unhealthy: timeout" in later


def test_the_chat_page_never_calls_a_provider(alice: User, fake: FakeProvider, provider: Provider) -> None:
    client = Client()
    client.force_login(alice)
    assert client.get("/chat/").status_code == 200
    discovery.wait_for_refreshes()
    assert fake.requests == []


# ---- groups ---------------------------------------------------------------------------------


@pytest.fixture
def lab_only(provider: Provider, alice: User) -> ChatModel:
    lab = Group.objects.create(name="lab")
    alice.groups.add(lab)
    model = ChatModel.objects.create(provider=provider, model_id="secret-model", display_name="Secret")
    model.groups.add(lab)
    return model


def test_a_model_restricted_to_a_group_is_listed_only_for_its_members(
    alice: User, bob: User, lab_only: ChatModel
) -> None:
    assert lab_only in usable_models(alice)
    assert lab_only not in usable_models(bob)
    client = Client()
    client.force_login(bob)
    assert str(lab_only.id) not in client.get("/chat/").content.decode()


async def test_bob_outside_the_group_is_refused_before_any_upstream_call(
    bob: User, lab_only: ChatModel, fake: FakeProvider, connect: Any
) -> None:
    sock = await connect(bob)
    frame = {
        "type": "send",
        "client_id": str(uuid.uuid4()),
        "conversation": None,
        "model": str(lab_only.id),
        "content": "hi",
    }
    await sock.send(frame)
    reply = await sock.recv()
    assert (reply["type"], reply["code"]) == ("error", "model_unavailable")
    assert fake.requests == []


async def test_alice_in_the_group_can_use_it(
    alice: User, lab_only: ChatModel, fake: FakeProvider, connect: Any
) -> None:
    sock = await connect(alice)
    frame = {
        "type": "send",
        "client_id": str(uuid.uuid4()),
        "conversation": None,
        "model": str(lab_only.id),
        "content": "hi",
    }
    await sock.send(frame)
    frames = await sock.recv_until("end")
    assert frames[-1]["status"] == "complete"
    assert fake.requests[-1].body["model"] == "secret-model"


# ---- the management command ---------------------------------------------------------------


def provider_cmd(*args: str, stdin: str = "") -> str:
    out = io.StringIO()
    old = __import__("sys").stdin
    __import__("sys").stdin = io.StringIO(stdin)
    try:
        call_command("provider", *args, stdout=out)
    finally:
        __import__("sys").stdin = old
    return out.getvalue()


def test_the_command_adds_a_provider_with_a_key_from_stdin(transactional_db: None, fake: FakeProvider) -> None:
    said = provider_cmd(
        "add",
        "lab",
        "--kind",
        "openai",
        "--base-url",
        fake.url + "/v1",
        "--api-key-stdin",
        "--header",
        "X-Team=blue",
        "--model",
        "fake-model=Fake Model",
        "--default",
        "fake-model",
        stdin=KEY + "\n",
    )
    assert "Added provider lab" in said and KEY not in said
    provider = Provider.objects.get(name="lab")
    assert provider.api_key() == KEY and provider.extra_headers() == {"X-Team": "blue"}
    assert provider.models.get().is_default
    listing = provider_cmd("list")
    assert "key stored" in listing and KEY not in listing and "blue" not in listing


def test_the_command_can_name_an_environment_variable_instead(
    transactional_db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAB_KEY", KEY)
    provider_cmd("add", "groq", "--preset", "groq", "--api-key-env", "LAB_KEY", "--model", "llama-3.1-8b-instant")
    provider = Provider.objects.get(name="groq")
    assert (provider.family, provider.base_url) == ("openai", "https://api.groq.com/openai/v1")
    assert provider.api_key_encrypted == "" and provider.api_key() == KEY


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["add", "x", "--preset", "nosuch"], "", "Unknown preset 'nosuch'. Known: "),
        (["add", "x", "--kind", "openai"], "", "Give --base-url"),
        (["add", "x", "--preset", "gateway"], "", "Give --base-url (this preset has no default)"),
        (["add", "x", "--base-url", "http://127.0.0.1:1/v1"], "", "Give --kind"),
        (
            ["add", "x", "--kind", "openai", "--base-url", "http://127.0.0.1:1/v1", "--api-key-stdin"],
            "\n",
            "standard input was empty",
        ),
        (
            ["add", "x", "--kind", "openai", "--base-url", "http://127.0.0.1:1/v1", "--header", "novalue"],
            "",
            "--header must look like NAME=VALUE",
        ),
        (["remove", "nosuch"], "", "No provider named 'nosuch'"),
    ],
    ids=[
        "unknown-preset",
        "missing-base-url",
        "preset-without-url",
        "missing-kind",
        "empty-stdin-key",
        "bad-header",
        "unknown-provider",
    ],
)
def test_the_command_refuses_bad_input_with_a_clear_message(
    transactional_db: None, args: list[str], stdin: str, message: str
) -> None:
    with pytest.raises(CommandError) as excinfo:
        provider_cmd(*args, stdin=stdin)
    assert message in str(excinfo.value)
    assert not Provider.objects.exists()


def test_rotate_keys_re_encrypts_under_the_newest_key_and_still_decrypts(
    transactional_db: None, fake: FakeProvider
) -> None:
    provider_cmd(
        "add",
        "lab",
        "--kind",
        "openai",
        "--base-url",
        fake.url + "/v1",
        "--api-key-stdin",
        "--header",
        "X-Team=blue",
        stdin=KEY,
    )
    before = Provider.objects.get(name="lab")
    new_key = Fernet.generate_key().decode()
    try:
        with override_settings(PARLEY_ENCRYPTION_KEYS=[new_key, TEST_KEY]):
            crypto.reset_cache()
            said = provider_cmd("rotate-keys")
            assert "1 provider(s)" in said
            after = Provider.objects.get(name="lab")
            assert after.api_key_encrypted != before.api_key_encrypted
            assert after.extra_headers_encrypted != before.extra_headers_encrypted
            assert after.api_key() == KEY and after.extra_headers() == {"X-Team": "blue"}
        # Only the new key is needed from now on: the old one can be dropped.
        with override_settings(PARLEY_ENCRYPTION_KEYS=[new_key]):
            crypto.reset_cache()
            assert Provider.objects.get(name="lab").api_key() == KEY
    finally:
        crypto.reset_cache()


def test_adding_an_existing_provider_with_only_a_new_key_keeps_where_it_points(
    transactional_db: None, fake: FakeProvider
) -> None:
    provider_cmd("add", "lab", "--preset", "vllm", "--base-url", fake.url + "/v1", "--api-key-stdin", stdin=KEY)
    provider_cmd("add", "lab", "--api-key-stdin", "--clear-headers", stdin="sk-a-brand-new-key-0001")
    provider = Provider.objects.get(name="lab")
    assert (provider.preset, provider.base_url) == ("vllm", fake.url + "/v1")
    assert provider.api_key() == "sk-a-brand-new-key-0001" and provider.extra_headers() == {}
