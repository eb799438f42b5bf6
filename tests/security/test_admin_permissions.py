"""Admin actions that call a provider with its key (and write model rows) need the right permission."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.fakeprovider import FakeProvider, Script
from tests.live import LiveServer
from tests.security.conftest import Visitor, shell

STAFF = {
    # name: permissions (codenames of the chat app)
    "viewer": ["view_provider", "view_chatmodel"],
    "tester": ["view_provider", "change_provider", "view_chatmodel"],
    "editor": ["view_provider", "change_provider", "view_chatmodel", "add_chatmodel", "change_chatmodel"],
}
LIST = "/admin/chat/provider/"


@pytest.fixture(scope="module")
def server(fake_server: FakeProvider) -> Iterator[LiveServer]:
    live = LiveServer().start()
    shell(
        live,
        (
            "from django.contrib.auth.models import Permission, User\n"
            "from chat.models import ChatModel, Provider\n"
            f"for name, perms in {STAFF!r}.items():\n"
            "    user = User.objects.create_user(name, password=name + '-password-1', is_staff=True)\n"
            "    chat = Permission.objects.filter(content_type__app_label='chat')\n"
            "    user.user_permissions.set(chat.filter(codename__in=perms))\n"
            f"p = Provider.objects.create(name='lab', family='openai', base_url={fake_server.url + '/v1'!r})\n"
            "p.set_api_key('sk-lab-key-for-admins-only'); p.save()\n"
            "ChatModel.objects.create(provider=p, model_id='fake-model')\n"
            "print(p.pk)\n"
        ),
    )
    yield live
    live.stop()


@pytest.fixture(scope="module")
def provider_pk(server: LiveServer) -> str:
    return shell(server, "from chat.models import Provider as P\nprint(P.objects.get(name='lab').pk)").strip()


@pytest.fixture
def fake(fake_server: FakeProvider) -> FakeProvider:
    fake_server.reset()
    fake_server.script_for_model("newly-listed", Script())  # the model list gains one model
    return fake_server


def staff(server: LiveServer, name: str) -> Visitor:
    visitor = Visitor(server)
    assert visitor.sign_in(name, name + "-password-1", "/admin/login/").status_code == 302
    return visitor


def run(visitor: Visitor, action: str, pk: str) -> str:
    """Post an action as the list page would; the messages shown afterwards."""
    posted = visitor.form(LIST, {"action": action, "_selected_action": pk, "index": "0"})
    assert posted.status_code in (200, 302)  # with no action left to offer, the list is shown again
    return posted.text + visitor.get(LIST).text


def models_of_lab(server: LiveServer) -> list[str]:
    listed = shell(
        server, "from chat.models import ChatModel\nprint(sorted(ChatModel.objects.values_list('model_id', flat=True)))"
    )
    return eval(listed)  # a list of strings printed by our own script


def test_view_only_staff_opening_the_provider_list_cause_no_call_with_the_key(
    server: LiveServer, fake: FakeProvider
) -> None:
    viewer = staff(server, "viewer")
    page = viewer.get(LIST)
    assert page.status_code == 200 and "lab" in page.text
    time.sleep(1.5)  # a background health check would have reached the fake by now (see the next test)
    assert fake.requests == []


def test_staff_who_may_change_providers_do_refresh_stale_health_in_the_background(
    server: LiveServer, fake: FakeProvider
) -> None:
    staff(server, "tester").get(LIST)
    assert fake.wait_for_requests(1, timeout=5)[0].path == "/v1/models"


@pytest.mark.parametrize("action", ["test_connection", "discover_models"])
def test_view_only_staff_cannot_run_actions_that_call_the_provider(
    server: LiveServer, fake: FakeProvider, provider_pk: str, action: str
) -> None:
    viewer = staff(server, "viewer")
    assert f'value="{action}"' not in viewer.get(LIST).text  # not offered...
    run(viewer, action, provider_pk)  # ...and not run when posted anyway
    time.sleep(0.5)
    assert fake.requests == [] and models_of_lab(server) == ["fake-model"]


def test_staff_who_may_not_add_models_can_test_a_connection_but_not_discover_models(
    server: LiveServer, fake: FakeProvider, provider_pk: str
) -> None:
    tester = staff(server, "tester")
    assert "connected in" in run(tester, "test_connection", provider_pk)
    fake.reset()
    assert "No action selected" in run(tester, "discover_models", provider_pk)
    assert fake.requests == [] and models_of_lab(server) == ["fake-model"]


def test_staff_with_every_permission_discover_models(server: LiveServer, fake: FakeProvider, provider_pk: str) -> None:
    shown = run(staff(server, "editor"), "discover_models", provider_pk)
    assert "new imported as disabled" in shown
    assert models_of_lab(server) == ["fake-model", "newly-listed"]
