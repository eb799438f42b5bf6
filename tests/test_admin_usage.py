"""Budgets, prices and the audit log in the Django admin, over real HTTP requests to the
admin's own forms: what an admin can set, what is refused and why, and that what admins do
there lands in the audit log (never a key), which nobody can edit."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

import pytest
from django import forms as django_forms
from django.contrib.auth.models import Group, Permission, User
from django.core.cache import cache
from django.test import Client

from chat.models import AuditEvent, Budget, ChatModel, Provider
from tests.fakeprovider import FakeProvider

pytestmark = pytest.mark.django_db(transaction=True)

KEY = "sk-audit-never-shown-4f9e2b7c1d"


@pytest.fixture(autouse=True)
def _no_sign_in_lockouts() -> Any:
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def root(transactional_db: None) -> User:
    return User.objects.create_superuser("root", password="root-password-1")


@pytest.fixture
def admin(root: User) -> Client:
    client = Client()
    client.force_login(root)
    return client


@pytest.fixture
def model(transactional_db: None) -> ChatModel:
    provider = Provider.objects.create(name="lab", label="Lab", family="openai", base_url="http://127.0.0.1:9/v1")
    return ChatModel.objects.create(provider=provider, model_id="big", display_name="Big")


def form_values(client: Client, url: str) -> dict[str, Any]:
    """What the admin's form at `url` would post unchanged: every field and inline as shown."""
    context = client.get(url).context
    data: dict[str, Any] = {}
    forms = [context["adminform"].form]
    for inline in context.get("inline_admin_formsets", []):
        formset = inline.formset
        forms += list(formset.forms)
        data.update({f"{formset.prefix}-{k}": v for k, v in formset.management_form.initial.items()})
    for form in forms:
        for name, field in form.fields.items():
            value = form[name].value()
            key = form.add_prefix(name)
            if isinstance(field.widget, django_forms.MultiWidget):  # e.g. date and time apart
                for i, part in enumerate(field.widget.decompress(value)):
                    data[f"{key}_{i}"] = "" if part is None else str(part)
            elif isinstance(field, django_forms.BooleanField):
                if value:
                    data[key] = "on"
            elif isinstance(value, (list, tuple)):
                data[key] = [str(v) for v in value]
            elif value is not None:
                data[key] = str(getattr(value, "pk", value))
    return data


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("created"))


# ---- budgets ---------------------------------------------------------------------------------


def budget_form(**fields: str) -> dict[str, str]:
    return {"user": "", "group": "", "period": "day", "max_tokens": "", "max_cost": "", "currency": "USD", **fields}


def test_an_admin_sets_budgets_for_everyone_a_group_and_a_user(admin: Client, alice: User) -> None:
    team = Group.objects.create(name="team")
    for fields in (
        {"max_tokens": "100000"},
        {"group": str(team.pk), "max_tokens": "500000"},
        {"user": str(alice.pk), "period": "month", "max_cost": "12.5", "currency": "usd"},
    ):
        response = admin.post("/admin/chat/budget/add/", budget_form(**fields))
        assert response.status_code == 302, response.content.decode()[:3000]
    scopes = {b.scope: b for b in Budget.objects.all()}
    assert scopes["everyone"].max_tokens == 100_000 and scopes["group"].group == team
    assert (scopes["user"].max_cost, scopes["user"].currency) == (Decimal("12.5"), "USD")  # "usd" written one way
    listed = admin.get("/admin/chat/budget/").content.decode()
    assert "everyone, per day" in listed and "team, per day" in listed and "alice, per month" in listed


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"user": "{alice}", "group": "{team}", "max_tokens": "5"}, "choose a user or a group, not both"),
        ({"max_cost": "5", "currency": "EURO"}, "three-letter ISO 4217 code"),
        ({"max_cost": "5", "currency": "U$D"}, "three-letter ISO 4217 code"),
        ({"max_cost": "-1"}, "cannot be negative"),
        ({"max_cost": "5", "currency": "EUR"}, "No model is priced in EUR"),
        ({"period": "month", "max_tokens": "7"}, "There is already a budget for everyone for this period"),
    ],
)
def test_a_budget_that_makes_no_sense_is_refused_with_why(
    admin: Client, alice: User, model: ChatModel, fields: dict[str, str], message: str
) -> None:
    team = Group.objects.create(name="team")
    ChatModel.objects.filter(pk=model.pk).update(price_input_per_mtok=Decimal(1))  # priced in USD
    Budget.objects.create(period="month", max_tokens=10)  # everyone's monthly budget exists
    data = budget_form(**{k: v.format(alice=alice.pk, team=team.pk) for k, v in fields.items()})
    response = admin.post("/admin/chat/budget/add/", data)
    assert response.status_code == 200 and message in response.content.decode()
    assert Budget.objects.count() == 1


def test_a_money_budget_before_any_model_has_a_price_is_kept_with_a_warning(admin: Client, model: ChatModel) -> None:
    response = admin.post("/admin/chat/budget/add/", budget_form(max_cost="3"), follow=True)
    assert Budget.objects.get().max_cost == 3
    assert "No model has a price yet" in response.content.decode()


# ---- prices ----------------------------------------------------------------------------------


def test_an_admin_prices_a_model_in_a_currency_and_bad_prices_are_refused(admin: Client, model: ChatModel) -> None:
    url = f"/admin/chat/chatmodel/{model.pk}/change/"
    data = form_values(admin, url)
    bad = admin.post(url, {**data, "price_input_per_mtok": "-3", "price_currency": "eur"})
    assert bad.status_code == 200
    assert "This cannot be negative." in bad.content.decode() and "ISO 4217" in bad.content.decode()
    good = admin.post(
        url, {**data, "price_input_per_mtok": "2.5", "price_output_per_mtok": "10", "price_currency": "EUR"}
    )
    assert good.status_code == 302
    model.refresh_from_db()
    assert (model.price_input_per_mtok, model.price_output_per_mtok, model.price_currency) == (
        Decimal("2.5"),
        10,
        "EUR",
    )
    (changed,) = events("model.changed")
    assert changed.actor_name == "root" and changed.detail["price_currency"] == {"from": "USD", "to": "EUR"}
    assert changed.detail["price_input_per_mtok"] == {"from": None, "to": "2.5"}


# ---- the audit log records what admins do in the admin ---------------------------------------


def provider_add(fake_url: str, **overrides: str) -> dict[str, str]:
    return {
        "name": "gateway",
        "label": "Gateway",
        "family": "openai",
        "preset": "",
        "base_url": fake_url,
        "api_key": KEY,
        "api_key_env": "",
        "extra_headers": "",
        "connect_timeout": "10",
        "first_token_timeout": "120",
        "read_timeout": "120",
        "enabled": "on",
        "models-TOTAL_FORMS": "0",
        "models-INITIAL_FORMS": "0",
        "models-MIN_NUM_FORMS": "0",
        "models-MAX_NUM_FORMS": "1000",
        **overrides,
    }


def test_provider_changes_are_recorded_and_a_new_key_only_as_key_changed(admin: Client, fake: FakeProvider) -> None:
    assert admin.post("/admin/chat/provider/add/", provider_add(fake.url + "/v1")).status_code == 302
    provider = Provider.objects.get(name="gateway")
    (created,) = events("provider.created")
    assert created.target == "provider gateway" and created.detail["key"] == "set" and created.actor_name == "root"
    url = f"/admin/chat/provider/{provider.pk}/change/"
    data = form_values(admin, url)
    assert admin.post(url, {**data, "api_key": KEY + "-new", "read_timeout": "60"}).status_code == 302
    (changed,) = events("provider.changed")
    assert changed.detail["api_key"] == "key changed" and changed.detail["read_timeout"] == {"from": 120.0, "to": 60.0}
    assert admin.post(f"/admin/chat/provider/{provider.pk}/delete/", {"post": "yes"}).status_code == 302
    assert events("provider.deleted")[0].target == "provider gateway"
    everything = " ".join(f"{e.target} {e.detail}" for e in AuditEvent.objects.all())
    assert KEY[:10] not in everything and KEY[-6:] not in everything


def test_opening_a_model_to_groups_is_recorded(admin: Client, model: ChatModel) -> None:
    team = Group.objects.create(name="team")
    url = f"/admin/chat/chatmodel/{model.pk}/change/"
    assert admin.post(url, {**form_values(admin, url), "groups": [str(team.pk)]}).status_code == 302
    assert events("model.groups")[0].detail == {"opened to": ["team"]}
    assert admin.post(url, {**form_values(admin, url), "groups": []}).status_code == 302
    assert events("model.groups")[1].detail == {"closed to": ["team"]}


def test_budgets_set_changed_and_removed_are_recorded_once_each(admin: Client, alice: User) -> None:
    assert admin.post("/admin/chat/budget/add/", budget_form(user=str(alice.pk), max_tokens="1000")).status_code == 302
    budget = Budget.objects.get()
    url = f"/admin/chat/budget/{budget.pk}/change/"
    assert admin.post(url, form_values(admin, url)).status_code == 302  # saved unchanged: nothing to record
    assert admin.post(url, {**form_values(admin, url), "max_tokens": "2000"}).status_code == 302
    assert admin.post(f"/admin/chat/budget/{budget.pk}/delete/", {"post": "yes"}).status_code == 302
    set_, changed = events("budget.set")
    assert set_.target == "budget alice, per day" and set_.detail["max_tokens"] == 1000
    assert changed.detail["max_tokens"] == {"from": 1000, "to": 2000}
    assert events("budget.removed")[0].target == "budget alice, per day"


def test_users_created_deactivated_given_permissions_and_deleted_are_recorded(admin: Client) -> None:
    response = admin.post(
        "/admin/auth/user/add/",
        {
            "username": "carol",
            "usable_password": "true",
            "password1": "carol-password-1",
            "password2": "carol-password-1",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    carol = User.objects.get(username="carol")
    url = f"/admin/auth/user/{carol.pk}/change/"
    data = form_values(admin, url)
    data.pop("is_active", None)
    perm = Permission.objects.get(codename="view_usagerecord")
    assert admin.post(url, {**data, "is_staff": "on", "user_permissions": [str(perm.pk)]}).status_code == 302
    assert admin.post(f"/admin/auth/user/{carol.pk}/delete/", {"post": "yes"}).status_code == 302
    carols = AuditEvent.objects.filter(target="user carol").order_by("created")
    assert [e.action for e in carols] == [
        "user.created",
        "user.deactivated",
        "user.changed",
        "user.permissions",
        "user.deleted",
    ]
    assert carols.get(action="user.changed").detail == {"is_staff": {"from": False, "to": True}}
    assert carols.get(action="user.permissions").detail == {"added": ["chat.view_usagerecord"]}
    assert {e.actor_name for e in carols} == {"root"}


def test_a_groups_permissions_are_recorded(admin: Client) -> None:
    perm = Permission.objects.get(codename="view_auditevent")
    response = admin.post("/admin/auth/group/add/", {"name": "auditors", "permissions": [str(perm.pk)]})
    assert response.status_code == 302
    (event,) = events("group.permissions")
    assert event.target == "group auditors" and event.detail == {"added": ["chat.view_auditevent"]}


def test_sign_ins_and_failed_sign_ins_at_the_admin_are_recorded_without_the_password(root: User) -> None:
    client = Client(REMOTE_ADDR="203.0.113.9")
    client.post("/admin/login/?next=/admin/", {"username": "root", "password": "wrong-password-9"})
    client.post("/admin/login/?next=/admin/", {"username": "root", "password": "root-password-1"})
    (failed,) = events("login.failed")
    assert (failed.target, failed.address, failed.actor_name) == ("user root", "203.0.113.9", "system")
    (signed_in,) = events("login")
    assert (signed_in.target, signed_in.actor_name) == ("user root", "root")
    assert "wrong-password-9" not in str(list(AuditEvent.objects.values()))


# ---- the audit log in the admin --------------------------------------------------------------


def test_nobody_can_add_change_or_delete_audit_events_in_the_admin(admin: Client) -> None:
    event = AuditEvent.objects.create(actor_name="system", action="login.failed", target="user mallory")
    assert admin.get("/admin/chat/auditevent/add/").status_code == 403
    assert admin.post(f"/admin/chat/auditevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    admin.post(f"/admin/chat/auditevent/{event.pk}/change/", {"action": "nothing", "target": "to see"})
    event.refresh_from_db()
    assert (event.action, event.target) == ("login.failed", "user mallory")
    page = admin.get(f"/admin/chat/auditevent/{event.pk}/change/").content.decode()
    assert "user mallory" in page and 'name="_save"' not in page


def test_the_audit_log_filters_searches_and_exports_what_it_shows(admin: Client) -> None:
    AuditEvent.objects.all().delete()  # the fixture's own sign-in and account
    AuditEvent.objects.bulk_create(
        [
            AuditEvent(
                actor_name="root", action="budget.set", target="budget everyone, per day", detail={"max_tokens": 5}
            ),
            AuditEvent(actor_name="system", action="login.failed", target="user mallory", address="198.51.100.7"),
            AuditEvent(
                actor_name="root", action="provider.changed", target="provider lab", detail={"api_key": "key changed"}
            ),
        ]
    )
    listed = admin.get("/admin/chat/auditevent/?action=login.failed").content.decode()
    assert "198.51.100.7" in listed and "provider lab" not in listed
    assert "Export 1 event as CSV" in listed
    found = admin.get("/admin/chat/auditevent/?q=lab").content.decode()
    assert "provider lab" in found and "budget everyone" not in found
    by_actor = admin.get("/admin/chat/auditevent/?actor=root").content.decode()
    assert "Export 2 events as CSV" in by_actor

    response = admin.get("/admin/chat/auditevent/export/?actor=root")
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["When", "Actor", "Action", "Target", "Details", "Address"]
    assert sorted(r[2] for r in rows[1:]) == ["budget.set", "provider.changed"]
    assert '{"api_key": "key changed"}' in [r[4] for r in rows[1:]]
    assert admin.get("/admin/chat/auditevent/export/?created__gte=not-a-date").status_code == 400


def test_staff_who_may_not_view_the_audit_log_can_neither_list_nor_export_it(transactional_db: None) -> None:
    clerk = User.objects.create_user("clerk", password="clerk-password-1", is_staff=True)
    client = Client()
    client.force_login(clerk)
    assert client.get("/admin/chat/auditevent/").status_code == 403
    assert client.get("/admin/chat/auditevent/export/").status_code == 403
