"""Making invite links and spending them: one use per account, never more than an invite allows."""

from __future__ import annotations

import datetime
import hashlib
import secrets
from collections.abc import Iterable

from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.models import Group, User
from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from chat.models import Invite


class InviteUsedUp(Exception):
    """The invite expired or ran out of uses while this sign-up was being filled in."""


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def link_path(token: str) -> str:
    return reverse("invite", args=[token])


def do_create_invite(
    *, created_by: User | None = None, max_uses: int = 1, days: float = 7, note: str = "",
    groups: Iterable[Group] = (), invite: Invite | None = None,
) -> tuple[Invite, str]:
    """Save a new invite (or ``invite``, filled in by a form); returns it and its link's secret.

    The secret is shown once: only its hash is kept.
    """
    token = secrets.token_urlsafe(24)
    if invite is None:
        invite = Invite(max_uses=max_uses, note=note, expires=timezone.now() + datetime.timedelta(days=days))
    invite.token_hash = _hash(token)
    invite.created_by = created_by  # type: ignore[assignment]
    invite.save()
    if groups:
        invite.groups.set(list(groups))
    return invite, token


def find_usable(token: str) -> Invite | None:
    """The invite behind a link, if it can still make an account."""
    invite = Invite.objects.filter(token_hash=_hash(token)).first()
    return invite if invite is not None and invite.usable else None


def do_sign_up(form: UserCreationForm, invite: Invite | None) -> User:  # type: ignore[type-arg]
    """Create the account, spending one use of ``invite`` in the same transaction.

    The use is taken by a conditional UPDATE, so two people on a single-use link at the
    same moment get one account between them, and a failed save gives the use back.
    """
    with transaction.atomic():
        if invite is not None:
            still_open = Invite.objects.filter(pk=invite.pk, uses__lt=F("max_uses"))
            spent = still_open.filter(expires__gt=timezone.now()).update(uses=F("uses") + 1)
            if not spent:
                raise InviteUsedUp
        user = form.save()
        if invite is not None:
            user.groups.set(invite.groups.all())
    return user
