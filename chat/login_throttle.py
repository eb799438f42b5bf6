"""Sign-in throttling: the two hooks Parley gives django-axes (settings.py configures the rest).

django-axes counts failed sign-ins on /accounts/login/ and /admin/login/ (it listens to
Django's user_login_failed signal) per user name and per address, and refuses a locked
pair before any password is checked. A user name that does not exist is counted and
locked exactly like one that does, so neither the answer nor the lockout says which
accounts exist. Unlock with `manage.py axes_reset_username NAME`, `axes_reset_ip ADDRESS`
or `axes_reset` (everything), or by deleting the attempt in Django admin.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def client_ip(request: HttpRequest) -> str:
    """The address an attempt came from, as far as it can be trusted.

    Without a proxy it is the peer Daphne saw: X-Forwarded-For is the client's to write.
    Behind PARLEY_PROXY_COUNT proxies, each appends the address it was reached from, so
    the one that proxy nearest the client wrote sits that many places from the right;
    anything further left is the client's own and could be forged to dodge the lock.
    """
    peer = str(request.META.get("REMOTE_ADDR") or "")
    hops = settings.PARLEY_PROXY_COUNT
    if hops <= 0:
        return peer
    forwarded = [part.strip() for part in str(request.META.get("HTTP_X_FORWARDED_FOR", "")).split(",")]
    if len(forwarded) < hops:
        return peer  # the proxy did not add the header: count the attempt against the proxy
    return _address(forwarded[-hops]) or peer


def _address(entry: str) -> str | None:
    """An address from X-Forwarded-For, where some proxies add a port ("1.2.3.4:5678", "[::1]:80")."""
    candidates = [entry]
    if entry.startswith("["):
        candidates.append(entry[1:].split("]", 1)[0])
    elif entry.count(":") == 1:
        candidates.append(entry.split(":", 1)[0])
    for candidate in candidates:
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            continue
    return None


def locked_out(request: HttpRequest, original_response: Any = None, credentials: Any = None) -> HttpResponse:
    """A clear page (429 with Retry-After), the same whichever user name was tried."""
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    response = render(request, "registration/locked_out.html", {"minutes": minutes}, status=429)
    response["Retry-After"] = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    return response
