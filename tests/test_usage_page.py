"""The admin usage page: who may see it, what its tables add up to, the CSV of each table,
bad ranges, and a bounded number of queries however many records there are."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from chat.models import ChatModel, Provider, UsageRecord
from tests.usage_data import page_tables, usage

pytestmark = pytest.mark.django_db(transaction=True)


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def root(transactional_db: None) -> User:
    return User.objects.create_superuser("root", password="root-password-1")


@pytest.fixture
def models(transactional_db: None) -> tuple[ChatModel, ChatModel]:
    lab = Provider.objects.create(name="lab", label="Lab", family="openai", base_url="http://127.0.0.1:9/v1")
    other = Provider.objects.create(name="other", label="Other", family="openai", base_url="http://127.0.0.1:9/v1")
    return (ChatModel.objects.create(provider=lab, model_id="big", display_name="Big"),
            ChatModel.objects.create(provider=other, model_id="small", display_name="Small"))


def staff(name: str, *perms: str) -> User:
    user = User.objects.create_user(name, password=f"{name}-password-1", is_staff=True)
    for perm in perms:
        user.user_permissions.add(Permission.objects.get(codename=perm))
    return User.objects.get(pk=user.pk)  # fresh: no permission cache


def csv_rows(response: Any) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


# ---- who may see it --------------------------------------------------------------------------

def test_staff_without_the_permission_are_refused_and_everyone_else_too(alice: User) -> None:
    assert Client().get("/admin/usage/")["Location"].startswith("/accounts/login/")
    assert client_for(alice).get("/admin/usage/").status_code == 403  # not staff
    assert client_for(staff("clerk", "view_chatmodel")).get("/admin/usage/").status_code == 403
    assert client_for(staff("clerk2")).get("/admin/usage/?format=csv&table=user").status_code == 403


def test_staff_with_the_permission_see_it_and_find_it_on_the_admin_index(transactional_db: None) -> None:
    viewer = client_for(staff("auditor", "view_usagerecord"))
    assert viewer.get("/admin/usage/").status_code == 200
    assert 'href="/admin/usage/"' in viewer.get("/admin/").content.decode()
    other = client_for(staff("clerk", "view_chatmodel"))
    assert 'href="/admin/usage/"' not in other.get("/admin/").content.decode()


# ---- what it shows ---------------------------------------------------------------------------

def test_the_tables_add_up_per_day_user_group_model_and_provider(
    root: User, alice: User, bob: User, models: tuple[ChatModel, ChatModel]
) -> None:
    big, small = models
    team = Group.objects.create(name="team")
    team.user_set.add(alice)
    now = timezone.now()
    UsageRecord.objects.bulk_create([
        usage(alice, big, now, tokens=(1000, 200), cost="0.5"),
        usage(alice, small, now - timedelta(days=2), tokens=(300, 30), cost="0.25", estimated=True),
        usage(bob, big, now, tokens=(50, 5), cost="2"),
        usage(bob, small, now, tokens=(10, 1)),  # unpriced
        usage(bob, big, now - timedelta(days=40), tokens=(9999, 9999), cost="9"),  # outside the last 30 days
    ])
    tables = page_tables(client_for(root).get("/admin/usage/").content.decode())
    head = tables["user"][0]
    assert head == ["User", "Answers", "Tokens in", "Tokens out", "Reasoning tokens", "Share of tokens (%)",
                    "Estimated (%)", "Cache hits", "Unpriced answers", "Cost (USD)"]
    # Top spenders first: bob spent 2.00, alice 0.75.
    assert tables["user"][1:] == [
        ["bob", "2", "60", "6", "0", "4.1", "0.0", "0", "1", "2.0000"],
        ["alice", "2", "1,300", "230", "0", "95.9", "50.0", "0", "0", "0.7500"],
    ]
    assert [r[:4] for r in tables["group"][1:]] == [["(no group)", "2", "60", "6"], ["team", "2", "1,300", "230"]]
    assert [r[:4] for r in tables["model"][1:]] == [["Big", "Lab", "2", "1,050"], ["Small", "Other", "2", "310"]]
    assert [r[:3] for r in tables["provider"][1:]] == [["Lab", "2", "1,050"], ["Other", "2", "310"]]
    days = tables["day"][1:]
    assert len(days) == 30, "every day of the range, the quiet ones too"
    today = timezone.localdate().isoformat()
    assert days[-1][:4] == [today, "3", "1,060", "206"]
    assert days[-3][:2] == [(timezone.localdate() - timedelta(days=2)).isoformat(), "1"]
    assert sum(int(d[1]) for d in days) == 4


def test_costs_are_kept_per_currency_and_cache_hits_are_counted(root: User, alice: User, models: Any) -> None:
    big, small = models
    UsageRecord.objects.bulk_create([
        usage(alice, big, cost="1.5"), usage(alice, small, cost="3", currency="EUR"),
        usage(alice, big, cost="0", cached=True),
    ])
    html = client_for(root).get("/admin/usage/").content.decode()
    row = dict(zip(*page_tables(html)["user"], strict=True))
    assert (row["Cost (EUR)"], row["Cost (USD)"], row["Cache hits"]) == ("3.0000", "1.5000", "1")
    assert "Cost (EUR)</dt><dd>3.0000" in html and "Cost (USD)</dt><dd>1.5000" in html


UTC = ZoneInfo("UTC")


@pytest.mark.parametrize(("zone", "start", "end", "answers", "expected"), [
    # 23:30 UTC on 10 March is already 11 March in Paris.
    ("Europe/Paris", "2026-03-10", "2026-03-11", [datetime(2026, 3, 10, 23, 30, tzinfo=UTC)], [0, 1]),
    # Clocks go back in Paris on 25 October 2026: that day has 25 hours, all of them its own.
    ("Europe/Paris", "2026-10-24", "2026-10-26", [
        datetime(2026, 10, 24, 21, 30, tzinfo=UTC),  # 23:30 on the 24th (CEST)
        datetime(2026, 10, 24, 22, 30, tzinfo=UTC),  # 00:30 on the 25th (CEST)
        datetime(2026, 10, 25, 22, 30, tzinfo=UTC),  # 23:30 on the 25th (CET)
        datetime(2026, 10, 25, 23, 30, tzinfo=UTC),  # 00:30 on the 26th (CET)
    ], [1, 2, 1]),
    # And forward on 29 March: a day of 23 hours.
    ("Europe/Paris", "2026-03-28", "2026-03-30", [
        datetime(2026, 3, 28, 23, 30, tzinfo=UTC),  # 00:30 on the 29th (CET)
        datetime(2026, 3, 29, 21, 30, tzinfo=UTC),  # 23:30 on the 29th (CEST)
        datetime(2026, 3, 29, 22, 30, tzinfo=UTC),  # 00:30 on the 30th (CEST)
    ], [0, 2, 1]),
    # Half-hour offsets: 19:00 UTC is 00:30 the next day in Kolkata.
    ("Asia/Kolkata", "2026-05-01", "2026-05-02", [datetime(2026, 5, 1, 19, 0, tzinfo=UTC)], [0, 1]),
])
def test_days_are_the_servers_time_zone_days_through_clock_changes(
    root: User, alice: User, models: Any, zone: str, start: str, end: str, answers: list[datetime], expected: list[int]
) -> None:
    UsageRecord.objects.bulk_create([usage(alice, models[0], when) for when in answers])
    with override_settings(TIME_ZONE=zone):
        html = client_for(root).get(f"/admin/usage/?start={start}&end={end}").content.decode()
    assert [int(d[1]) for d in page_tables(html)["day"][1:]] == expected


def test_the_source_filter_keeps_only_answers_asked_from_there(root: User, alice: User, models: Any) -> None:
    UsageRecord.objects.bulk_create([usage(alice, models[0]), usage(alice, models[1], source="browser", tokens=(7, 7))])
    tables = page_tables(client_for(root).get("/admin/usage/?source=browser").content.decode())
    assert [r[:3] for r in tables["model"][1:]] == [["Small", "Other", "1"]]


# ---- the CSV ---------------------------------------------------------------------------------

def test_each_tables_csv_holds_exactly_the_rows_the_table_shows(
    root: User, alice: User, bob: User, models: Any
) -> None:
    big, small = models
    now = timezone.now()
    UsageRecord.objects.bulk_create([
        usage(alice, big, now, tokens=(123_456, 789), cost="0.12345678"),
        usage(bob, small, now - timedelta(days=1), tokens=(5, 5), cost="1", currency="EUR", source="browser"),
        usage(bob, big, now - timedelta(days=20), tokens=(5, 5)),
        usage(bob, big, now - timedelta(days=8)),
    ])
    client = client_for(root)
    query = f"start={(timezone.localdate() - timedelta(days=9)).isoformat()}&end={timezone.localdate().isoformat()}"
    tables = page_tables(client.get(f"/admin/usage/?{query}").content.decode())
    for name, shown in tables.items():
        response = client.get(f"/admin/usage/?{query}&format=csv&table={name}")
        assert response["Content-Type"].startswith("text/csv")
        assert f"parley-usage-{name}-" in response["Content-Disposition"]
        exported = csv_rows(response)
        assert exported[0] == shown[0], name
        assert len(exported) == len(shown), name
        for seen, row in zip(shown[1:], exported[1:], strict=True):
            for heading, cell, raw in zip(shown[0], seen, row, strict=True):
                if heading.startswith("Cost") and raw:  # the CSV keeps all 8 stored places
                    assert Decimal(raw).quantize(Decimal("0.0001")) == Decimal(cell), (name, heading)
                else:
                    assert raw == cell.replace(",", ""), (name, heading)
    # Most was spent in EUR, so bob leads; alice's USD cost has every place, and no EUR.
    users = csv_rows(client.get(f"/admin/usage/?{query}&format=csv&table=user"))
    assert users[0][-2:] == ["Cost (EUR)", "Cost (USD)"]
    assert [(r[0], r[-2:]) for r in users[1:]] == [("bob", ["1", ""]), ("alice", ["", "0.12345678"])]


def test_a_csv_never_hands_a_spreadsheet_a_formula(root: User, models: Any) -> None:
    sly = User.objects.create_user("=HYPERLINK(1)")
    UsageRecord.objects.bulk_create([usage(sly, models[0])])
    rows = csv_rows(client_for(root).get("/admin/usage/?format=csv&table=user"))
    assert rows[1][0] == "'=HYPERLINK(1)"


# ---- bad input -------------------------------------------------------------------------------

@pytest.mark.parametrize(("query", "message"), [
    ("start=2026-03-10&end=2026-03-01", "“To” is before “From”"),
    ("start=2024-01-01&end=2026-01-01", "at most 366 days"),
    ("start=yesterday", "Enter a valid date"),
    ("source=fax", "Select a valid choice"),
])
def test_a_bad_range_is_refused_with_what_is_wrong_and_keeps_what_was_typed(root: User, query: str, message: str) -> None:
    response = client_for(root).get(f"/admin/usage/?{query}")
    html = response.content.decode()
    assert response.status_code == 400 and message in html
    assert 'data-table="day"' not in html
    first = query.split("&")[0].split("=")[1]
    assert f'value="{first}"' in html or first == "fax"


def test_an_unknown_csv_table_is_refused_by_name(root: User) -> None:
    response = client_for(root).get("/admin/usage/?format=csv&table=secrets")
    assert response.status_code == 400 and b"day, user, group, model, provider" in response.content


# ---- the database's work ---------------------------------------------------------------------

def _page_queries(client: Client) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/admin/usage/").status_code == 200
    return len(queries)


def test_the_page_costs_the_same_few_queries_for_ten_records_or_a_hundred_thousand(
    root: User, models: tuple[ChatModel, ChatModel]
) -> None:
    users = User.objects.bulk_create([User(username=f"u{i}") for i in range(200)])
    groups = Group.objects.bulk_create([Group(name=f"g{i}") for i in range(10)])
    User.groups.through.objects.bulk_create(
        [User.groups.through(user_id=u.pk, group_id=groups[i % 10].pk) for i, u in enumerate(users)]
    )
    now = timezone.now()
    UsageRecord.objects.bulk_create([usage(users[i % 200], models[i % 2], now - timedelta(hours=i % 700), cost="0.01")
                                     for i in range(10)])
    client = client_for(root)
    few = _page_queries(client)
    UsageRecord.objects.bulk_create(
        (usage(users[i % 200], models[i % 2], now - timedelta(minutes=i % 40_000), cost="0.01",
               currency="EUR" if i % 7 == 0 else "USD") for i in range(100_000)),
        batch_size=5000,
    )
    many = _page_queries(client)
    assert many == few <= 12, f"{few} queries for 10 records, {many} for 100,010"
    tables = page_tables(client.get("/admin/usage/").content.decode())
    assert len(tables["user"]) == 201 and len(tables["group"]) == 11
    assert sum(int(r[1].replace(",", "")) for r in tables["day"][1:]) == 100_010
