"""Django admin for what answers may cost and what admins did: budgets and the audit log.

Prices live on the model (ChatModelAdmin in chat/admin.py); the usage page is
chat/usage_page.py, linked from the admin index (templates/admin/index.html).
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.urls import URLPattern, path
from django.utils import timezone

from chat.models import AuditEvent, Budget, ChatModel
from chat.models.catalog import currency_code
from chat.usage_page import csv_response


def priced_currencies() -> set[str]:
    priced = ChatModel.objects.filter(Q(price_input_per_mtok__isnull=False) | Q(price_output_per_mtok__isnull=False))
    return set(priced.values_list("price_currency", flat=True))


class BudgetForm(forms.ModelForm):  # type: ignore[type-arg]
    # Longer than a code may be, so "EURO" hears what a code is rather than "at most 3 characters".
    currency = forms.CharField(max_length=10, initial="USD", help_text="ISO 4217, e.g. USD or EUR.")

    class Meta:
        model = Budget
        fields = ["user", "group", "period", "max_tokens", "max_cost", "currency"]
        help_texts = {
            "user": "A budget of this user's own: it beats any group's and everyone's.",
            "group": "A budget for each member of this group (a member of several groups gets the most "
                     "generous). Leave user and group empty for a budget for everyone.",
        }

    def clean_currency(self) -> str:
        code = str(self.cleaned_data.get("currency") or "").strip().upper()
        currency_code(code)  # before clean() compares it with the models' prices
        return code

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        user, group, period = data.get("user"), data.get("group"), data.get("period")
        if user and group:
            raise forms.ValidationError(
                "A budget is for one user, one group or everyone: choose a user or a group, not both."
            )
        if not user and not group and period:
            # The database cannot say this one: NULLs never collide in a unique constraint.
            others = Budget.objects.filter(user=None, group=None, period=period).exclude(pk=self.instance.pk)
            if others.exists():
                raise forms.ValidationError("There is already a budget for everyone for this period: change that one.")
        currency = data.get("currency")
        if data.get("max_cost") is not None and currency:
            known = priced_currencies()
            if known and currency not in known:
                self.add_error("currency", (
                    f"No model is priced in {currency}, so this budget's money limit would never be reached. "
                    f"Models are priced in {', '.join(sorted(known))}."
                ))
        return data


@admin.register(Budget)
class BudgetAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    form = BudgetForm
    list_display = ["__str__", "scope", "period", "max_tokens", "max_cost", "currency", "updated"]
    list_filter = ["period"]
    search_fields = ["user__username", "group__name"]
    autocomplete_fields = ["user", "group"]
    fieldsets = [
        ("Who", {
            "fields": ["user", "group"],
            "description": "The most specific budget wins: a user's own, else the most generous of their "
                           "groups', else the one for everyone.",
        }),
        ("How much", {
            "fields": ["period", "max_tokens", "max_cost", "currency"],
            "description": "Days start at midnight and months on the 1st, in the server's time zone. An answer "
                           "that crosses the budget finishes; the next one is refused until the period resets. "
                           "Leave both limits empty for no limit (to exempt a user from a group's budget).",
        }),
    ]

    def save_model(self, request: HttpRequest, obj: Budget, form: forms.ModelForm, change: bool) -> None:  # type: ignore[type-arg]
        super().save_model(request, obj, form, change)
        if obj.max_cost is not None and not priced_currencies():
            self.message_user(request, "No model has a price yet, so the money limit counts nothing until "
                                       "models are priced (Chat models → Limits and prices).", messages.WARNING)


class ActionFilter(admin.SimpleListFilter):
    title = "action"
    parameter_name = "action"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        actions = AuditEvent.objects.order_by("action").values_list("action", flat=True).distinct()
        return [(a, a) for a in actions]

    def queryset(self, request: HttpRequest, queryset: QuerySet[AuditEvent]) -> QuerySet[AuditEvent]:
        return queryset.filter(action=self.value()) if self.value() else queryset


class ActorFilter(admin.SimpleListFilter):
    title = "actor"
    parameter_name = "actor"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        # A long tail of names is what the search box is for.
        names = AuditEvent.objects.order_by("actor_name").values_list("actor_name", flat=True).distinct()[:100]
        return [(n, n or "system") for n in names]

    def queryset(self, request: HttpRequest, queryset: QuerySet[AuditEvent]) -> QuerySet[AuditEvent]:
        return queryset.filter(actor_name=self.value()) if self.value() is not None else queryset


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Read-only: an audit log nobody can edit in the admin, the admins included."""

    list_display = ["created", "actor_name", "action", "target", "details", "address"]
    list_filter = [ActionFilter, ActorFilter, ("created", admin.DateFieldListFilter)]
    search_fields = ["actor_name", "action", "target", "address"]
    date_hierarchy = "created"
    fields = ["created", "actor_name", "action", "target", "details", "address"]
    readonly_fields = ["created", "actor_name", "action", "target", "details", "address"]
    list_per_page = 100

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="Details")
    def details(self, obj: AuditEvent) -> str:
        return json.dumps(obj.detail, ensure_ascii=False, sort_keys=True) if obj.detail else ""

    def get_urls(self) -> list[URLPattern]:
        export = path("export/", self.admin_site.admin_view(self.export_csv), name="chat_auditevent_export")
        return [export, *super().get_urls()]

    def export_csv(self, request: HttpRequest) -> HttpResponseBase:
        """The list as filtered and searched on the page (every page of it), as CSV."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            events = self.get_changelist_instance(request).get_queryset(request)
        except IncorrectLookupParameters:
            return HttpResponse("These filters are not valid; open the audit log and filter again.",
                                status=400, content_type="text/plain")
        rows = (
            [timezone.localtime(e.created).isoformat(), e.actor_name, e.action, e.target, self.details(e),
             e.address or ""]
            for e in events.iterator(chunk_size=2000)
        )
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
        head = ["When", "Actor", "Action", "Target", "Details", "Address"]
        return csv_response(f"parley-audit-{stamp}.csv", head, rows)
