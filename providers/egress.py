"""Which addresses Parley opens connections to on an administrator's behalf.

Provider base URLs are set by admins only, but one that reaches a cloud metadata service
(169.254.169.254 and friends) would let a model call, a health check or its error texts
leak that machine's cloud credentials. Link-local and metadata addresses are refused by
default; private and loopback addresses stay allowed, because a model server on the LAN or
on this machine is the point of self-hosting. Admins add their own ranges with
PARLEY_EGRESS_DENY.

The check belongs where the connection is made (providers/transport.py), so it holds for
every connection, not just when a URL is saved: the host is resolved there, every address
it resolves to is checked, and the connection goes to exactly a checked address, so a DNS
answer that changes between check and connect gains nothing. Redirects are never followed
(providers/http.py builds its clients with follow_redirects=False).

Nothing here imports Django: chat.apps calls configure() once at start-up with the
setting, and tests call it directly. Until then the defaults apply.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable

from providers.base import ErrorKind, ProviderError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

DEFAULT_DENY = (
    "169.254.0.0/16",  # IPv4 link-local: the metadata service of AWS, GCP, Azure, OpenStack, DigitalOcean...
    "fe80::/10",  # IPv6 link-local
    "fd00:ec2::254/128",  # AWS instance metadata over IPv6
    "100.100.100.200/32",  # Alibaba Cloud metadata (the rest of 100.64.0.0/10 is CGNAT, e.g. Tailscale)
    "168.63.129.16/32",  # Azure's platform endpoint (WireServer)
)
# IPv6 forms that carry an IPv4 address: a v4 rule must hold for them too.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")

_denied: tuple[Network, ...] = tuple(ipaddress.ip_network(n) for n in DEFAULT_DENY)


class BlockedAddress(ProviderError):
    """The provider's host is (or resolves to) an address outbound rules refuse. Not retried."""

    def __init__(self, host: str, address: str, network: Network) -> None:
        super().__init__(
            ErrorKind.BAD_REQUEST,
            "Parley does not connect to this provider's address: link-local and cloud-metadata "
            "addresses (and any in PARLEY_EGRESS_DENY) are blocked. An administrator needs to check "
            "the provider's base URL.",
            detail=f"blocked address {address} ({network}) for host {host}",
        )


def parse(entries: Iterable[str]) -> tuple[Network, ...]:
    """CIDR ranges or single addresses; ValueError names the entry that is neither."""
    networks = []
    for entry in entries:
        entry = entry.strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"PARLEY_EGRESS_DENY: {entry!r} is not an address or a CIDR range") from None
    return tuple(networks)


def configure(extra_deny: Iterable[str] = ()) -> None:
    """Deny the defaults plus ``extra_deny``; called once at start-up (and by tests)."""
    global _denied
    _denied = parse(DEFAULT_DENY) + parse(extra_deny)


def _forms(address: Address) -> list[Address]:
    forms: list[Address] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            forms.append(address.ipv4_mapped)
        if address.sixtofour is not None:
            forms.append(address.sixtofour)
        if address in _NAT64:
            forms.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return forms


def denied_by(address: str) -> Network | None:
    """The deny-list range an address falls in, or None when Parley may connect to it."""
    parsed = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone ("fe80::1%eth0")
    for form in _forms(parsed):
        for network in _denied:
            if form.version == network.version and form in network:
                return network
    return None


async def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to now, in the resolver's order, or BlockedAddress.

    One denied address refuses the whole name: a name that points at a metadata address
    at all is not one to trust with a key.
    """
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    for address in addresses:
        network = denied_by(address)
        if network is not None:
            raise BlockedAddress(host, address, network)
    return addresses
