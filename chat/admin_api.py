"""Admin for API tokens: every user's, to see and revoke; never to make or read one."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from chat.api.tokens import do_revoke_token
from chat.models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = (
        "name",
        "user",
        "prefix",
        "models",
        "save_history",
        "created",
        "expires_at",
        "last_used",
        "state",
    )
    list_filter = (("revoked_at", admin.EmptyFieldListFilter), "save_history")
    search_fields = ("name", "prefix", "user__username")
    readonly_fields = (
        "user",
        "name",
        "prefix",
        "scope",
        "save_history",
        "created",
        "expires_at",
        "last_used",
        "revoked_at",
    )
    fields = readonly_fields
    actions = ("revoke",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[ApiToken]:
        return super().get_queryset(request).select_related("user").prefetch_related("scope")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # a token is made by its user, who is the only one ever to see it

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="Models")
    def models(self, obj: ApiToken) -> str:
        return ", ".join(m.name for m in obj.scope.all()) or "all the user's"

    @admin.display(description="State")
    def state(self, obj: ApiToken) -> str:
        return "revoked" if obj.revoked_at else "active" if obj.active else "expired"

    @admin.action(description="Revoke selected tokens", permissions=["delete"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        count = 0
        for token in queryset.filter(revoked_at__isnull=True):
            do_revoke_token(token)
            count += 1
        self.message_user(request, f"{count} token{'s' if count != 1 else ''} revoked.", messages.SUCCESS)
