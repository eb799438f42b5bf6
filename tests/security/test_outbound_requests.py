"""Server-side request forgery through a provider's base URL: denied addresses are never reached.

No test here sends anything beyond loopback: 127.0.0.2 plays the cloud metadata service by
being on the server's deny list (PARLEY_EGRESS_DENY), with a fake provider listening there
to prove that nothing ever arrives. The default list (link-local, metadata addresses) is
checked address by address in tests/providers/test_egress.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakeprovider import FakeProvider, Script
from tests.live import LiveServer
from tests.security.conftest import Visitor, ask, model_id, shell


@pytest.fixture(scope="module")
def metadata() -> Iterator[FakeProvider]:
    """Stands in for 169.254.169.254: a server on a denied address that must never get a connection."""
    server = FakeProvider(host="127.0.0.2").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def server(fake_server: FakeProvider, metadata: FakeProvider) -> Iterator[LiveServer]:
    live = LiveServer(extra_env={"PARLEY_EGRESS_DENY": "127.0.0.2/32"}).start()
    upstreams = {"metadata": metadata.url + "/v1", "bouncer": fake_server.url + "/v1"}
    shell(
        live,
        (
            "from django.contrib.auth.models import User\n"
            "from chat.models import ChatModel, Provider\n"
            "User.objects.create_user('alice', password='pw-alice-1')\n"
            "User.objects.create_superuser('root', password='pw-root-1')\n"
            f"for name, url in {upstreams!r}.items():\n"
            "    p = Provider.objects.create(name=name, family='openai', base_url=url)\n"
            "    ChatModel.objects.create(provider=p, model_id='fake-model')\n"
        ),
    )
    yield live
    live.stop()


@pytest.fixture
def alice(server: LiveServer) -> Iterator[Visitor]:
    visitor = Visitor(server)
    assert visitor.sign_in("alice", "pw-alice-1").status_code == 302
    yield visitor
    visitor.close()


async def test_a_provider_pointing_at_a_denied_address_is_never_connected_to(
    server: LiveServer, metadata: FakeProvider, alice: Visitor
) -> None:
    frames = await ask(server, alice, model_id(server, "metadata", "fake-model"))
    end = frames[-1]
    assert end["type"] == "end" and end["status"] == "error", frames
    assert end["error"]["kind"] == "bad_request" and "blocked" in end["error"]["message"]
    assert "127.0.0.2" not in str(frames)  # the address is for the log, not for users
    assert metadata.connections == 0
    assert "blocked address 127.0.0.2" in server.log()  # the admin-facing detail, under the ref
    assert end["error"]["ref"] in server.log()


def test_test_connection_tells_the_admin_the_address_is_blocked(server: LiveServer, metadata: FakeProvider) -> None:
    root = Visitor(server)
    assert root.sign_in("root", "pw-root-1", "/admin/login/").status_code == 302
    pk = shell(server, "from chat.models import Provider\nprint(Provider.objects.get(name='metadata').pk)")
    action = {"action": "test_connection", "_selected_action": pk.strip()}
    checked = root.form("/admin/chat/provider/", action)
    assert checked.status_code == 302
    shown = root.get("/admin/chat/provider/").text
    # (Django admin capitalises the message's first letter.)
    assert "Metadata: Parley does not connect to this provider&#x27;s address" in shown
    assert metadata.connections == 0
    root.close()


async def test_a_redirect_towards_a_denied_address_is_not_followed(
    server: LiveServer, fake_server: FakeProvider, metadata: FakeProvider, alice: Visitor
) -> None:
    fake_server.reset()
    fake_server.set_default(Script(status=307, headers={"Location": metadata.url + "/latest/meta-data/"}))
    try:
        frames = await ask(server, alice, model_id(server, "bouncer", "fake-model"))
    finally:
        fake_server.reset()
    end = frames[-1]
    assert end["status"] == "error" and "redirect" in end["error"]["message"]
    assert len(fake_server.requests) <= 1 and metadata.connections == 0
