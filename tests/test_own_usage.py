"""The settings page's usage section: a user's own day and month, by model, and what is
left of each budget that applies to them, and when it resets."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from html import unescape
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.utils import timezone

from chat import budgets
from chat.models import BrowserModel, Budget, ChatModel, Provider, UsageRecord
from tests.test_browser_models import client_for, exchange, post, smollm  # noqa: F401  (a fixture)
from tests.usage_data import usage

pytestmark = pytest.mark.django_db(transaction=True)


def settings_page(user: User) -> str:
    client = Client()
    client.force_login(user)
    response = client.get("/settings/")
    assert response.status_code == 200
    return response.content.decode()


def section(html: str, element_id: str, until: str) -> str:
    """What a person reads from the element with this id up to `until`, spaces squeezed."""
    start = html.index(f'id="{element_id}"')
    end = html.index(until, start)
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html[start:end]))).strip()


@pytest.fixture
def models(transactional_db: None) -> tuple[ChatModel, ChatModel]:
    lab = Provider.objects.create(name="lab", label="Lab", family="openai", base_url="http://127.0.0.1:9/v1")
    return (
        ChatModel.objects.create(provider=lab, model_id="big", display_name="Big"),
        ChatModel.objects.create(provider=lab, model_id="small", display_name="Small"),
    )


def test_a_user_sees_this_days_and_months_tokens_and_cost_and_their_models(
    alice: User, bob: User, models: tuple[ChatModel, ChatModel]
) -> None:
    big, small = models
    today, _ = budgets.period_bounds("day")
    month, _ = budgets.period_bounds("month")
    early = month + timedelta(minutes=1)  # this month; also today on the 1st
    UsageRecord.objects.bulk_create(
        [
            usage(alice, big, timezone.now(), tokens=(1000, 100), cost="0.25"),
            usage(alice, small, early, tokens=(2000, 200), cost="0.5"),
            usage(alice, big, month - timedelta(minutes=1), tokens=(9999, 9999), cost="9"),  # last month
            usage(bob, big, timezone.now(), tokens=(7777, 7777), cost="7"),  # someone else
        ]
    )
    html = settings_page(alice)
    both = early >= today
    periods = section(html, "usage-periods", "</table>")
    assert f"Answers {2 if both else 1} 2" in periods
    assert f"Tokens in {'3,000' if both else '1,000'} 3,000" in periods
    assert f"Tokens out {300 if both else 100} 300" in periods
    assert f"Cost (USD) {'0.7500' if both else '0.2500'} 0.7500" in periods
    by_model = section(html, "usage-models", "</table>")
    assert "Small 1 2,000 200 0.5000" in by_model and "Big 1 1,000 100 0.2500" in by_model
    assert by_model.index("Small") < by_model.index("Big"), "most used first"
    assert "7,777" not in html and "9,999" not in html
    assert "No budget applies to you." in html


def test_a_user_sees_what_is_left_of_each_budget_and_when_it_resets(alice: User, models: Any) -> None:
    team = Group.objects.create(name="team")
    team.user_set.add(alice)
    Budget.objects.create(group=team, period="day", max_tokens=10_000)
    Budget.objects.create(user=alice, period="month", max_tokens=5000, max_cost=Decimal(2), currency="USD")
    UsageRecord.objects.bulk_create([usage(alice, models[0], tokens=(3000, 1000), cost="1.5")])
    html = settings_page(alice)
    text = section(html, "usage-budgets", "</section>")
    _, tomorrow = budgets.period_bounds("day")
    _, next_month = budgets.period_bounds("month")
    assert (
        "Daily budget (your group's): 4,000 of 10,000 tokens used, 6,000 left. "
        f"It resets at {timezone.localtime(tomorrow):%Y-%m-%d %H:%M} (UTC)."
    ) in text
    assert (
        "Monthly budget (set for you): 4,000 of 5,000 tokens used, 1,000 left; "
        "USD 1.5000 of 2.0000 spent, 0.5000 left. "
        f"It resets at {timezone.localtime(next_month):%Y-%m-%d %H:%M} (UTC)."
    ) in text
    # The monthly budget is 80 % used: its meter says so, and sits in its warning range.
    assert re.search(r'<meter class="budget-meter"[^>]*value="80"', html)


def test_a_used_up_budget_says_new_messages_are_refused_until_it_resets(alice: User, models: Any) -> None:
    Budget.objects.create(period="day", max_tokens=100)
    UsageRecord.objects.bulk_create([usage(alice, models[0], tokens=(90, 20))])
    text = section(settings_page(alice), "usage-budgets", "</section>")
    assert "Daily budget (everyone's): 110 of 100 tokens used, 0 left." in text
    assert "Used up: new messages are refused until it resets at" in text


@pytest.mark.usefixtures("smollm")
def test_in_browser_answers_are_metered_free_and_never_counted_against_nor_refused_by_a_budget(
    alice: User, models: Any
) -> None:
    model = BrowserModel.objects.get(weights_url__startswith="bundled:")
    Budget.objects.create(user=alice, period="day", max_tokens=50)
    UsageRecord.objects.bulk_create([usage(alice, models[0], tokens=(40, 20))])  # the budget is used up
    assert budgets.standing(alice)[0].exceeded
    response = post(client_for(alice), exchange(model, usage={"input_tokens": 700, "output_tokens": 300}))
    assert response.status_code == 201, "a used-up budget never blocks the user's own device"
    record = UsageRecord.objects.get(source="browser")
    assert (record.input_tokens, record.output_tokens, record.cost, record.estimated) == (700, 300, 0, False)
    assert budgets.standing(alice)[0].used_tokens == 60, "only the server's answers count"
    periods = section(settings_page(alice), "usage-periods", "</table>")
    assert "Answers 2 2 Tokens in 740 740 Tokens out 320 320" in periods
