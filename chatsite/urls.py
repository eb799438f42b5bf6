from django.contrib import admin
from django.urls import include, path

from chat import usage_page

urlpatterns = [
    # Before the admin's own URLs, whose catch-all would answer it with a 404.
    path("admin/usage/", usage_page.usage_page, name="usage"),
    path("admin/", admin.site.urls),
    path("accounts/", include("chat.urls_accounts")),
    # The OpenAI-compatible API (docs/api.md); chatsite.asgi serves it without the site's middleware.
    path("", include("chat.api.urls")),
    path("", include("chat.urls")),
]
