"""Django admin for invite links: made here, shown once, revocable."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest
from django.utils import timezone

from chat import invites
from chat.models import Invite


@admin.register(Invite)
class InviteAdmin(admin.ModelAdmin):
    list_display = ["__str__", "state", "uses", "max_uses", "expires", "created_by", "created"]
    fields = ["note", "max_uses", "expires", "groups", "uses"]
    readonly_fields = ["uses"]
    filter_horizontal = ["groups"]
    actions = ["revoke"]

    @admin.display(description="State")
    def state(self, obj: Invite) -> str:
        if obj.uses >= obj.max_uses:
            return "used up"
        return "open" if obj.expires > timezone.now() else "expired"

    def save_model(
        self, request: HttpRequest, obj: Invite, form: ModelForm, change: bool  # type: ignore[type-arg]
    ) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        _, token = invites.do_create_invite(created_by=request.user, invite=obj)  # type: ignore[arg-type]
        link = request.build_absolute_uri(invites.link_path(token))
        self.message_user(
            request,
            f"Invite link (shown only now, copy it): {link} — it makes up to {obj.max_uses} account(s) "
            f"until {obj.expires:%Y-%m-%d %H:%M} UTC.",
            messages.SUCCESS,
        )

    @admin.action(description="Revoke (expire now)", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[Invite]) -> None:
        count = queryset.update(expires=timezone.now())
        self.message_user(request, f"Revoked {count} invite(s).", messages.SUCCESS)
