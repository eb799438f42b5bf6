"""What answers cost, and what each user may spend: usage records, prices' snapshots, budgets.

A UsageRecord is written for every answer in the same transaction as its final state (never
per token), whoever asked: the chat page, an in-browser model (metered, never blocked), the
API. Its cost is computed at the time of the answer from the model's price then, so a price
change never rewrites history; names are kept beside the foreign keys for the same reason.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.utils import timezone

from chat.models.catalog import ChatModel, Provider, currency_code, not_negative
from chat.models.conversations import Message


class Source(models.TextChoices):
    CHAT = "chat", "Chat page"
    BROWSER = "browser", "In-browser model"
    API = "api", "API"


class UsageRecord(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    username = models.CharField(max_length=150)  # kept when the account is deleted
    source = models.CharField(max_length=10, choices=Source.choices)
    model = models.ForeignKey(ChatModel, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    model_name = models.CharField(max_length=200, blank=True)
    provider = models.ForeignKey(Provider, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    provider_name = models.CharField(max_length=100, blank=True)
    message = models.ForeignKey(Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=12)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    reasoning_tokens = models.PositiveIntegerField(null=True, blank=True)
    # The provider reported no usage: the counts are Parley's estimates.
    estimated = models.BooleanField(default=False)
    ttft_ms = models.PositiveIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    # Null: the model has no price. Zero: free (a cache hit, an in-browser model).
    cost = models.DecimalField(max_digits=16, decimal_places=8, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    cached = models.BooleanField(default=False)  # answered from the response cache
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created"]
        indexes = [
            models.Index(fields=["user", "created"], name="usage_user_created"),
            models.Index(fields=["created"], name="usage_created"),
        ]

    def __str__(self) -> str:
        return f"{self.username}: {self.input_tokens}+{self.output_tokens} tokens ({self.source})"

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


class Period(models.TextChoices):
    DAY = "day", "Per day"
    MONTH = "month", "Per month"


class Budget(models.Model):
    """How much one user, the members of a group, or everyone may spend per day or month.

    The most specific budget wins: a user's own, else their groups' (the most generous of
    them), else the one for everyone. A limit left empty is no limit of that kind.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    group = models.ForeignKey(Group, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    period = models.CharField(max_length=5, choices=Period.choices, default=Period.MONTH)
    max_tokens = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Input plus output tokens. Empty: no token limit."
    )
    max_cost = models.DecimalField(
        max_digits=12, decimal_places=4, null=True, blank=True, validators=[not_negative],
        help_text="Empty: no money limit. Only answers priced in the budget's currency count.",
    )
    currency = models.CharField(max_length=3, default="USD", validators=[currency_code])
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=~(models.Q(user__isnull=False) & models.Q(group__isnull=False)),
                name="budget_user_or_group",
            ),
            models.UniqueConstraint(fields=["user", "period"], name="one_budget_per_user_period"),
            models.UniqueConstraint(fields=["group", "period"], name="one_budget_per_group_period"),
        ]

    def __str__(self) -> str:
        who = self.user or self.group or "everyone"
        return f"{who}, {self.get_period_display().lower()}"

    @property
    def scope(self) -> str:
        return "user" if self.user_id else "group" if self.group_id else "everyone"
