"""Password guessing: throttled per account and per address, with one answer for every failure.

Most tests run against a server configured as if behind one reverse proxy
(PARLEY_PROXY_COUNT=1): the test plays the proxy by writing X-Forwarded-For, which is how
attempts from many addresses are made from one machine. The addresses are documentation
ranges (RFC 5737) written in a header; nothing is ever sent to them. The last test runs
against a server reached directly, where that header must count for nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.live import LiveServer
from tests.security.conftest import Visitor, manage, shell

USERS = ["alice", "bob", "carol", "dave", "erin", "frank", "root"]
# Lower than the default of 10 only to keep the suite quick: every counted failure costs a
# full password hash (about a second on a busy CI machine), a refused one costs nothing.
LIMIT = 3
THROTTLED = {"PARLEY_LOGIN_FAILURE_LIMIT": str(LIMIT)}


def make_users(server: LiveServer) -> None:
    shell(
        server,
        (
            "from django.contrib.auth.models import User\n"
            f"for name in {USERS!r}:\n"
            "    User.objects.create_user(name, password=name + '-password-1', is_staff=name == 'root',\n"
            "                             is_superuser=name == 'root')\n"
        ),
    )


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    live = LiveServer(extra_env={"PARLEY_PROXY_COUNT": "1", **THROTTLED}).start()
    make_users(live)
    yield live
    for visitor in _guessers.values():
        visitor.close()
    _guessers.clear()
    live.stop()


def attempt(
    server: LiveServer,
    username: str,
    password: str,
    address: str,
    path: str = "/accounts/login/",
    forwarded: str | None = None,
) -> tuple[int, str]:
    """One sign-in from ``address`` (as the proxy reports it); the status and the page.

    An attacker's script reuses its session and CSRF token between guesses, and so does this.
    """
    key = (server.url, forwarded or address, path)
    visitor = _guessers.get(key) or _guessers.setdefault(key, Visitor(server, **{"X-Forwarded-For": key[1]}))
    response = visitor.sign_in(username, password, path, again=True)
    if response.status_code == 302:
        visitor.close()
        del _guessers[key]
    return response.status_code, response.text


_guessers: dict[tuple[str, str, str], Visitor] = {}


def right(name: str) -> str:
    return name + "-password-1"


def test_a_hundred_wrong_passwords_lock_the_account_and_the_address(server: LiveServer) -> None:
    statuses = [attempt(server, "alice", f"guess-{i}", "203.0.113.5")[0] for i in range(100)]
    assert statuses[: LIMIT - 1] == [200] * (LIMIT - 1)  # the form again, with its error
    assert set(statuses[LIMIT - 1 :]) == {429}
    # The right password is refused too: from elsewhere (the account) and for others here (the address).
    assert attempt(server, "alice", right("alice"), "198.51.100.7")[0] == 429
    assert attempt(server, "bob", right("bob"), "203.0.113.5")[0] == 429
    assert attempt(server, "bob", right("bob"), "198.51.100.7")[0] == 302  # nobody else is affected


def test_guesses_spread_over_many_addresses_still_lock_the_account(server: LiveServer) -> None:
    for i in range(LIMIT):
        attempt(server, "carol", "wrong", f"198.51.100.{100 + i}")
    assert attempt(server, "carol", right("carol"), "192.0.2.77")[0] == 429


def test_guessing_many_user_names_from_one_address_locks_the_address(server: LiveServer) -> None:
    for i in range(LIMIT):
        attempt(server, f"nobody{i}", "wrong", "203.0.113.40")
    assert attempt(server, "dave", right("dave"), "203.0.113.40")[0] == 429
    assert attempt(server, "dave", right("dave"), "203.0.113.41")[0] == 302


def test_an_unknown_user_and_a_wrong_password_get_the_same_answer(server: LiveServer) -> None:
    def page(username: str, address: str) -> str:
        status, text = attempt(server, username, "wrong", address)
        text = re.sub(r'value="[^"]{20,}"', 'value="TOKEN"', text)  # the CSRF token differs each time
        return f"{status} " + text.replace(f'value="{username}"', 'value="NAME"')

    assert page("erin", "192.0.2.10") == page("no-such-user", "192.0.2.11")
    for i in range(LIMIT):  # and the lockout looks the same too
        attempt(server, "ghost-user", "wrong", f"192.0.2.{20 + i}")
        attempt(server, "erin", "wrong", f"192.0.2.{40 + i}")
    locked_real = attempt(server, "erin", "x", "192.0.2.60")
    locked_ghost = attempt(server, "ghost-user", "x", "192.0.2.61")
    assert locked_real[0] == locked_ghost[0] == 429
    assert locked_real[1] == locked_ghost[1]


def test_the_admin_sign_in_is_throttled_the_same_way(server: LiveServer) -> None:
    for i in range(LIMIT):
        attempt(server, "root", f"guess-{i}", "203.0.113.80", path="/admin/login/")
    status, text = attempt(server, "root", right("root"), "203.0.113.81", path="/admin/login/")
    assert status == 429 and "Too many failed sign-ins" in text


def test_a_locked_out_visitor_gets_a_clear_page_with_when_to_retry(server: LiveServer) -> None:
    for _i in range(LIMIT):
        attempt(server, "frank", "wrong", "203.0.113.90")
    visitor = Visitor(server, **{"X-Forwarded-For": "203.0.113.90"})
    response = visitor.sign_in("frank", right("frank"))
    assert response.status_code == 429 and response.headers["Retry-After"] == "900"
    assert "Too many failed sign-ins" in response.text and "15 minutes" in response.text
    assert "frank" not in response.text  # nothing echoed from the attempt
    visitor.close()


def test_a_forged_forwarded_address_does_not_escape_the_lock(server: LiveServer) -> None:
    # The client may write anything left of what the proxy appended; only the proxy's entry counts.
    for i in range(LIMIT + 2):
        attempt(server, f"spray{i}", "wrong", "", forwarded=f"10.9.8.{i}, 203.0.113.120")
    assert attempt(server, "bob", right("bob"), "", forwarded="10.1.1.1, 203.0.113.120")[0] == 429


def test_an_administrator_unlocks_the_account_and_the_address_with_axes_commands(server: LiveServer) -> None:
    for _i in range(LIMIT):
        attempt(server, "dave", "wrong", "192.0.2.200")
    assert attempt(server, "dave", right("dave"), "192.0.2.200")[0] == 429
    for command in (["axes_reset_username", "dave"], ["axes_reset_ip", "192.0.2.200"]):
        done = manage(server, *command)
        assert done.returncode == 0, done.stderr
    assert attempt(server, "dave", right("dave"), "192.0.2.200")[0] == 302


@pytest.fixture(scope="module")
def direct_server() -> Iterator[LiveServer]:
    live = LiveServer(extra_env=THROTTLED).start()  # no proxy in front: PARLEY_PROXY_COUNT=0
    make_users(live)
    yield live
    live.stop()


def test_reached_directly_x_forwarded_for_cannot_spread_guesses_over_fake_addresses(
    direct_server: LiveServer,
) -> None:
    for i in range(LIMIT):
        attempt(direct_server, f"sprayer{i}", "wrong", f"198.51.100.{i}")  # a new "address" each time
    assert attempt(direct_server, "alice", right("alice"), "192.0.2.1")[0] == 429
