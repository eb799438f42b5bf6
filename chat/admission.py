"""May this user start an answer now? Asked before any upstream call, by every caller.

`admit` runs the policies in order and either returns a Ticket — a place among the user's
concurrent answers, given back with `release()` when the answer ends — or raises Refused
with what happened and when to retry. Nothing is spent on a refused answer.

1. restarting        the process is draining for a restart
2. rate              at most PARLEY_USER_MESSAGES_PER_MINUTE answers asked per user per minute
3. budget            no answer once a day or month budget is used up (chat.budgets)
4. concurrency       at most PARLEY_USER_MAX_ACTIVE_GENERATIONS answers per user at once,
                     so one user can never take the whole server
5. server capacity   at most PARLEY_MAX_ACTIVE_GENERATIONS answers in this process
                     (running, or admitted and about to run)

Counters are Django's cache (chat.counters): shared by every process when Redis is set.
Policies do I/O (cache, database), so `admit` is synchronous and runs on a worker thread.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings

from chat import budgets, counters
from chat.generation.registry import Registry


@dataclasses.dataclass(frozen=True)
class Refusal:
    code: str  # the protocol's error code
    message: str  # for the user: what happened and when to retry
    retry_after: int  # seconds


class Refused(Exception):
    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal


@dataclasses.dataclass
class Ticket:
    """Places taken for one answer: among the user's (given back when it ends) and among the
    process's answers about to start (given back once it runs, when it counts as running)."""

    registry: Registry
    key: str | None = None
    starting: bool = False
    shared: str | None = None  # the place among every process's answers, with several

    def started(self) -> None:
        if self.starting:
            self.starting = False
            self.registry.give_back_capacity()

    def release(self) -> None:
        self.started()
        for name in ("key", "shared"):
            key = getattr(self, name)
            if key is not None:
                setattr(self, name, None)
                counters.release(key)


def _restarting(user: Any, registry: Registry) -> None:
    if not registry.accepting:
        raise Refused(Refusal(
            "server_busy", "Parley is restarting. Try again in a few seconds.", settings.PARLEY_BUSY_RETRY_SECONDS
        ))


def _rate(user: Any, registry: Registry) -> None:
    limit = settings.PARLEY_USER_MESSAGES_PER_MINUTE
    if not limit:
        return
    now = time.time()
    minute = int(now // 60)
    count = counters.hit(f"rate:{user.pk}:{minute}", 60)
    if count is not None and count > limit:
        wait = max(1, 60 - int(now % 60))
        raise Refused(Refusal(
            "rate_limited", f"You are sending messages faster than {limit} a minute. Try again in {wait} s.", wait
        ))


def _budget(user: Any, registry: Registry) -> None:
    for reached in budgets.standing(user):
        if reached.exceeded:
            wait = max(1, int(reached.resets_at.timestamp() - time.time()))
            raise Refused(Refusal("budget_exceeded", budgets.refusal_message(reached), wait))


# Checks that take nothing; then the user's place, then the server's.
POLICIES: list[Callable[[Any, Registry], None]] = [_restarting, _rate, _budget]


def admit(user: Any, registry: Registry) -> Ticket:
    """A ticket for one answer of `user`, or Refused (sync: cache and database I/O)."""
    for policy in POLICIES:
        policy(user, registry)
    ticket = Ticket(registry)
    limit = settings.PARLEY_USER_MAX_ACTIVE_GENERATIONS
    if limit:
        key = f"active:{user.pk}"
        # Places expire after the longest an answer may run: a crashed process gives them back.
        if not counters.acquire(key, limit, settings.PARLEY_MAX_GENERATION_SECONDS + 60):
            seconds = settings.PARLEY_BUSY_RETRY_SECONDS
            raise Refused(Refusal(
                "too_many_answers",
                f"You already have {limit} answer{'s' if limit != 1 else ''} being generated. "
                "Wait for one to finish or stop one.",
                seconds,
            ))
        ticket.key = key
    # Above PARLEY_MAX_ACTIVE_GENERATIONS a clear "busy, retry in N s" beats everybody's
    # answers slowing down together: in this process, and across all of them when several
    # share the work (the cache is Redis then).
    cap = settings.PARLEY_MAX_ACTIVE_GENERATIONS
    busy = Refused(Refusal(
        "server_busy", f"Parley is busy right now. Try again in {settings.PARLEY_BUSY_RETRY_SECONDS} s.",
        settings.PARLEY_BUSY_RETRY_SECONDS,
    ))
    if not registry.take_capacity(cap):
        ticket.release()
        raise busy
    ticket.starting = True
    if settings.PARLEY_CLUSTER:
        if not counters.acquire("active:all", cap, settings.PARLEY_MAX_GENERATION_SECONDS + 60):
            ticket.release()
            raise busy
        ticket.shared = "active:all"
    return ticket
