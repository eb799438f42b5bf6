"""ASGI entry point: HTTP through Django, the chat WebSocket through auth and Origin checks.

The Origin check (chat/origin.py) compares scheme, host and port, as Django's CSRF check does.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
# Django must be set up before anything imports models (the consumer does).
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from chat.api.handler import ApiHandler  # noqa: E402
from chat.origin import SameOriginValidator  # noqa: E402
from chat.routing import websocket_urlpatterns  # noqa: E402

api_app = ApiHandler()


async def http(scope, receive, send):  # type: ignore[no-untyped-def]
    """The OpenAI-compatible API (/v1/) skips the site's middleware; everything else is the site."""
    app = api_app if scope["path"].startswith("/v1/") else django_asgi_app
    await app(scope, receive, send)


application = ProtocolTypeRouter(
    {
        "http": http,
        "websocket": SameOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
