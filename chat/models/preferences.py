"""What a user chose for themselves: how Parley looks and how their new chats start."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from chat.models.catalog import ChatModel


class Theme(models.TextChoices):
    SYSTEM = "system", "Follow the system"
    LIGHT = "light", "Light"
    DARK = "dark", "Dark"


class UserPreferences(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="preferences")
    display_name = models.CharField(max_length=100, blank=True)
    theme = models.CharField(max_length=10, choices=Theme.choices, default=Theme.SYSTEM)
    default_model = models.ForeignKey(
        ChatModel, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="New chats start with this model.",
    )
    default_system_prompt = models.TextField(
        blank=True, max_length=20_000, help_text="Sent as the system prompt of every new chat."
    )

    class Meta:
        verbose_name_plural = "user preferences"

    def __str__(self) -> str:
        return f"preferences of {self.user}"
