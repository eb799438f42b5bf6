"""The WebSocket handshake's Origin check: scheme, host and port, as Django checks a form's.

A browser sends cookies with every WebSocket handshake, whatever page opens it, so the
Origin header is what stops another site, or another program on another port of this
machine, from driving a signed-in user's socket. Channels' AllowedHostsOriginValidator
compares host names only: http://localhost:9999 passed for a server on :8000.

Following Django's CSRF origin check, an Origin is accepted when it is the request's own
origin, or when it is listed in CSRF_TRUSTED_ORIGINS (``https://*.example.com`` covers
subdomains). The request's own origin is its scheme (``wss`` is https; behind a TLS proxy,
SECURE_PROXY_SSL_HEADER decides) with the Host header, which must be in ALLOWED_HOSTS.
A handshake without an Origin is refused: browsers always send one.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.utils.http import is_same_domain

_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalise(origin: str) -> str | None:
    """``scheme://host[:port]`` in lower case without a default port, or None if not an origin."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    extra = parts.path not in ("", "/") or parts.query or parts.username
    if scheme not in _DEFAULT_PORTS or not host or extra:
        return None
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal
    return f"{scheme}://{host}" if port in (None, _DEFAULT_PORTS[scheme]) else f"{scheme}://{host}:{port}"


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _scheme(scope: dict[str, Any]) -> str:
    if settings.SECURE_PROXY_SSL_HEADER:
        meta_name, secure_value = settings.SECURE_PROXY_SSL_HEADER
        header = meta_name.removeprefix("HTTP_").lower().replace("_", "-").encode()
        value = _header(scope, header)
        if value is not None:
            return "https" if value.split(",", 1)[0].strip() == secure_value else "http"
    return "https" if scope.get("scheme") == "wss" else "http"


def _trusted(origin: str) -> bool:
    for entry in settings.CSRF_TRUSTED_ORIGINS:
        if "*" in entry:
            pattern = urlsplit(entry)
            request = urlsplit(origin)
            same_domain = is_same_domain(request.netloc, pattern.netloc.lstrip("*"))
            if request.scheme == pattern.scheme and same_domain:
                return True
        elif normalise(entry) == origin:
            return True
    return False


def origin_allowed(scope: dict[str, Any]) -> bool:
    """Whether this WebSocket handshake may proceed (see the module docstring)."""
    origin = normalise(_header(scope, b"origin") or "")
    host = _header(scope, b"host") or ""
    domain, _ = split_domain_port(host)
    allowed_hosts = settings.ALLOWED_HOSTS or ([".localhost", "127.0.0.1", "[::1]"] if settings.DEBUG else [])
    if origin is None or not domain or not validate_host(domain, allowed_hosts):
        return False
    return origin == normalise(f"{_scheme(scope)}://{host}") or _trusted(origin)


class SameOriginValidator:
    """ASGI middleware: refuse (HTTP 403) a WebSocket handshake from any other origin."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket" and not origin_allowed(scope):
            return await WebsocketDenier()(scope, receive, send)
        return await self.application(scope, receive, send)
