"""Outbound rules: denied addresses are refused where the connection is made, redirects never followed.

Only loopback addresses are ever connected to: 127.0.0.2 stands in for a metadata address
by being put on the deny list. The default list is checked as pure address arithmetic.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from providers import egress, openai_compat, registry
from providers.base import ChatMessage, ChatRequest, ErrorKind, ProviderError, Target
from providers.http import aclose_client
from tests.fakeprovider import FakeProvider, Script

REQUEST = ChatRequest(model="fake-model", messages=(ChatMessage("user", "Hi"),))


@pytest.fixture(scope="module")
def forbidden() -> Iterator[FakeProvider]:
    """A fake provider on 127.0.0.2, the address the tests deny."""
    server = FakeProvider(host="127.0.0.2").start()
    yield server
    server.stop()


@pytest.fixture
def deny() -> Iterator[object]:
    """Set extra deny entries for one test; the defaults come back afterwards."""
    yield egress.configure
    egress.configure()


@pytest.mark.parametrize(
    "address",
    [
        "169.254.169.254",  # AWS, GCP, Azure metadata
        "169.254.170.2",  # ECS task credentials
        "fe80::1",
        "fe80::1%eth0",
        "fd00:ec2::254",  # AWS metadata over IPv6
        "100.100.100.200",  # Alibaba Cloud metadata
        "168.63.129.16",  # Azure WireServer
        "::ffff:169.254.169.254",  # the same, IPv4-mapped
        "64:ff9b::a9fe:a9fe",  # the same, through NAT64
        "2002:a9fe:a9fe::1",  # the same, 6to4
    ],
)
def test_link_local_and_metadata_addresses_are_denied_by_default(address: str) -> None:
    assert egress.denied_by(address) is not None


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "::1", "10.0.0.5", "172.16.3.4", "192.168.1.20", "fd12:3456::1", "100.64.0.7", "8.8.8.8"],
)
def test_loopback_private_tailscale_and_public_addresses_stay_allowed(address: str) -> None:
    assert egress.denied_by(address) is None


def test_a_malformed_deny_entry_is_refused_with_its_text() -> None:
    with pytest.raises(ValueError, match=re.escape("'10.0.0.0/33'")):
        egress.parse(["10.0.0.0/8", "10.0.0.0/33"])


async def test_a_denied_address_is_refused_before_any_connection_and_never_retried(
    forbidden: FakeProvider, deny: object
) -> None:
    egress.configure(["127.0.0.2/32"])
    before = forbidden.connections
    target = Target(base_url=forbidden.url + "/v1")
    with pytest.raises(ProviderError) as caught:
        async for _ in registry.stream("openai", target, REQUEST):
            pass
    err = caught.value
    assert isinstance(err, egress.BlockedAddress)
    assert err.kind is ErrorKind.BAD_REQUEST and not err.retryable and "blocked" in err.message
    assert "127.0.0.2" in err.detail and "127.0.0.2" not in err.message
    assert forbidden.connections == before and forbidden.requests == []


async def test_the_model_list_is_refused_the_same_way(forbidden: FakeProvider, deny: object) -> None:
    egress.configure(["127.0.0.2"])
    with pytest.raises(egress.BlockedAddress):
        await openai_compat.list_models(Target(base_url=forbidden.url + "/v1"))
    assert forbidden.requests == []


async def test_a_host_name_is_checked_on_what_it_resolves_to_at_connect_time(fake: FakeProvider, deny: object) -> None:
    target = Target(base_url=f"http://localhost:{fake.port}/v1")
    fake.set_default(Script(tokens=["ok"]))
    assert [e async for e in openai_compat.stream(target, REQUEST)]  # allowed: it answers
    await aclose_client()  # no kept-alive connection: the next request connects afresh
    egress.configure(["127.0.0.0/8", "::1/128"])  # the same URL, now resolving to denied addresses
    fake.reset()
    with pytest.raises(egress.BlockedAddress):
        async for _ in openai_compat.stream(target, REQUEST):
            pass
    assert fake.requests == []


@pytest.mark.parametrize("status", [302, 307])
async def test_a_redirect_towards_a_denied_address_is_never_followed(
    fake: FakeProvider, forbidden: FakeProvider, deny: object, status: int
) -> None:
    egress.configure(["127.0.0.2/32"])
    before = forbidden.connections
    fake.set_default(Script(status=status, headers={"Location": forbidden.url + "/v1/chat/completions"}))
    with pytest.raises(ProviderError) as caught:
        async for _ in registry.stream("openai", Target(base_url=fake.url + "/v1"), REQUEST):
            pass
    assert caught.value.kind is ErrorKind.BAD_REQUEST and "redirect" in caught.value.message
    assert len(fake.requests) == 1 and forbidden.connections == before


async def test_a_redirect_is_not_followed_even_to_an_allowed_address(
    fake: FakeProvider, forbidden: FakeProvider
) -> None:
    # Nothing denied here: the redirect itself is refused, not just where it leads.
    fake.fail_model_list(Script(status=302, headers={"Location": forbidden.url + "/v1/models"}))
    with pytest.raises(ProviderError, match="redirect"):
        await openai_compat.list_models(Target(base_url=fake.url + "/v1"))
    assert forbidden.requests == []
