"""Usage and budgets as people see them, in real Chromium against a real Daphne: the admin
usage page's charts and CSV, both themes, axe; the settings page's usage; the chat page's
near-budget warning and the refusal once a budget is used up."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.test_settings_and_a11y import serious_violations
from tests.chromium import log_in
from tests.fakeprovider import FakeProvider, Script
from tests.live import LiveServer

SEED = """
from datetime import timedelta
from decimal import Decimal
from django.contrib.auth.models import Group, User
from django.utils import timezone
from chat.models import UsageRecord
team = Group.objects.create(name="research")
carol = User.objects.create_user("carol"); dave = User.objects.create_user("dave")
team.user_set.add(carol)
now = timezone.now()
rows = []
for day in range(12):
    for who, model, provider, tokens, cost, currency in (
        (carol, "Big Model", "Lab", (4000 + 100 * day, 900), "0.042", "USD"),
        (dave, "Small Model", "Lab", (800, 300 + day), "0.003", "USD"),
        (dave, "Euro Model", "EuroLab", (500, 50), "0.01", "EUR"),
    ):
        rows.append(UsageRecord(user=who, username=who.username, source="chat", model_name=model,
            provider_name=provider, status="complete", input_tokens=tokens[0], output_tokens=tokens[1],
            cost=Decimal(cost), currency=currency, created=now - timedelta(days=day, minutes=5)))
UsageRecord.objects.bulk_create(rows)
"""


@pytest.fixture(scope="module")
def module_live(fake_server: FakeProvider) -> Iterator[LiveServer]:
    """Alice (who chats), root (who reads the usage page), and twelve days of others' usage.

    Budgets are read within PARLEY_CATALOG_CACHE_SECONDS of a change made in another
    process (here: a test's shell); 0 makes the server see a new budget at once. Two
    answers at once per user, so a third is refused.
    """
    server = LiveServer(
        {
            "PARLEY_USER_MESSAGES_PER_MINUTE": "0",
            "PARLEY_CATALOG_CACHE_SECONDS": "0",
            "PARLEY_USER_MAX_ACTIVE_GENERATIONS": "2",
        }
    ).start()
    server.create_user("alice", "alice-password-1")
    server.create_user("root", "root-password-1", superuser=True)
    server.add_fake_provider(fake_server.url, model="fake-model=Fake Model", default="fake-model", label="Fake Lab")
    server.manage("shell", "-c", SEED)
    server.snapshot()
    yield server
    server.stop()


@pytest.fixture
def a11y_page(browser: Any) -> Iterator[Any]:
    # As in test_settings_and_a11y: axe is injected inline, which the CSP refuses, so only here
    # is the CSP bypassed (the console check of the chart test runs under the real one).
    context = browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True)
    yield context.new_page()
    context.close()


def table_cells(page: Any, name: str) -> list[list[str]]:
    return page.evaluate(
        """(name) => [...document.querySelectorAll(`table[data-table="${name}"] tr`)]
        .map((tr) => [...tr.children].map((c) => c.textContent.trim()))""",
        name,
    )


def chart_state(page: Any, name: str) -> dict[str, Any]:
    """What Chart.js holds for a chart, and how many of its canvas's pixels are painted."""
    return page.evaluate(
        """(name) => {
        const canvas = document.querySelector(`canvas[data-chart="${name}"]`);
        const chart = Chart.getChart(canvas);
        const { data } = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
        let painted = 0;
        for (let i = 3; i < data.length; i += 4) if (data[i] > 0) painted++;
        return { labels: chart.data.labels, datasets: chart.data.datasets.map((d) => ({label: d.label, data: d.data,
          color: d.backgroundColor})), tick: chart.options.scales.x.ticks.color, painted };
    }""",
        name,
    )


def open_usage(page: Any, live: LiveServer) -> None:
    log_in(page, live, "root", "root-password-1")
    page.goto(live.url + "/admin/")
    page.wait_for_load_state("networkidle")
    # The admin's own pages name no icon, so Chromium's /favicon.ico is a 404: not this page's.
    getattr(page, "console_errors", []).clear()
    page.get_by_role("link", name="Usage and cost").click()
    page.wait_for_url("**/admin/usage/**")
    page.wait_for_function(
        "() => document.querySelectorAll('canvas[data-chart]').length === 5"
        " && [...document.querySelectorAll('canvas[data-chart]')].every((c) => Chart.getChart(c))"
    )
    page.wait_for_timeout(400)  # the bars' short entrance animation


def test_the_usage_page_draws_every_chart_from_the_rows_of_the_table_beside_it(page: Any, live: LiveServer) -> None:
    page.emulate_media(color_scheme="light")
    open_usage(page, live)
    days = table_cells(page, "day")
    day = chart_state(page, "day")
    assert len(day["labels"]) == 30 == len(days) - 1
    assert day["labels"] == [row[0] for row in days[1:]]
    assert day["datasets"][0]["data"] == [int(row[2].replace(",", "")) for row in days[1:]]
    assert day["datasets"][1]["data"] == [int(row[3].replace(",", "")) for row in days[1:]]
    assert sum(day["datasets"][0]["data"]) == 12 * (4000 + 800 + 500) + 100 * sum(range(12))
    # Top spenders: cost in the currency most was spent in (USD), carol first.
    spenders = chart_state(page, "user")
    assert spenders["labels"] == ["carol", "dave"] and spenders["datasets"][0]["label"] == "Cost (USD)"
    assert spenders["datasets"][0]["data"] == pytest.approx([0.504, 0.036])
    for name in ("day", "user", "group", "model", "provider"):
        assert chart_state(page, name)["painted"] > 2000, f"the {name} chart drew nothing"
    assert [r[0] for r in table_cells(page, "group")[1:]] == ["research", "(no group)"]
    assert not page.console_errors, page.console_errors  # the strict CSP refused nothing


def test_each_csv_download_holds_the_rows_its_table_shows(page: Any, live: LiveServer, tmp_path: Path) -> None:
    open_usage(page, live)
    for name in ("day", "user", "group", "model", "provider"):
        with page.expect_download() as download:
            page.locator(f'a[data-csv="{name}"]').click()
        path = tmp_path / f"{name}.csv"
        download.value.save_as(path)
        exported = list(csv.reader(io.StringIO(path.read_text())))
        shown = table_cells(page, name)
        assert exported[0] == shown[0], name
        assert [list(row) for row in exported[1:]] == [
            [
                cell.replace(",", "") if not head.startswith("Cost") else _cost(cell, raw)
                for head, cell, raw in zip(shown[0], row, exp, strict=True)
            ]
            for row, exp in zip(shown[1:], exported[1:], strict=True)
        ], name


def _cost(shown: str, exported: str) -> str:
    """The page rounds costs to 4 places; the CSV keeps all of them."""
    if not shown:
        return ""
    assert f"{float(exported):.4f}" == shown
    return exported


def test_the_usage_page_reads_well_in_both_themes_and_follows_the_switch(a11y_page: Any, live: LiveServer) -> None:
    page = a11y_page
    page.emulate_media(color_scheme="light")
    open_usage(page, live)
    assert serious_violations(page) == []
    light = chart_state(page, "day")
    page.get_by_role("button", name="Theme: follow the system").click()  # -> light
    page.get_by_role("button", name="Theme: light").click()  # -> dark
    page.wait_for_function("() => document.documentElement.dataset.theme === 'dark'")
    dark = chart_state(page, "day")
    assert dark["tick"] != light["tick"] and dark["datasets"][0]["color"] != light["datasets"][0]["color"]
    assert dark["tick"] == page.evaluate("() => getComputedStyle(document.body).color"), "axis text is the page's text"
    assert serious_violations(page) == []
    page.reload()  # the chosen theme from the first paint on
    page.wait_for_function("() => Chart.getChart(document.querySelector('canvas[data-chart=day]'))")
    assert chart_state(page, "day")["tick"] == dark["tick"]


def test_the_settings_page_shows_a_users_own_usage_and_is_axe_clean(a11y_page: Any, live: LiveServer) -> None:
    live.manage(
        "shell",
        "-c",
        "from django.contrib.auth.models import User; from chat.models import Budget; "
        "Budget.objects.create(user=User.objects.get(username='alice'), period='day', max_tokens=1000)",
    )
    page = a11y_page
    log_in(page, live)
    page.goto(live.url + "/settings/")
    usage = page.locator("#usage")
    assert "Daily budget (set for you): 0 of 1,000 tokens used, 1,000 left." in usage.inner_text()
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        assert serious_violations(page) == [], scheme


def test_a_nearly_spent_budget_is_announced_and_a_used_up_one_refuses_the_next_message(
    page: Any, live: LiveServer, fake_server: FakeProvider
) -> None:
    live.manage(
        "shell",
        "-c",
        "from django.contrib.auth.models import User; from chat.models import Budget; "
        "Budget.objects.create(user=User.objects.get(username='alice'), period='day', max_tokens=40)",
    )
    fake_server.enqueue(Script(tokens=["First ", "answer."], usage=(20, 14)))  # 34 of 40: 85 %
    fake_server.enqueue(Script(tokens=["Second ", "answer."], usage=(30, 10)))  # crosses it, and finishes
    log_in(page, live)
    notice = page.locator("#budget-notice")

    page.fill("#prompt", "One")
    page.keyboard.press("Enter")
    notice.wait_for(state="visible")
    assert "You have used 85 % of your daily budget (34 of 40 tokens)" in notice.inner_text()
    assert page.locator("#announcer").inner_text().startswith("You have used 85 %")
    page.get_by_role("button", name="Dismiss the budget warning").click()
    assert notice.is_hidden()

    page.fill("#prompt", "Two")
    page.keyboard.press("Enter")
    notice.wait_for(state="visible")  # a new thing to say: the budget is used up
    assert "You have used all of your daily budget (74 of 40 tokens)" in notice.inner_text()
    assert "New messages will be refused until it resets" in notice.inner_text()
    second = page.locator('.message[data-role="assistant"]').nth(1)
    assert second.get_attribute("data-status") == "complete", "an answer that crosses the budget finishes"

    page.fill("#prompt", "Three, which I would rather not type again")
    page.keyboard.press("Enter")
    refused = page.locator('.message[data-role="user"][data-status="error"]')
    refused.wait_for()
    assert "You have reached your daily budget. It resets at" in refused.inner_text()
    assert "An administrator can raise it." in refused.inner_text()
    assert page.input_value("#prompt") == "Three, which I would rather not type again", "the composer kept the text"
    assert page.locator("#announcer").inner_text().startswith("You have reached your daily budget")
    assert len(fake_server.requests) == 2, "the refused message was never sent upstream"


def test_a_third_answer_at_once_is_refused_in_plain_words_and_the_text_is_kept(
    page: Any, live: LiveServer, fake_server: FakeProvider
) -> None:
    slow = Script(tokens=[f"w{i} " for i in range(40)], tokens_per_second=10)  # 4 s each
    fake_server.enqueue(slow)
    fake_server.enqueue(slow)
    log_in(page, live)
    for text in ("First long question", "Second long question"):
        page.fill("#prompt", text)
        page.keyboard.press("Enter")
        page.wait_for_function(
            "() => document.querySelector('.message[data-role=assistant]')?.innerText.includes('w1')"
        )
        page.click("#new-chat")
    page.fill("#prompt", "A third one at once")
    page.keyboard.press("Enter")
    refused = page.locator('.message[data-role="user"][data-status="error"]')
    refused.wait_for()
    assert "You already have 2 answers being generated. Wait for one to finish or stop one." in refused.inner_text()
    assert page.input_value("#prompt") == "A third one at once"
    assert len(fake_server.requests) == 2
