"""Which address a sign-in attempt is counted against (chat.login_throttle.client_ip)."""

from __future__ import annotations

import pytest
from django.test import RequestFactory, override_settings

from chat.login_throttle import client_ip


def attempt(forwarded: str | None) -> object:
    headers = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded is not None else {}
    return RequestFactory().post("/accounts/login/", REMOTE_ADDR="10.0.0.1", **headers)


def test_reached_directly_the_forwarded_header_is_ignored() -> None:
    assert client_ip(attempt("203.0.113.5")) == "10.0.0.1"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("hops", "forwarded", "counted"),
    [
        (1, "198.51.100.9, 203.0.113.5", "203.0.113.5"),  # the left part is the client's to write
        (2, "198.51.100.9, 203.0.113.5, 10.0.0.2", "203.0.113.5"),
        (1, "203.0.113.5:51234", "203.0.113.5"),  # some proxies add the port
        (1, "[2001:db8::7]:443", "2001:db8::7"),
        (1, "2001:db8::7", "2001:db8::7"),
        (1, "not-an-address", "10.0.0.1"),
        (2, "203.0.113.5", "10.0.0.1"),  # fewer entries than proxies: count it against the proxy
        (1, None, "10.0.0.1"),
    ],
)
def test_behind_proxies_the_entry_the_nearest_proxy_appended_counts(
    hops: int, forwarded: str | None, counted: str
) -> None:
    with override_settings(PARLEY_PROXY_COUNT=hops):
        assert client_ip(attempt(forwarded)) == counted  # type: ignore[arg-type]
