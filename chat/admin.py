"""Django admin for the provider catalogue. Keys are write-only: admins see the last four
characters at most, and no page or form ever renders a stored key.

Provider health comes from chat.discovery's cache; the list page only ever queues
background checks, so a dead provider cannot stall it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.timesince import timesince

from chat import catalog_cache, discovery
from chat.models import ChatModel, Provider
from providers.presets import PRESETS, choices


def _preset_choices() -> list[tuple[str, str]]:
    return [("", "None (give the family and base URL)"), *choices()]


UNREADABLE_KEY = (
    "The stored key cannot be decrypted with the current PARLEY_ENCRYPTION_KEYS (was a key removed "
    "before `manage.py provider rotate-keys` ran?). Enter the key again to replace it."
)
UNREADABLE_HEADERS = (
    "The stored headers cannot be decrypted with the current PARLEY_ENCRYPTION_KEYS. Enter them again, "
    "or {} to remove them."
)


class WriteOnlyTextarea(forms.Textarea):
    """Never renders a value, not even the one just submitted when the form has an error."""

    def format_value(self, value: Any) -> None:
        return None


class ProviderForm(forms.ModelForm):
    preset = forms.ChoiceField(
        choices=_preset_choices, required=False,
        help_text="Fills in the family and base URL when you leave them at their defaults.",
    )
    base_url = forms.URLField(
        required=False, max_length=500, assume_scheme="https",
        help_text="Leave blank to use the preset's address.",
    )
    api_key = forms.CharField(
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only. Leave blank to keep the current key.",
    )
    clear_api_key = forms.BooleanField(required=False, help_text="Remove the stored key.")
    extra_headers = forms.CharField(
        required=False,
        widget=WriteOnlyTextarea(attrs={"rows": 3}),
        help_text=(
            'Write-only JSON object, e.g. {"X-Gateway-Token": "..."}. Leave blank to keep the current headers. '
            "Never shown again, so re-enter it if the form reports an error."
        ),
    )

    class Meta:
        model = Provider
        fields = [
            "name", "label", "family", "preset", "base_url", "api_key", "clear_api_key", "api_key_env",
            "extra_headers", "extra_headers_env", "connect_timeout", "first_token_timeout", "read_timeout",
            "enabled",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # A secret the current PARLEY_ENCRYPTION_KEYS cannot open (a key dropped before
        # rotate-keys) must not break this page: it is where the admin re-enters it.
        unreadable = self.instance.unreadable_secrets() if self.instance.pk else []
        if "API key" in unreadable:
            self.fields["api_key"].help_text = UNREADABLE_KEY
        elif self.instance and self.instance.api_key_encrypted:
            hint = f" ending in …{self.instance.api_key_hint}" if self.instance.api_key_hint else ""
            self.fields["api_key"].help_text = f"A key{hint} is stored. Leave blank to keep it."
        if "extra headers" in unreadable:
            self.fields["extra_headers"].help_text = UNREADABLE_HEADERS
        elif self.instance and self.instance.extra_headers_encrypted:
            names = ", ".join(sorted(self.instance.extra_headers())) or "none"
            self.fields["extra_headers"].help_text = f"Headers stored: {names}. Leave blank to keep them."

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        preset = PRESETS.get(data.get("preset") or "")
        if preset is not None:
            data["base_url"] = data.get("base_url") or preset.base_url
            if "family" not in self.changed_data or not data.get("family"):
                data["family"] = preset.family
        if not data.get("base_url"):
            self.add_error("base_url", "Give a base URL (this preset has none).")
        return data

    def clean_extra_headers(self) -> dict[str, str] | None:
        raw = self.cleaned_data.get("extra_headers", "").strip()
        if not raw:
            return None
        try:
            value = json.loads(raw)
        except ValueError:
            raise forms.ValidationError("Extra headers must be a JSON object.") from None
        if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            raise forms.ValidationError("Extra headers must be a JSON object of strings.")
        return value

    def clean_extra_headers_env(self) -> dict[str, str]:
        value = self.cleaned_data.get("extra_headers_env") or {}
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise forms.ValidationError(
                'Give a JSON object of header names to variable names, e.g. {"X-Token": "GW_TOKEN"}.'
            )
        return value

    def save(self, commit: bool = True) -> Provider:
        provider: Provider = super().save(commit=False)
        if self.cleaned_data.get("clear_api_key"):
            provider.set_api_key("")
        elif self.cleaned_data.get("api_key"):
            provider.set_api_key(self.cleaned_data["api_key"])
        headers = self.cleaned_data.get("extra_headers")
        if headers is not None:
            provider.set_extra_headers(headers)
        if commit:
            provider.save()
        return provider


class ChatModelInline(admin.TabularInline):
    model = ChatModel
    extra = 1
    fields = ["model_id", "display_name", "enabled", "is_default", "context_window", "vision", "reasoning"]


@admin.register(Provider)
class ProviderAdmin(admin.ModelAdmin):
    form = ProviderForm
    list_display = ["name", "label", "family", "preset", "base_url", "key_status", "health", "enabled"]
    list_filter = ["family", "enabled"]
    search_fields = ["name", "label", "base_url"]
    readonly_fields = ["health_detail"]
    inlines = [ChatModelInline]
    actions = ["test_connection", "discover_models"]

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        # Queue checks for stale providers; this page shows what is cached and never waits.
        # Not on POST: an action is about to check the selected providers itself. A check
        # calls the provider with its key, so only those who may run the action cause one.
        if request.method == "GET" and self.has_change_permission(request):
            discovery.refresh_stale(Provider.objects.filter(enabled=True))
        return super().changelist_view(request, extra_context)

    @admin.display(description="Health")
    def health(self, obj: Provider) -> str:
        status = discovery.cached_health(obj)
        if status is None:
            return "not checked yet" if obj.enabled else "disabled"
        if status.ok:
            return format_html('<span title="{}">healthy, {} ms</span>', status.summary(), status.latency_ms)
        return format_html('<strong title="{}">unhealthy: {}</strong>', status.summary(), status.kind)

    @admin.display(description="Last check")
    def health_detail(self, obj: Provider) -> str:
        status = discovery.cached_health(obj) if obj.pk else None
        if status is None:
            return "Not checked yet. Use the “Test connection” action on the provider list."
        ago = timesince(datetime.fromtimestamp(status.checked, tz=UTC))
        state = "Healthy" if status.ok else "Unhealthy"
        return f"{state} ({ago} ago): {status.summary()}"

    # Both actions call the provider with its key, and discovery writes model rows: staff who
    # may only view providers get neither (Django leaves them out of the action list and
    # refuses them if posted anyway; the checks inside are the second lock).
    def has_discover_permission(self, request: HttpRequest) -> bool:
        return self.has_change_permission(request) and request.user.has_perm("chat.add_chatmodel")

    @admin.action(description="Test connection (a tiny real request)", permissions=["change"])
    def test_connection(self, request: HttpRequest, queryset: QuerySet[Provider]) -> None:
        if not self.has_change_permission(request):
            raise PermissionDenied
        for provider in queryset:
            status = discovery.check(provider)
            level = messages.SUCCESS if status.ok else messages.ERROR
            self.message_user(request, f"{provider.name}: {status.summary()}.", level)

    @admin.action(
        description="Discover models (imported disabled, for you to enable)", permissions=["discover"]
    )
    def discover_models(self, request: HttpRequest, queryset: QuerySet[Provider]) -> None:
        if not self.has_discover_permission(request):
            raise PermissionDenied
        for provider in queryset:
            status = discovery.check(provider)
            if not status.ok:
                self.message_user(request, f"{provider.name}: {status.summary()}.", messages.ERROR)
                continue
            if not status.listed:
                self.message_user(
                    request, f"{provider.name}: this service has no model list; add models by hand.", messages.WARNING
                )
                continue
            added = discovery.do_import_models(provider, status.models)
            link = reverse("admin:chat_chatmodel_changelist") + f"?provider__id__exact={provider.pk}&enabled__exact=0"
            self.message_user(
                request,
                format_html(
                    '{}: {} model(s) listed, {} new imported as disabled. '
                    '<a href="{}">Enable the ones users may pick</a>.',
                    provider.name, len(status.models), len(added), link,
                ),
                messages.SUCCESS,
            )

    def save_model(self, request: HttpRequest, obj: Provider, form: forms.ModelForm, change: bool) -> None:
        super().save_model(request, obj, form, change)
        discovery.forget(obj)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        provider = self.get_object(request, object_id)
        unreadable = provider.unreadable_secrets() if provider is not None else []
        if unreadable and request.method == "GET":
            self.message_user(
                request,
                f"This provider's {' and '.join(unreadable)} cannot be decrypted with the current "
                "PARLEY_ENCRYPTION_KEYS, so it cannot be used. Restore the removed key, "
                "or enter them again below.",
                messages.WARNING,
            )
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="Key")
    def key_status(self, obj: Provider) -> str:
        if obj.api_key_env:
            return f"from ${obj.api_key_env}"
        if obj.unreadable_secrets():
            return "cannot be decrypted"
        if obj.api_key_encrypted:
            return f"…{obj.api_key_hint}" if obj.api_key_hint else "stored"
        return "none"


@admin.register(ChatModel)
class ChatModelAdmin(admin.ModelAdmin):
    list_display = ["name", "model_id", "api_id", "provider", "enabled", "is_default", "takes_images", "reasoning",
                    "cache_ttl"]
    list_filter = ["provider", "enabled"]
    fieldsets = [
        (None, {"fields": ["provider", "model_id", "display_name", "enabled", "is_default", "groups"]}),
        ("Reasoning", {
            "fields": ["reasoning", "reasoning_effort", "reasoning_budget"],
            "description": "Thinking is asked for in each provider's own way; see docs/providers.md.",
        }),
        ("Attachments", {
            "fields": ["vision"],
            "description": "Unknown follows the provider's preset (docs/attachments.md); discovery fills it in "
                           "where the provider's model list says.",
        }),
        ("API and response cache", {
            "fields": ["api_name", "cache_ttl", "cache_max_temperature", "cache_shared"],
            "description": "Scripts name this model by its API id at /v1 (docs/api.md). The cache answers an "
                           "exact repeat (same model, messages and settings) without calling the provider, at "
                           "no cost; Regenerate and the API's Cache-Control: no-cache ask afresh.",
        }),
        ("Limits and prices", {
            "fields": ["context_window", "price_input_per_mtok", "price_output_per_mtok", "price_currency"],
            "description": "An answer's cost is worked out from these prices when it is given, and kept: "
                           "changing a price never changes what past answers cost. The context window "
                           "also decides how long a document may be (docs/attachments.md).",
        }),
    ]
    search_fields = ["model_id", "display_name"]
    filter_horizontal = ["groups"]

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).select_related("provider")

    @admin.display(description="API id")
    def api_id(self, obj: ChatModel) -> str:
        return catalog_cache.api_id(obj.id)

    @admin.display(description="Images", boolean=True)
    def takes_images(self, obj: ChatModel) -> bool:
        return obj.takes_images()


# The other admin pages import what is defined above, so they are registered last.
import chat.admin_api  # noqa: E402  (registers API tokens)
import chat.admin_browser  # noqa: E402
import chat.admin_invites  # noqa: E402
import chat.admin_usage  # noqa: E402, F401  (registers budgets and the audit log)
