"""The settings page's API tokens: a user makes, names, scopes and revokes their own.

A new token is shown once, on the page the form's POST answers with (never stored, never
put in a session or a message); afterwards only its prefix is shown.
"""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from chat.access import usable_models
from chat.api import tokens
from chat.models import ApiToken

EXPIRY_CHOICES = [
    ("", "Never"),
    ("7", "In 7 days"),
    ("30", "In 30 days"),
    ("90", "In 90 days"),
    ("365", "In a year"),
]


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What it is for, e.g. “nightly report script”.")
    models: forms.ModelMultipleChoiceField = forms.ModelMultipleChoiceField(
        queryset=None,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every model you may use.",
    )
    expires = forms.ChoiceField(choices=EXPIRY_CHOICES, required=False)
    save_history = forms.BooleanField(required=False, label="Keep its calls in my conversations")

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["models"]
        field.queryset = usable_models(user).order_by("provider__name", "display_name")  # type: ignore[attr-defined]
        field.label_from_instance = lambda m: f"{m.name} ({m.provider.display_name})"  # type: ignore[attr-defined]
        self.prefix = "token"

    def expires_at(self) -> datetime.datetime | None:
        days = self.cleaned_data.get("expires")
        return timezone.now() + datetime.timedelta(days=int(days)) if days else None


def tokens_context(user: Any, form: TokenForm | None = None) -> dict[str, Any]:
    """What the settings page's token section shows (templates/chat/_api_tokens.html)."""
    rows = ApiToken.objects.filter(user=user, revoked_at__isnull=True).prefetch_related("scope")
    return {"api_tokens": list(rows), "token_form": form or TokenForm(user=user), "now": timezone.now()}


@require_POST
@login_required
def create_token(request: HttpRequest) -> HttpResponse:
    form = TokenForm(request.POST, user=request.user)
    if not form.is_valid():
        from chat.conversations.writes import preferences_for
        from chat.preferences import PreferencesForm  # the page this form sits on, which imports this module

        prefs = PreferencesForm(instance=preferences_for(request.user), user=request.user)  # type: ignore[arg-type]
        return render(request, "chat/settings.html", {"form": prefs, "token_form": form}, status=400)
    token, secret = tokens.do_create_token(
        request.user,
        form.cleaned_data["name"],
        form.cleaned_data["models"],
        form.expires_at(),
        form.cleaned_data["save_history"],
    )
    response = render(
        request,
        "chat/token_created.html",
        {"token": token, "secret": secret, "base_url": request.build_absolute_uri("/v1")},
    )
    response["Cache-Control"] = "no-store"  # the one time the token is shown: never kept by a cache
    return response


@require_POST
@login_required
def revoke_token(request: HttpRequest, token_id: uuid.UUID) -> HttpResponse:
    token = tokens.access_token(request.user, token_id)
    tokens.do_revoke_token(token)
    messages.success(request, f"Token “{token.name}” revoked: it no longer works.")
    return redirect(reverse("settings") + "#api-tokens")
