"""How much of their budgets a user has spent, and when each starts over.

Budgets are per day or per month, in tokens and/or money, set by an admin for everyone, per
group or per user; for each period the most specific wins (a user's own, else the most
generous of their groups', else everyone's). Periods follow the server's time zone
(TIME_ZONE): a day budget starts over at midnight, a month budget on the first.

Answers from in-browser models are metered but count against no budget: they run on the
user's own device and spend nothing of the team's keys (and are never refused).

A user with no budget costs nothing here: the budget table is kept per process for a
moment (like the model catalogue) and usage is only summed for users who have one.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import F, Sum
from django.db.models.signals import post_delete, post_save
from django.utils import timezone

from chat import catalog_cache
from chat.models import Budget, Period, Source, UsageRecord

WARN_AT = 0.8  # the chat warns once an answer leaves less than a fifth of a budget

_budgets: tuple[list[Budget], float] | None = None
_lock = threading.Lock()


def _all_budgets() -> list[Budget]:
    global _budgets
    cached = _budgets
    if cached is not None and time.monotonic() - cached[1] < settings.PARLEY_CATALOG_CACHE_SECONDS:
        return cached[0]
    rows = list(Budget.objects.all())
    with _lock:
        _budgets = (rows, time.monotonic())
    return rows


def surely_none() -> bool:
    """True when this process knows, without asking the database, that no budget exists."""
    cached = _budgets
    return (
        cached is not None and not cached[0]
        and time.monotonic() - cached[1] < settings.PARLEY_CATALOG_CACHE_SECONDS
    )


def clear(**_: Any) -> None:
    global _budgets
    with _lock:
        _budgets = None


def changed(**_: Any) -> None:
    from chat import cluster

    clear()
    cluster.broadcast_catalog()


def connect_signals() -> None:
    post_save.connect(changed, sender=Budget, dispatch_uid="budgets-saved")
    post_delete.connect(changed, sender=Budget, dispatch_uid="budgets-deleted")


def _generous(budget: Budget) -> tuple[float, float]:
    # Empty limits are unlimited, so they are the most generous.
    return (
        float("inf") if budget.max_tokens is None else float(budget.max_tokens),
        float("inf") if budget.max_cost is None else float(budget.max_cost),
    )


def budgets_for(user: Any) -> list[Budget]:
    """The budget that applies to this user for each period (at most one per period)."""
    rows = _all_budgets()
    if not rows:
        return []
    groups = catalog_cache.user_groups(user)
    chosen = []
    for period in Period.values:
        mine = [b for b in rows if b.period == period and b.user_id == user.pk]
        theirs = [b for b in rows if b.period == period and b.group_id in groups]
        everyone = [b for b in rows if b.period == period and b.user_id is None and b.group_id is None]
        if mine:
            chosen.append(mine[0])
        elif theirs:
            chosen.append(max(theirs, key=_generous))
        elif everyone:
            chosen.append(everyone[0])
    return chosen


def period_bounds(period: str, now: datetime | None = None) -> tuple[datetime, datetime]:
    """(start, next start) of the period containing `now`, in the server's time zone."""
    local = timezone.localtime(now or timezone.now())
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == Period.DAY:
        return day, day + timedelta(days=1)
    first = day.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return first, following


@dataclasses.dataclass(frozen=True)
class Standing:
    budget: Budget
    used_tokens: int
    used_cost: Decimal
    resets_at: datetime

    @property
    def fraction(self) -> float:
        """The larger of the two shares used, 0–1 (or more once over)."""
        shares = [0.0]
        if self.budget.max_tokens:
            shares.append(self.used_tokens / self.budget.max_tokens)
        if self.budget.max_cost:
            shares.append(float(self.used_cost / self.budget.max_cost))
        if self.budget.max_tokens == 0 or self.budget.max_cost == 0:
            shares.append(float("inf"))
        return max(shares)

    @property
    def exceeded(self) -> bool:
        return self.fraction >= 1

    def as_json(self) -> dict[str, Any]:
        b = self.budget
        return {
            "period": b.period, "scope": b.scope,
            "max_tokens": b.max_tokens, "used_tokens": self.used_tokens,
            "max_cost": str(b.max_cost) if b.max_cost is not None else None,
            "used_cost": str(self.used_cost.quantize(Decimal("0.0001"))), "currency": b.currency,
            "resets_at": self.resets_at.isoformat(), "fraction": round(min(self.fraction, 99.0), 4),
        }


def standing(user: Any, now: datetime | None = None) -> list[Standing]:
    """Each of the user's budgets with what was spent of it this period."""
    out = []
    for budget in budgets_for(user):
        start, resets_at = period_bounds(budget.period, now)
        # In-browser answers and cache hits spent nothing of the team's keys.
        counted = UsageRecord.objects.filter(user=user, created__gte=start, cached=False).exclude(source=Source.BROWSER)
        spent = counted.aggregate(tokens=Sum(F("input_tokens") + F("output_tokens")))
        cost = counted.filter(currency=budget.currency).aggregate(cost=Sum("cost"))
        out.append(Standing(budget, int(spent["tokens"] or 0), Decimal(cost["cost"] or 0), resets_at))
    return out


def refusal_message(reached: Standing) -> str:
    when = timezone.localtime(reached.resets_at)
    kind = "daily" if reached.budget.period == Period.DAY else "monthly"
    return (
        f"You have reached your {kind} budget. It resets at {when:%Y-%m-%d %H:%M} "
        f"({when.tzname()}). An administrator can raise it."
    )
