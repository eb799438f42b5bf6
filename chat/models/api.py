"""API tokens: how a script reaches Parley's OpenAI-compatible endpoint as one of its users.

A token is shown once, when it is made; only its SHA-256 is kept (tokens are 32 random
bytes, so a fast hash is enough: there is nothing to guess). `prefix` is its first
characters, enough for a person to tell their tokens apart and not enough to use one.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from chat.models.catalog import ChatModel


class ApiToken(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, help_text="What the token is for, e.g. 'nightly report script'.")
    digest = models.CharField(max_length=64, unique=True, editable=False)  # sha256 hex of the token
    prefix = models.CharField(max_length=16, editable=False)
    # Empty: every model the user may use (now or later); else only these (and only while the
    # user may still use them: the token never widens what its user can reach).
    scope = models.ManyToManyField(ChatModel, blank=True, related_name="+", verbose_name="models")
    expires_at = models.DateTimeField(null=True, blank=True)
    save_history = models.BooleanField(
        default=False, help_text="Keep this token's calls as conversations in the user's history."
    )
    created = models.DateTimeField(default=timezone.now)
    last_used = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created",)
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def active(self) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > timezone.now())
