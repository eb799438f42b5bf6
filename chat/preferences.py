"""The user's settings page: display name, theme, default model and system prompt; plus the
data tools that belong beside them (import a conversation, export everything).

The password lives in django.contrib.auth's own views; this page links to them.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from chat import limits
from chat.access import usable_models
from chat.conversations import transfer
from chat.conversations.writes import preferences_for
from chat.models import Theme, UserPreferences


class PreferencesForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = UserPreferences
        fields = ["display_name", "theme", "default_model", "default_system_prompt"]
        widgets = {
            "theme": forms.RadioSelect,
            "default_system_prompt": forms.Textarea(attrs={"rows": 5}),
        }
        labels = {"default_system_prompt": "Default system prompt"}
        help_texts = {"display_name": "How Parley greets you. Your username stays the same."}

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Only models this user may pick; one they lost access to simply stops being offered.
        field = self.fields["default_model"]
        field.queryset = usable_models(user).order_by("provider__name", "display_name")  # type: ignore[attr-defined]
        field.empty_label = "The server's default"  # type: ignore[attr-defined]
        field.label_from_instance = lambda m: f"{m.name} ({m.provider.display_name})"  # type: ignore[attr-defined]


def _render(request: HttpRequest, form: PreferencesForm, import_error: str = "", status: int = 200) -> HttpResponse:
    return render(
        request, "chat/settings.html", {"form": form, "import_error": import_error}, status=status
    )


@require_http_methods(["GET", "POST"])
@login_required
def settings_page(request: HttpRequest) -> HttpResponse:
    prefs = preferences_for(request.user)  # type: ignore[arg-type]
    form = PreferencesForm(request.POST or None, instance=prefs, user=request.user)
    if request.method == "POST":
        if not form.is_valid():
            return _render(request, form, status=400)
        form.save()
        messages.success(request, "Settings saved.")
        return redirect("settings")
    return _render(request, form)


@require_POST
@login_required
def set_theme(request: HttpRequest) -> HttpResponse:
    """POST JSON {"theme": "system"|"light"|"dark"}: the header's theme switch."""
    try:
        body = limits.loads(request.body or b"{}")
    except limits.Invalid as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    theme = body.get("theme") if isinstance(body, dict) else None
    if theme not in Theme.values:
        return JsonResponse({"error": "`theme` must be system, light or dark."}, status=400)
    UserPreferences.objects.update_or_create(user=request.user, defaults={"theme": theme})  # type: ignore[misc]
    return JsonResponse({"theme": theme})


@require_POST
@login_required
async def import_page(request: HttpRequest) -> HttpResponse:
    """The settings page's import form: opens the imported conversation, or says what is wrong."""
    user = await request.auser()
    try:
        conversation = await transfer.import_conversation(user, transfer.read_import(request))
    except limits.Invalid as exc:
        return await sync_to_async(_import_failed)(request, user, str(exc))
    return redirect(reverse("conversation", args=[conversation.id]))


def _import_failed(request: HttpRequest, user: Any, error: str) -> HttpResponse:
    form = PreferencesForm(instance=preferences_for(user), user=user)
    return _render(request, form, import_error=error, status=400)
