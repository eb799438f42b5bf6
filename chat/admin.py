"""Django admin for the provider catalogue. Keys are write-only: admins see the last four
characters at most, and no page or form ever renders a stored key."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from chat.models import ChatModel, Provider


class ProviderForm(forms.ModelForm):
    api_key = forms.CharField(
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only. Leave blank to keep the current key.",
    )
    clear_api_key = forms.BooleanField(required=False, help_text="Remove the stored key.")
    extra_headers = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text='Write-only JSON object, e.g. {"X-Gateway-Token": "..."}. Leave blank to keep the current headers.',
    )

    class Meta:
        model = Provider
        fields = [
            "name", "label", "family", "preset", "base_url", "api_key", "clear_api_key", "api_key_env",
            "extra_headers", "connect_timeout", "first_token_timeout", "read_timeout", "enabled",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance and self.instance.api_key_encrypted:
            hint = f" ending in …{self.instance.api_key_hint}" if self.instance.api_key_hint else ""
            self.fields["api_key"].help_text = f"A key{hint} is stored. Leave blank to keep it."
        if self.instance and self.instance.extra_headers_encrypted:
            names = ", ".join(sorted(self.instance.extra_headers())) or "none"
            self.fields["extra_headers"].help_text = f"Headers stored: {names}. Leave blank to keep them."

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
    fields = ["model_id", "display_name", "enabled", "is_default", "context_window"]


@admin.register(Provider)
class ProviderAdmin(admin.ModelAdmin):
    form = ProviderForm
    list_display = ["name", "label", "family", "preset", "base_url", "key_status", "enabled"]
    list_filter = ["family", "enabled"]
    search_fields = ["name", "label", "base_url"]
    inlines = [ChatModelInline]

    @admin.display(description="Key")
    def key_status(self, obj: Provider) -> str:
        if obj.api_key_env:
            return f"from ${obj.api_key_env}"
        if obj.api_key_encrypted:
            return f"…{obj.api_key_hint}" if obj.api_key_hint else "stored"
        return "none"


@admin.register(ChatModel)
class ChatModelAdmin(admin.ModelAdmin):
    list_display = ["name", "model_id", "provider", "enabled", "is_default"]
    list_filter = ["provider", "enabled"]
    search_fields = ["model_id", "display_name"]
    filter_horizontal = ["groups"]

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).select_related("provider")
import chat.admin_browser  # noqa: F401  (registers the in-browser model catalogue)
