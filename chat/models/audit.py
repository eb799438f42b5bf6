"""What administrators and the system did, for admins to read: who, what, to what, when.

Written by chat.audit from signals and admin actions; never holds a secret (a key change
is recorded as "key changed", not the key).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class AuditEvent(models.Model):
    created = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150, blank=True)  # "system" when no one acted
    action = models.CharField(max_length=40, db_index=True)
    target = models.CharField(max_length=200, blank=True)  # "provider openai", "user bob"
    detail = models.JSONField(default=dict, blank=True)
    address = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.created:%Y-%m-%d %H:%M} {self.actor_name or 'system'} {self.action} {self.target}"
