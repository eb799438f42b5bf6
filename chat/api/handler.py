"""The API's own door: Django's ASGI handler without the site's middleware.

Every middleware of the site (sessions, CSRF, authentication, messages, the audit actor,
sign-in throttling) is synchronous, so an async view behind them pays a hop to the one
thread Django and Channels share for the database, per middleware, per call — the thread
the chat's saves wait on. The API authenticates by its Bearer token and keeps no session,
so chatsite.asgi sends /v1/ here instead. The views are the same Django views
(chat.api.views, also in the site's URLs).

This builds Django's middleware chain for an empty MIDDLEWARE list, which is what
BaseHandler.load_middleware leaves behind; the attributes are Django's own (unchanged since
1.10): if an upgrade renames them, every API test fails at the first request.
"""

from __future__ import annotations

from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.exception import convert_exception_to_response


class ApiHandler(ASGIHandler):
    def load_middleware(self, is_async: bool = False) -> None:
        self._view_middleware = []  # type: ignore[var-annotated]
        self._template_response_middleware = []  # type: ignore[var-annotated]
        self._exception_middleware = []  # type: ignore[var-annotated]
        get_response = self._get_response_async if is_async else self._get_response  # type: ignore[attr-defined]
        self._middleware_chain = convert_exception_to_response(get_response)  # type: ignore[assignment]
