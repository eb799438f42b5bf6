"""A strict Content-Security-Policy on every response, from the first page on.

No inline scripts, styles or handlers anywhere: page data travels in json_script blocks.
A view that needs more (the in-browser model page needs WebAssembly) sets
`response.csp_extra` with the additional source expressions per directive.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

BASE_POLICY: dict[str, list[str]] = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "connect-src": ["'self'"],
    "font-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'none'"],
    "frame-ancestors": ["'none'"],
    "form-action": ["'self'"],
}


def build_policy(extra: dict[str, list[str]] | None = None) -> str:
    policy = {k: list(v) for k, v in BASE_POLICY.items()}
    for directive, sources in (extra or {}).items():
        policy.setdefault(directive, []).extend(sources)
    return "; ".join(f"{d} {' '.join(s)}" for d, s in policy.items())


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.default = build_policy()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        extra = getattr(response, "csp_extra", None)
        response.headers.setdefault("Content-Security-Policy", build_policy(extra) if extra else self.default)
        return response
