"""What was used and spent over a range of days: the admin usage page's tables, as rows.

Every table is one aggregate query over the usage records (grouped by its key and by
currency), folded here over the grouped rows, never over the records: the page costs the
same handful of queries for a hundred records or a million. The HTML table, the chart
beside it and the CSV export all come from the same `Table`, so they cannot disagree.

Costs are kept per currency (a sum across currencies means nothing); an answer of an
unpriced model has no cost and counts in "unpriced answers". Groups are the user's groups
now (a user in two groups counts in both; a deleted user's answers count as "(no group)").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import CharField, Count, F, Func, Q, QuerySet, Sum, Value
from django.db.models.functions import TruncDate
from django.utils import timezone

from chat.models import UsageRecord

CHARTED = 10  # rows a breakdown's chart shows; its table shows them all
NO_GROUP = "(no group)"
UNKNOWN = "(unknown)"


@dataclasses.dataclass(frozen=True)
class Filters:
    start: date  # first day, in TIME_ZONE
    end: date  # last day, included
    source: str = ""  # "" for every source

    def records(self) -> QuerySet[UsageRecord]:
        tz = timezone.get_current_timezone()
        since = datetime.combine(self.start, time.min, tz)
        until = datetime.combine(self.end + timedelta(days=1), time.min, tz)
        rows = UsageRecord.objects.filter(created__gte=since, created__lt=until)
        return rows.filter(source=self.source) if self.source else rows

    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]


@dataclasses.dataclass
class Measures:
    """One table row's figures, summed over its (key, currency) groups."""

    answers: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    reasoning: int = 0
    cached: int = 0
    estimated: int = 0
    unpriced: int = 0
    cost: dict[str, Decimal] = dataclasses.field(default_factory=dict)

    @property
    def tokens(self) -> int:
        return self.tokens_in + self.tokens_out

    def add(self, group: dict[str, Any]) -> None:
        self.answers += group["answers"]
        self.tokens_in += group["tokens_in"] or 0
        self.tokens_out += group["tokens_out"] or 0
        self.reasoning += group["reasoning"] or 0
        self.cached += group["cached"]
        self.estimated += group["estimated"]
        self.unpriced += group["unpriced"]
        if group["currency"] and group["cost"] is not None:
            self.cost[group["currency"]] = self.cost.get(group["currency"], Decimal(0)) + Decimal(group["cost"])

    @classmethod
    def sum(cls, rows: Iterable[Measures]) -> Measures:
        out = cls()
        for m in rows:
            for f in ("answers", "tokens_in", "tokens_out", "reasoning", "cached", "estimated", "unpriced"):
                setattr(out, f, getattr(out, f) + getattr(m, f))
            for currency, amount in m.cost.items():
                out.cost[currency] = out.cost.get(currency, Decimal(0)) + amount
        return out


def _measured(rows: QuerySet[UsageRecord], *keys: str) -> QuerySet[Any]:
    return rows.values(*keys, "currency").order_by().annotate(
        answers=Count("id"),
        tokens_in=Sum("input_tokens"),
        tokens_out=Sum("output_tokens"),
        reasoning=Sum("reasoning_tokens"),
        cached=Count("id", filter=Q(cached=True)),
        estimated=Count("id", filter=Q(estimated=True)),
        unpriced=Count("id", filter=Q(cost__isnull=True)),
        cost=Sum("cost"),
    )


@dataclasses.dataclass
class Table:
    """One breakdown: key columns, then the same measures for every table."""

    name: str  # "day", "user", ...: the CSV's `table=`
    title: str
    keys: list[str]  # the key columns' headings
    rows: list[tuple[tuple[str, ...], Measures]]
    currencies: list[str]
    total_tokens: int

    def headings(self) -> list[str]:
        return [*self.keys, "Answers", "Tokens in", "Tokens out", "Reasoning tokens", "Share of tokens (%)",
                "Estimated (%)", "Cache hits", "Unpriced answers", *(f"Cost ({c})" for c in self.currencies)]

    def cells(self, *, exact: bool = False) -> Iterable[list[str]]:
        """Each row as text: for the page (grouped digits, cost to 4 places) or, `exact`, the CSV."""
        def number(n: int) -> str:
            return str(n) if exact else f"{n:,}"

        for key, m in self.rows:
            yield [
                *key, number(m.answers), number(m.tokens_in), number(m.tokens_out), number(m.reasoning),
                percent(m.tokens, self.total_tokens), percent(m.estimated, m.answers), number(m.cached),
                number(m.unpriced),
                *(_money(m.cost[c], exact) if c in m.cost else "" for c in self.currencies),
            ]

    def chart(self, primary: str) -> dict[str, Any]:
        """What the chart draws: tokens in and out, and (by user) the spend, of the first rows."""
        rows = self.rows if self.name == "day" else self.rows[:CHARTED]
        return {
            "labels": [" · ".join(k) for k, _ in rows],
            "tokens_in": [m.tokens_in for _, m in rows],
            "tokens_out": [m.tokens_out for _, m in rows],
            "cost": [float(m.cost.get(primary, 0)) for _, m in rows] if primary else [],
        }


def percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}" if whole else "0.0"


def _money(amount: Decimal, exact: bool) -> str:
    # The CSV keeps every stored decimal (8 places); the page rounds to a hundredth of a cent.
    return f"{amount.normalize():f}" if exact else f"{amount:.4f}"


def _folded(groups: Iterable[dict[str, Any]], key: Any) -> dict[tuple[str, ...], Measures]:
    out: dict[tuple[str, ...], Measures] = {}
    for group in groups:
        out.setdefault(key(group), Measures()).add(group)
    return out


@dataclasses.dataclass
class Report:
    filters: Filters
    totals: Measures
    users: int | None  # with the users' table only
    currencies: list[str]
    primary: str  # the currency most was spent in ("" when nothing was priced)
    tables: dict[str, Table]


def _by_spend(primary: str) -> Any:
    return lambda item: (-item[1].cost.get(primary, Decimal(0)), -item[1].tokens, item[0])


TABLES: dict[str, tuple[str, list[str]]] = {
    "day": ("Per day", ["Day"]),
    "user": ("Per user (top spenders first)", ["User"]),
    "group": ("Per group", ["Group"]),
    "model": ("Per model", ["Model", "Provider"]),
    "provider": ("Per provider", ["Provider"]),
}


def _per_day(filters: Filters) -> Iterable[dict[str, Any]]:
    """The records grouped by day in TIME_ZONE (and currency).

    Django's TruncDate on SQLite calls a Python function for every record (a second for
    100,000); SQLite's own date() with an offset is native. Its offset is one number, so the
    range is cut where the zone's offset changes (daylight saving: at most two cuts a year),
    one query per stretch. PostgreSQL converts time zones natively: one query.
    """
    if connection.vendor != "sqlite":
        tz = timezone.get_current_timezone()
        return _measured(filters.records().annotate(day=TruncDate("created", tzinfo=tz)), "day")
    groups: list[dict[str, Any]] = []
    for start, end, minutes in _stretches(filters):
        if minutes is None:  # the day the clocks change: one day, so its name is known
            day: Any = Value(start.isoformat(), output_field=CharField())
        else:
            day = Func(F("created"), Value(f"{minutes:+d} minutes"), function="date", output_field=CharField())
        stretch = dataclasses.replace(filters, start=start, end=end)
        groups.extend(_measured(stretch.records().annotate(day=day), "day"))
    return groups


def _stretches(filters: Filters) -> list[tuple[date, date, int | None]]:
    """Runs of days with one UTC offset throughout, as (first day, last day, offset in
    minutes); a day during which the offset changes is a run of its own, with None."""
    tz = timezone.get_current_timezone()
    out: list[tuple[date, date, int | None]] = []
    for day in filters.days():
        begins = datetime.combine(day, time.min, tz).utcoffset() or timedelta(0)
        ends = datetime.combine(day + timedelta(days=1), time.min, tz).utcoffset() or timedelta(0)
        minutes = int(begins.total_seconds() // 60) if begins == ends else None
        if out and minutes is not None and out[-1][2] == minutes:
            out[-1] = (out[-1][0], day, minutes)
        else:
            out.append((day, day, minutes))
    return out


KEYS: dict[str, tuple[list[str], Any]] = {
    "user": (["username"], lambda g: (g["username"],)),
    "group": (["user__groups__name"], lambda g: (g["user__groups__name"] or NO_GROUP,)),
    "model": (["model_name", "provider_name"], lambda g: (g["model_name"] or UNKNOWN, g["provider_name"] or UNKNOWN)),
    "provider": (["provider_name"], lambda g: (g["provider_name"] or UNKNOWN,)),
}


def _fold(name: str, filters: Filters) -> dict[tuple[str, ...], Measures]:
    """One breakdown's rows, unordered: one aggregate query (per-day: one per stretch)."""
    if name == "day":
        return _folded(_per_day(filters), lambda g: (str(g["day"]),))
    fields, key = KEYS[name]
    return _folded(_measured(filters.records(), *fields), key)


def _ordered(name: str, rows: dict[tuple[str, ...], Measures], filters: Filters, primary: str) -> list[Any]:
    if name == "day":
        # Every day of the range, the quiet ones too: a gap in a chart reads as "no data".
        return [((d.isoformat(),), rows.get((d.isoformat(),), Measures())) for d in filters.days()]
    return sorted(rows.items(), key=_by_spend(primary))


def _totals(filters: Filters) -> Measures:
    measures = Measures()
    for group in _measured(filters.records()):
        measures.add(group)
    return measures


def report(filters: Filters, only: str | None = None) -> Report:
    """Every table (or `only` one, for its CSV), with the totals their shares are of.

    Every record is in exactly one row of each table but the groups' (a user may be in
    several), so the totals are the sum of a table's rows, not another pass over the records.
    """
    names = [only] if only else list(TABLES)
    folded = {n: _fold(n, filters) for n in names}
    whole = next((folded[n] for n in ("provider", "day", "user", "model") if n in folded), None)
    totals = Measures.sum(whole.values()) if whole is not None else _totals(filters)
    currencies = sorted(totals.cost)
    primary = max(currencies, key=lambda c: totals.cost[c]) if currencies else ""
    tables = {}
    for name in names:
        title, keys = TABLES[name]
        rows = _ordered(name, folded[name], filters, primary)
        tables[name] = Table(name, title, keys, rows, currencies, totals.tokens)
    users = len(folded["user"]) if "user" in folded else None
    return Report(filters, totals, users, currencies, primary, tables)
