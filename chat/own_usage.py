"""What a user sees of their own usage on the settings page: today, this month, by model,
and what is left of each budget that applies to them.

Periods are the budgets' (chat.budgets.period_bounds: the server's time zone), so "today"
here is the day a daily budget counts. Three aggregate queries plus the budgets' own.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import Count, Q, Sum

from chat import budgets
from chat.models import Period, UsageRecord

TOP_MODELS = 8
SCOPES = {"user": "set for you", "group": "your group's", "everyone": "everyone's"}


@dataclasses.dataclass
class Spent:
    answers: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost: dict[str, Decimal] = dataclasses.field(default_factory=dict)

    def add(self, answers: int, tokens_in: int | None, tokens_out: int | None, currency: str, cost: Any) -> None:
        self.answers += answers
        self.tokens_in += tokens_in or 0
        self.tokens_out += tokens_out or 0
        if currency and cost is not None:
            self.cost[currency] = self.cost.get(currency, Decimal(0)) + Decimal(cost)


def _periods(user: Any, since: datetime, today: datetime) -> tuple[Spent, Spent]:
    day, month = Spent(), Spent()
    groups = UsageRecord.objects.filter(user=user, created__gte=since).values("currency").order_by().annotate(
        answers=Count("id"), tokens_in=Sum("input_tokens"), tokens_out=Sum("output_tokens"), spent=Sum("cost"),
        day_answers=Count("id", filter=Q(created__gte=today)),
        day_in=Sum("input_tokens", filter=Q(created__gte=today)),
        day_out=Sum("output_tokens", filter=Q(created__gte=today)),
        day_cost=Sum("cost", filter=Q(created__gte=today)),
    )
    for g in groups:
        month.add(g["answers"], g["tokens_in"], g["tokens_out"], g["currency"], g["spent"])
        day.add(g["day_answers"], g["day_in"], g["day_out"], g["currency"], g["day_cost"])
    return day, month


def _by_model(user: Any, since: datetime) -> list[tuple[str, Spent]]:
    models: dict[str, Spent] = {}
    groups = UsageRecord.objects.filter(user=user, created__gte=since).values("model_name", "currency").order_by()
    for g in groups.annotate(answers=Count("id"), tokens_in=Sum("input_tokens"), tokens_out=Sum("output_tokens"),
                             spent=Sum("cost")):
        models.setdefault(g["model_name"] or "(unknown)", Spent()).add(
            g["answers"], g["tokens_in"], g["tokens_out"], g["currency"], g["spent"])
    ranked = sorted(models.items(), key=lambda kv: (-(kv[1].tokens_in + kv[1].tokens_out), kv[0]))
    return ranked[:TOP_MODELS]


def _budget(s: budgets.Standing) -> dict[str, Any]:
    b = s.budget
    tokens = None if b.max_tokens is None else {
        "used": s.used_tokens, "max": b.max_tokens, "left": max(0, b.max_tokens - s.used_tokens)}
    cost = None if b.max_cost is None else {
        "used": f"{s.used_cost:.4f}", "max": f"{b.max_cost:.4f}",
        "left": f"{max(Decimal(0), b.max_cost - s.used_cost):.4f}",
        "currency": b.currency}
    return {
        "period": "Daily" if b.period == Period.DAY else "Monthly", "scope": SCOPES[b.scope],
        "tokens": tokens, "cost": cost, "resets_at": s.resets_at, "exceeded": s.exceeded,
        "percent": min(100, round(100 * s.fraction)) if s.fraction != float("inf") else 100,
        "near": s.fraction >= budgets.WARN_AT,
    }


def own_usage(user: Any, now: datetime | None = None) -> dict[str, Any]:
    today, _ = budgets.period_bounds(Period.DAY, now)
    month, _ = budgets.period_bounds(Period.MONTH, now)
    day, this_month = _periods(user, month, today)
    currencies = sorted(this_month.cost)  # today's are among the month's
    return {
        "day": day, "month": this_month, "currencies": currencies,
        "costs": [(c, f"{day.cost.get(c, 0):.4f}", f"{this_month.cost.get(c, 0):.4f}") for c in currencies],
        "models": [
            {"name": name, "answers": m.answers, "tokens_in": m.tokens_in, "tokens_out": m.tokens_out,
             "costs": [f"{m.cost[c]:.4f}" if c in m.cost else "" for c in currencies]}
            for name, m in _by_model(user, month)
        ],
        "budgets": [_budget(s) for s in budgets.standing(user, now)],
        "limits": {"per_minute": settings.PARLEY_USER_MESSAGES_PER_MINUTE,
                   "at_once": settings.PARLEY_USER_MAX_ACTIVE_GENERATIONS},
        "time_zone": settings.TIME_ZONE,
    }
