"""Sign-up: closed by default, so a stranger cannot register and spend the admin's keys."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterator

import pytest

from tests.live import LiveServer
from tests.security.conftest import Visitor, manage, shell

NEW = {"password1": "a-long-pass-phrase", "password2": "a-long-pass-phrase"}


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    live = LiveServer().start()  # the environment sets nothing about sign-up: the default holds
    yield live
    live.stop()


def accounts(server: LiveServer) -> list[str]:
    names = shell(
        server,
        "from django.contrib.auth.models import User\n"
        "print(' '.join(sorted(User.objects.values_list('username', flat=True))))",
    )
    return names.split()


def invite(server: LiveServer, *args: str) -> str:
    made = manage(server, "invite", *args)
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


def sign_up(server: LiveServer, path: str, username: str) -> int:
    visitor = Visitor(server)
    try:
        return visitor.form(path, {"username": username, **NEW}).status_code
    except AssertionError:  # no form to fill in: the page refused before offering one
        return visitor.get(path).status_code
    finally:
        visitor.close()


def test_a_stranger_cannot_register_on_a_server_with_default_settings(server: LiveServer) -> None:
    visitor = Visitor(server)
    page = visitor.get("/accounts/signup/")
    assert page.status_code == 404 and "Sign-up is by invitation" in page.text
    # Posting the form anyway (with a token from the login page) makes no account either.
    posted = visitor.form("/accounts/signup/", {"username": "mallory", **NEW}, page="/accounts/login/")
    assert posted.status_code == 404 and "mallory" not in accounts(server)


def test_a_single_use_invite_makes_one_account_even_when_two_people_race_for_it(server: LiveServer) -> None:
    link = invite(server)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        statuses = list(pool.map(lambda name: sign_up(server, link, name), ["racer1", "racer2"]))
    made = [name for name in ("racer1", "racer2") if name in accounts(server)]
    assert sorted(statuses) == [302, 404] and len(made) == 1


def test_an_invite_for_three_makes_three_accounts_and_no_fourth(server: LiveServer) -> None:
    link = invite(server, "--uses", "3")
    assert [sign_up(server, link, f"team{i}") for i in range(4)] == [302, 302, 302, 404]
    assert {"team0", "team1", "team2"} <= set(accounts(server)) and "team3" not in accounts(server)


def test_a_guessed_or_altered_invite_link_makes_no_account(server: LiveServer) -> None:
    link = invite(server)
    for guess in ("/accounts/invite/guess/", link[:-3] + "xx/"):
        assert sign_up(server, guess, "guesser") == 404
    assert "guesser" not in accounts(server)


def test_an_expired_invite_makes_no_account(server: LiveServer) -> None:
    link = invite(server, "--days", "0.00001")  # about a second
    time.sleep(1.5)
    assert sign_up(server, link, "late") == 404 and "late" not in accounts(server)
