"""Invite links: how people get an account while sign-up is closed (the default).

An administrator creates one for a person or a few (``max_uses``) until it expires. Only
a hash of the link's secret is stored, so the database, a backup or the admin pages never
hold a working link: the admin sees the link once, when it is made.
"""

from __future__ import annotations

import datetime
import uuid

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.utils import timezone


def _in_a_week() -> datetime.datetime:
    return timezone.now() + datetime.timedelta(days=7)


class Invite(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    note = models.CharField(max_length=200, blank=True, help_text="Who it is for (seen by admins only).")
    max_uses = models.PositiveIntegerField(default=1, help_text="How many accounts this link may create.")
    uses = models.PositiveIntegerField(default=0, editable=False)
    expires = models.DateTimeField(default=_in_a_week)
    groups = models.ManyToManyField(
        Group, blank=True, help_text="Accounts made with this link join these groups."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, editable=False,
        related_name="+",
    )
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return self.note or f"invite of {self.created:%Y-%m-%d}"

    @property
    def usable(self) -> bool:
        return self.uses < self.max_uses and self.expires > timezone.now()
