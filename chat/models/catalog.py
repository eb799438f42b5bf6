"""Providers (where to call, with which key) and the models users may pick.

Keys are stored encrypted (chat.crypto) and only ever decrypted into a
providers.base.Target on the server, for one request.
"""

from __future__ import annotations

import json
import os
import uuid
from decimal import Decimal

from django.contrib.auth.models import Group
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models

from chat import crypto
from providers import registry
from providers.base import Reasoning, Target

# Costs are summed per currency and a budget counts only its own currency, so a code must
# be written one way: "usd" or "US$" would silently start a currency of its own.
currency_code = RegexValidator(r"^[A-Z]{3}\Z", "Give a three-letter ISO 4217 code in capitals, e.g. USD or EUR.")
not_negative = MinValueValidator(Decimal(0), "This cannot be negative.")
# What a person can type in a script: lower case, digits and . _ : / -
api_name_chars = RegexValidator(r"^[a-z0-9][a-z0-9._:/-]*\Z", "Use lower-case letters, digits and . _ : / - only.")


# The families are declared once, in providers.registry; the choices follow from there.
Family = models.TextChoices("Family", [(key.upper(), (key, label)) for key, label in registry.choices()])  # type: ignore[misc,call-overload]


class Provider(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.SlugField(max_length=64, unique=True, help_text="Short name used by `manage.py provider`.")
    label = models.CharField(max_length=100, blank=True, help_text="What users see in the model picker.")
    family = models.CharField(max_length=20, choices=Family.choices, default=Family.OPENAI)
    preset = models.CharField(max_length=40, blank=True)
    base_url = models.URLField(max_length=500)
    # Fernet token; never shown. api_key_hint keeps the last four characters for admins.
    api_key_encrypted = models.TextField(blank=True, editable=False)
    api_key_hint = models.CharField(max_length=8, blank=True, editable=False)
    api_key_env = models.CharField(
        max_length=100, blank=True, help_text="Read the key from this environment variable instead."
    )
    # Encrypted JSON object: gateways sometimes put credentials in custom headers.
    extra_headers_encrypted = models.TextField(blank=True, editable=False)
    extra_headers_env = models.JSONField(
        default=dict, blank=True,
        help_text='Headers read from environment variables at call time, e.g. {"X-Gateway-Token": "GW_KEY"}.',
    )
    connect_timeout = models.FloatField(default=10.0)
    read_timeout = models.FloatField(default=120.0, help_text="Longest silence mid-answer, in seconds.")
    first_token_timeout = models.FloatField(default=120.0)
    enabled = models.BooleanField(default=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.label or self.name

    @property
    def display_name(self) -> str:
        return self.label or self.name

    def set_api_key(self, key: str) -> None:
        key = key.strip()
        self.api_key_encrypted = crypto.encrypt(key) if key else ""
        self.api_key_hint = key[-4:] if len(key) >= 12 else ""

    def set_extra_headers(self, headers: dict[str, str]) -> None:
        self.extra_headers_encrypted = crypto.encrypt(json.dumps(headers)) if headers else ""

    def extra_headers(self) -> dict[str, str]:
        if not self.extra_headers_encrypted:
            return {}
        return dict(json.loads(crypto.decrypt(self.extra_headers_encrypted)))

    def unreadable_secrets(self) -> list[str]:
        """Which stored secrets the current PARLEY_ENCRYPTION_KEYS cannot decrypt, in words."""
        stored = (("API key", self.api_key_encrypted), ("extra headers", self.extra_headers_encrypted))
        return [what for what, token in stored if not crypto.readable(token)]

    def headers_from_env(self) -> dict[str, str]:
        """Headers whose values live in the environment, like --api-key-env; unset ones are left out."""
        mapping = self.extra_headers_env if isinstance(self.extra_headers_env, dict) else {}
        values = {name: os.environ.get(str(var), "") for name, var in mapping.items()}
        return {name: value for name, value in values.items() if value}

    def api_key(self) -> str:
        if self.api_key_env:
            return os.environ.get(self.api_key_env, "")
        return crypto.decrypt(self.api_key_encrypted) if self.api_key_encrypted else ""

    def target(self) -> Target:
        """Everything an adapter needs for one call, secrets included (server memory only)."""
        from providers.presets import PRESETS  # data only; imported late to keep model import light

        preset = PRESETS.get(self.preset)
        return Target(
            base_url=self.base_url.rstrip("/"),
            api_key=self.api_key(),
            headers={**self.extra_headers(), **self.headers_from_env()},
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            first_token_timeout=self.first_token_timeout,
            quirks=dict(preset.quirks) if preset else {},
            name=self.name,
        )


class ReasoningMode(models.TextChoices):
    DEFAULT = "", "Model default (ask nothing)"
    ON = "on", "On"
    OFF = "off", "Off"


class Effort(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"


class ChatModel(models.Model):
    """One model users may pick. Only models listed (and enabled) here can be called."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="models")
    model_id = models.CharField(max_length=200, help_text="The provider's own model name.")
    display_name = models.CharField(max_length=200, blank=True)
    enabled = models.BooleanField(default=True)
    is_default = models.BooleanField(default=False)
    groups = models.ManyToManyField(
        Group, blank=True, help_text="Only these groups may use the model; none means everyone."
    )
    context_window = models.PositiveIntegerField(null=True, blank=True)
    price_input_per_mtok = models.DecimalField(
        max_digits=10, decimal_places=4, null=True, blank=True, validators=[not_negative],
        help_text="Per million input tokens. Empty: unpriced (its answers have no cost).",
    )
    price_output_per_mtok = models.DecimalField(
        max_digits=10, decimal_places=4, null=True, blank=True, validators=[not_negative],
        help_text="Per million output tokens.",
    )
    price_currency = models.CharField(
        max_length=3, default="USD", validators=[currency_code], help_text="ISO 4217 code of both prices."
    )
    reasoning = models.CharField(
        max_length=8, blank=True, choices=ReasoningMode.choices, default=ReasoningMode.DEFAULT,
        help_text="Whether to ask this model to think before answering (its thinking is shown apart).",
    )
    reasoning_effort = models.CharField(
        max_length=8, blank=True, choices=Effort.choices,
        help_text="For APIs that take a level: OpenAI-style reasoning_effort, Claude 4.6+, Gemini 3.",
    )
    reasoning_budget = models.PositiveIntegerField(
        null=True, blank=True,
        help_text="Thinking tokens, for APIs that take a budget: Claude before 4.6 (1024+), Gemini 2.5.",
    )
    vision = models.BooleanField(
        null=True, blank=True, verbose_name="takes images",
        help_text="Whether users may attach images for this model. Unknown: the provider's preset decides "
        "(discovery fills this in where the provider's model list says).",
    )
    # The OpenAI-compatible API (docs/api.md): the id scripts name the model by, and its cache.
    api_name = models.CharField(
        max_length=200, blank=True, validators=[api_name_chars], verbose_name="API id",
        help_text="The id scripts use for this model (e.g. claude-sonnet-4-5). Empty: made from the "
        "model name, with the provider's name in front if another model already has it.",
    )
    cache_ttl = models.PositiveIntegerField(
        default=0, verbose_name="cache answers for (seconds)",
        help_text="Answer an exact repeat (same model, messages and settings) from the cache for this "
        "long, with no call to the provider and at no cost. 0: no cache.",
    )
    cache_max_temperature = models.FloatField(
        default=0.0, verbose_name="cache only up to temperature",
        help_text="Requests with a higher temperature are never answered from the cache (one that sets "
        "none counts as 1.0).",
    )
    cache_shared = models.BooleanField(
        default=False, verbose_name="share the cache within groups",
        help_text="Off: each user has their own cache. On: members of a group share answers.",
    )
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["provider__name", "display_name", "model_id"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "model_id"], name="unique_model_per_provider"),
            models.UniqueConstraint(fields=["api_name"], condition=~models.Q(api_name=""), name="unique_api_name"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        return self.display_name or self.model_id

    def takes_images(self) -> bool:
        """The admin's or discovery's word, else the preset's default (presets.vision_default)."""
        if self.vision is not None:
            return bool(self.vision)
        from providers.presets import vision_default

        return vision_default(self.provider.preset, self.provider.family)

    def reads_pdfs(self) -> bool:
        """Sent PDFs whole (the family reads them itself) rather than their text."""
        return registry.FAMILIES[self.provider.family].native_pdf and self.takes_images()

    def reasoning_request(self) -> Reasoning | None:
        """What the adapters are asked for; None leaves the model at its own default."""
        if self.reasoning == ReasoningMode.OFF:
            return Reasoning(enabled=False)
        if self.reasoning == ReasoningMode.ON:
            effort = self.reasoning_effort or None
            return Reasoning(budget_tokens=self.reasoning_budget, effort=effort)  # type: ignore[arg-type]
        return None

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        if self.reasoning != ReasoningMode.ON and (self.reasoning_budget or self.reasoning_effort):
            raise ValidationError({"reasoning": "Set reasoning to On to use an effort or a budget."})
        anthropic = self.provider_id is not None and self.provider.family == Family.ANTHROPIC
        if anthropic and self.reasoning_budget is not None and self.reasoning_budget < 1024:
            raise ValidationError(
                {"reasoning_budget": "Anthropic needs a thinking budget of at least 1024 tokens."}
            )
