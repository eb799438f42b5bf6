"""A provider family is declared once (providers.registry.FAMILIES); nothing may drift from it."""

from __future__ import annotations

import inspect
import io

import pytest
from django.core.management import call_command

from chat.models import Provider
from providers import registry
from providers.presets import PRESETS
from tests.fakeprovider import wire


def test_every_family_module_has_the_interface() -> None:
    for name in registry.FAMILIES:
        module = registry.family(name)
        assert callable(module.stream), name
        assert inspect.iscoroutinefunction(module.list_models), name


def test_the_model_field_offers_exactly_the_registered_families() -> None:
    field = Provider._meta.get_field("family")
    assert list(field.choices) == registry.choices()  # type: ignore[arg-type]


@pytest.mark.django_db
def test_the_migrations_match_the_registered_families() -> None:
    # A family added to the registry changes the field's choices: it needs a migration.
    out = io.StringIO()
    try:
        call_command("makemigrations", "chat", "--check", "--dry-run", stdout=out, stderr=out)
    except SystemExit as exc:
        pytest.fail(f"the models and migrations differ (run makemigrations):\n{out.getvalue()}\n{exc}")


def test_every_preset_names_a_registered_family() -> None:
    assert {p.family for p in PRESETS.values()} <= set(registry.FAMILIES)


def test_every_registered_family_has_a_preset() -> None:
    # An admin picks a preset; a family no preset names could only be set up by hand.
    assert set(registry.FAMILIES) <= {p.family for p in PRESETS.values()}


def test_the_fake_provider_speaks_every_registered_family_and_nothing_else() -> None:
    assert set(wire.FAMILIES) == set(registry.FAMILIES)
