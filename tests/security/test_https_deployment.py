"""Deployment over TLS: production settings come from the environment and pass Django's own audit.

An attacker on the network reads or rewrites plain HTTP, and steals cookies sent over it.
With PARLEY_HTTPS=1 plain requests are redirected, HSTS tells browsers never to try plain
HTTP again, and cookies are Secure; `make run` on loopback keeps serving plain HTTP.
"""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from tests.live import ROOT, TEST_KEY, LiveServer
from tests.security.conftest import Visitor, env_without_secrets, shell

PRODUCTION = {
    "SECRET_KEY": secrets.token_urlsafe(50),
    "PARLEY_ENCRYPTION_KEYS": TEST_KEY,
    "ALLOWED_HOSTS": "chat.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://chat.example.com",
    "PARLEY_HTTPS": "1",
    "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto",
    "PARLEY_PROXY_COUNT": "1",
}
BEHIND_TLS = {"PARLEY_HTTPS": "1", "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto"}


def check_deploy(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        # A developer's own .env must not supply what the test leaves out.
        env={**env_without_secrets(), "PARLEY_ENV_FILE": "/nonexistent/.env", **env},
    )


def test_production_settings_from_the_environment_pass_check_deploy_at_warning_level() -> None:
    result = check_deploy(**PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_without_parley_https_the_audit_fails_so_it_is_really_checking() -> None:
    result = check_deploy(**{k: v for k, v in PRODUCTION.items() if k != "PARLEY_HTTPS"})
    assert result.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in result.stderr


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    live = LiveServer(extra_env=BEHIND_TLS).start()
    shell(
        live, ("from django.contrib.auth.models import User\nUser.objects.create_user('alice', password='pw-alice-1')")
    )
    yield live
    live.stop()


def test_plain_http_is_redirected_to_https(server: LiveServer) -> None:
    response = Visitor(server).get("/accounts/login/")
    assert response.status_code == 301
    assert response.headers["Location"] == f"https://127.0.0.1:{server.port}/accounts/login/"


def test_a_header_other_than_the_proxys_does_not_pass_for_https(server: LiveServer) -> None:
    assert Visitor(server, **{"X-Forwarded-Ssl": "on"}).get("/accounts/login/").status_code == 301


def test_over_https_pages_send_hsts_and_every_cookie_is_secure(server: LiveServer) -> None:
    # The test plays the TLS proxy on plain HTTP, where a cookie jar rightly keeps Secure
    # cookies to itself: cookies are carried by hand, as the browser would over TLS.
    proxied = {"X-Forwarded-Proto": "https"}
    with httpx.Client(base_url=server.url, headers=proxied, follow_redirects=False) as http:
        page = http.get("/accounts/login/")
        assert page.status_code == 200
        assert page.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
        csrf_cookie = page.headers["set-cookie"]
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert token and "; Secure" in csrf_cookie
        signed_in = http.post(
            "/accounts/login/",
            data={"username": "alice", "password": "pw-alice-1", "csrfmiddlewaretoken": token.group(1)},
            headers={"Origin": f"https://127.0.0.1:{server.port}", "Cookie": csrf_cookie.split(";", 1)[0]},
        )
    assert signed_in.status_code == 302
    cookies = signed_in.headers.get_list("set-cookie")
    assert any(c.startswith("sessionid=") for c in cookies)
    assert all("; Secure" in c for c in cookies), cookies


@pytest.fixture(scope="module")
def loopback() -> Iterator[LiveServer]:
    live = LiveServer().start()  # what `make run` serves: nothing about TLS in the environment
    yield live
    live.stop()


def test_make_run_on_loopback_keeps_serving_plain_http(loopback: LiveServer) -> None:
    page = Visitor(loopback).get("/accounts/login/")
    assert page.status_code == 200 and "Strict-Transport-Security" not in page.headers
    assert all("Secure" not in c for c in page.headers.get_list("set-cookie"))
