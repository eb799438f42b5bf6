"""Scripted provider set-up: `manage.py provider add|list|model|remove|rotate-keys`.

Keys never go on the command line (they would show in `ps` and shell history): pass the
name of an environment variable with --api-key-env, or pipe the key in with --api-key-stdin.
Headers that carry credentials go the same ways: --header-env NAME=VARIABLE or --header-stdin.
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from chat import crypto
from chat.models import ChatModel, Effort, Family, Provider


def _pairs(items: list[str], option: str, echo: bool = True) -> dict[str, str]:
    """NAME=VALUE items as a dict; a malformed one is refused, and a secret one never echoed."""
    pairs = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            shown = f", got {name.strip()!r}" if echo else ""
            raise CommandError(f"{option} must look like NAME=VALUE{shown}.")
        pairs[name.strip()] = value.strip()
    return pairs


def _presets() -> dict[str, Any]:
    from providers.presets import PRESETS

    return dict(PRESETS)


class Command(BaseCommand):
    help = "Add, list and remove model providers and their models."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)

        add = sub.add_parser("add", help="Add or update a provider.")
        add.add_argument("name")
        add.add_argument("--kind", "--family", dest="family", choices=[f.value for f in Family])
        add.add_argument("--preset", default="", help="A preset name (see `provider presets`).")
        add.add_argument("--base-url", default="")
        add.add_argument("--label", default="")
        key = add.add_mutually_exclusive_group()
        key.add_argument("--api-key-env", default="", help="Read the key from this environment variable at call time.")
        key.add_argument(
            "--api-key-stdin", action="store_true", help="Read the key from standard input and store it encrypted."
        )
        add.add_argument(
            "--header", action="append", default=[], metavar="NAME=VALUE",
            help="An extra request header, stored encrypted. Not for secrets: command lines show in `ps`.",
        )
        add.add_argument(
            "--header-stdin", action="store_true",
            help="Read NAME=VALUE header lines from standard input (after the key, with --api-key-stdin).",
        )
        add.add_argument(
            "--header-env", action="append", default=[], metavar="NAME=VARIABLE",
            help="Send header NAME with the value of this environment variable, read at call time.",
        )
        add.add_argument("--clear-headers", action="store_true", help="Remove the stored extra headers.")
        add.add_argument("--model", action="append", default=[], metavar="ID[=DISPLAY NAME]", help="A model to enable.")
        add.add_argument(
            "--default", dest="default_model", default="", metavar="ID", help="Make this model the default."
        )
        add.add_argument("--disabled", action="store_true")

        model = sub.add_parser("model", help="Add or change one model of a provider.")
        model.add_argument("name")
        model.add_argument("model_id")
        model.add_argument("--display-name", default="")
        model.add_argument("--default", action="store_true")
        model.add_argument("--disable", action="store_true")
        model.add_argument(
            "--reasoning", choices=["on", "off", "default"],
            help="Ask the model to think (on), not to (off), or leave it to the model (default).",
        )
        model.add_argument("--reasoning-effort", choices=[e.value for e in Effort], help="low, medium, high.")
        model.add_argument(
            "--reasoning-budget", type=int, metavar="TOKENS", help="Thinking tokens (for budget APIs)."
        )
        model.add_argument(
            "--vision", choices=["yes", "no", "preset"],
            help="Whether users may attach images for this model (preset: the provider's preset decides).",
        )
        model.add_argument("--context-window", type=int, metavar="TOKENS",
                           help="How many tokens the model reads (documents longer than this are refused).")

        sub.add_parser("list", help="List providers and their models.")
        sub.add_parser("presets", help="List the presets.")
        remove = sub.add_parser("remove", help="Remove a provider and its models.")
        remove.add_argument("name")
        sub.add_parser("rotate-keys", help="Re-encrypt stored secrets under the newest PARLEY_ENCRYPTION_KEYS key.")

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        getattr(self, "do_" + action.replace("-", "_"))(**options)

    def do_add(self, name: str, family: str | None, preset: str, base_url: str, label: str, api_key_env: str,
               api_key_stdin: bool, header: list[str], header_stdin: bool, header_env: list[str],
               clear_headers: bool, model: list[str], default_model: str, disabled: bool, **_: Any) -> None:
        presets = _presets()
        if preset and preset not in presets:
            raise CommandError(f"Unknown preset {preset!r}. Known: {', '.join(sorted(presets))}.")
        existing = Provider.objects.filter(name=name).first()
        if existing is not None and not (family or preset or base_url):
            # Updating only secrets or models: keep where the provider points.
            family, preset, base_url = existing.family, existing.preset, existing.base_url
        chosen = presets.get(preset)
        family = family or (chosen.family if chosen else None)
        base_url = base_url or (chosen.base_url if chosen else "")
        if not family:
            raise CommandError("Give --kind (openai, anthropic, gemini, ollama) or a --preset.")
        if not base_url:
            raise CommandError("Give --base-url (this preset has no default).")
        key = sys.stdin.readline().strip() if api_key_stdin else None
        if api_key_stdin and not key:
            raise CommandError("--api-key-stdin was given but standard input was empty.")
        headers = _pairs(header, "--header")
        if header_stdin:
            lines = [line.strip() for line in sys.stdin.read().splitlines() if line.strip()]
            if not lines:
                raise CommandError("--header-stdin was given but standard input held no NAME=VALUE line.")
            headers.update(_pairs(lines, "--header-stdin", echo=False))
        from_env = _pairs(header_env, "--header-env")
        with transaction.atomic():
            provider, created = Provider.objects.get_or_create(name=name, defaults={"base_url": base_url})
            provider.family, provider.preset, provider.base_url = family, preset, base_url
            provider.label = label or provider.label or (chosen.label if chosen else "")
            provider.enabled = not disabled
            if api_key_env:
                provider.api_key_env = api_key_env
                provider.set_api_key("")
            elif key:
                provider.api_key_env = ""
                provider.set_api_key(key)
            if clear_headers:
                provider.set_extra_headers({})
                provider.extra_headers_env = {}
            if headers:
                provider.set_extra_headers(headers)
            if from_env:
                provider.extra_headers_env = from_env
            provider.full_clean(exclude=["api_key_encrypted", "extra_headers_encrypted"])
            provider.save()
            for item in model:
                model_id, _sep, display = item.partition("=")
                self._upsert_model(provider, model_id.strip(), display.strip(), default=model_id == default_model)
            if default_model and not any(m.partition("=")[0] == default_model for m in model):
                self._upsert_model(provider, default_model, "", default=True)
        self.stdout.write(f"{'Added' if created else 'Updated'} provider {name} ({family}, {base_url}).")

    def _upsert_model(
        self, provider: Provider, model_id: str, display: str, default: bool, enabled: bool = True
    ) -> None:
        if not model_id:
            raise CommandError("A model id cannot be empty.")
        entry, _ = ChatModel.objects.get_or_create(provider=provider, model_id=model_id)
        if display:
            entry.display_name = display
        entry.enabled = enabled
        if default:
            ChatModel.objects.filter(is_default=True).update(is_default=False)
            entry.is_default = True
        entry.save()

    def do_model(self, name: str, model_id: str, display_name: str, default: bool, disable: bool,
                 reasoning: str | None, reasoning_effort: str | None, reasoning_budget: int | None,
                 vision: str | None = None, context_window: int | None = None, **_: Any) -> None:
        provider = self._get(name)
        with transaction.atomic():
            self._upsert_model(provider, model_id, display_name, default=default, enabled=not disable)
            if vision is not None or context_window is not None:
                entry = provider.models.get(model_id=model_id)
                if vision is not None:
                    entry.vision = {"yes": True, "no": False, "preset": None}[vision]
                if context_window is not None:
                    entry.context_window = context_window or None
                entry.save(update_fields=["vision", "context_window"])
            if reasoning is not None or reasoning_effort is not None or reasoning_budget is not None:
                self._set_reasoning(provider.models.get(model_id=model_id), reasoning, reasoning_effort,
                                    reasoning_budget)
        self.stdout.write(f"Model {model_id} on {name}: {'disabled' if disable else 'enabled'}.")

    def _set_reasoning(
        self, entry: ChatModel, mode: str | None, effort: str | None, budget: int | None
    ) -> None:
        if mode is not None:
            entry.reasoning = "" if mode == "default" else mode
        if effort is not None:
            entry.reasoning_effort = effort
        if budget is not None:
            entry.reasoning_budget = budget or None  # 0 clears it
        if entry.reasoning != "on":
            entry.reasoning_effort, entry.reasoning_budget = "", None
        try:
            entry.full_clean(exclude=["groups"])
        except ValidationError as error:
            raise CommandError(" ".join(m for ms in error.message_dict.values() for m in ms)) from None
        entry.save()

    def do_list(self, **_: Any) -> None:
        for p in Provider.objects.prefetch_related("models"):
            key = f"env ${p.api_key_env}" if p.api_key_env else ("key stored" if p.api_key_encrypted else "no key")
            state = "enabled" if p.enabled else "disabled"
            self.stdout.write(f"{p.name}  {p.family}  {p.base_url}  {key}  {state}")
            for m in p.models.all():
                flags = " ".join(f for f, on in (("default", m.is_default), ("disabled", not m.enabled)) if on)
                if m.takes_images():
                    flags += " images"
                if m.reasoning:
                    flags += f" reasoning={m.reasoning}"
                    flags += f"/{m.reasoning_effort}" if m.reasoning_effort else ""
                    flags += f"/{m.reasoning_budget} tokens" if m.reasoning_budget else ""
                self.stdout.write(f"    {m.model_id}  {m.display_name}  {flags}".rstrip())

    def do_presets(self, **_: Any) -> None:
        for key, preset in sorted(_presets().items()):
            self.stdout.write(f"{key:16} {preset.family:10} {preset.base_url or '(you give --base-url)'}")

    def do_remove(self, name: str, **_: Any) -> None:
        self._get(name).delete()
        self.stdout.write(f"Removed provider {name}.")

    def do_rotate_keys(self, **_: Any) -> None:
        broken = {p.name: p.unreadable_secrets() for p in Provider.objects.all()}
        broken = {name: what for name, what in broken.items() if what}
        if broken:
            raise CommandError("Nothing was re-encrypted. " + crypto.stale_secrets_help(broken))
        count = 0
        with transaction.atomic():
            for p in Provider.objects.select_for_update():
                if p.api_key_encrypted:
                    p.api_key_encrypted = crypto.rotate(p.api_key_encrypted)
                if p.extra_headers_encrypted:
                    p.extra_headers_encrypted = crypto.rotate(p.extra_headers_encrypted)
                p.save(update_fields=["api_key_encrypted", "extra_headers_encrypted"])
                count += 1
        self.stdout.write(f"Re-encrypted the secrets of {count} provider(s) under the newest key.")

    def _get(self, name: str) -> Provider:
        try:
            return Provider.objects.get(name=name)
        except Provider.DoesNotExist:
            raise CommandError(f"No provider named {name!r}. See `manage.py provider list`.") from None
