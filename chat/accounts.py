"""Sign-up, by invite link or (when an administrator opens it) by anyone; everything else
about accounts is django.contrib.auth's own views."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth.forms import UserCreationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from chat import invites
from chat.models import Invite


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    """Open sign-up (PARLEY_SIGNUP_OPEN); closed, the default, it says how to get an account."""
    if not settings.PARLEY_SIGNUP_OPEN:
        return render(request, "registration/signup_closed.html", {"reason": "closed"}, status=404)
    return _signup(request, None)


@require_http_methods(["GET", "POST"])
def signup_with_invite(request: HttpRequest, token: str) -> HttpResponse:
    invite = invites.find_usable(token)
    if invite is None:
        # Unknown, expired and used-up links look alike: a link says nothing about others.
        return render(request, "registration/signup_closed.html", {"reason": "invite"}, status=404)
    return _signup(request, invite)


def _signup(request: HttpRequest, invite: Invite | None) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("chat")
    form: UserCreationForm[Any] = UserCreationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = invites.do_sign_up(form, invite)
        except invites.InviteUsedUp:
            return render(request, "registration/signup_closed.html", {"reason": "invite"}, status=404)
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("chat")
    status = 400 if form.errors else 200
    return render(request, "registration/signup.html", {"form": form, "invite": invite}, status=status)
