"""May this user start an answer now? Checked before any upstream call, for every caller.

Each policy looks at the user and the registry and either lets the answer through or
returns a Refusal that says what happened and when to retry. Server-wide policies come
first; per-user limits and budgets join POLICIES as they are added.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from django.conf import settings

from chat.generation.registry import Registry


@dataclasses.dataclass(frozen=True)
class Refusal:
    code: str  # the protocol's error code (`server_busy`, ...)
    message: str  # for the user, says when to retry
    retry_after: int  # seconds


Policy = Callable[[Any, Registry], Refusal | None]


def restarting(user: Any, registry: Registry) -> Refusal | None:
    if registry.accepting:
        return None
    seconds = settings.PARLEY_BUSY_RETRY_SECONDS
    return Refusal("server_busy", "Parley is restarting. Try again in a few seconds.", seconds)


def server_capacity(user: Any, registry: Registry) -> Refusal | None:
    """Above PARLEY_MAX_ACTIVE_GENERATIONS a clear "busy, retry in N s" beats everybody's
    answers slowing down together."""
    if registry.pending_count() < settings.PARLEY_MAX_ACTIVE_GENERATIONS:
        return None
    seconds = settings.PARLEY_BUSY_RETRY_SECONDS
    return Refusal("server_busy", f"Parley is busy right now. Try again in {seconds} s.", seconds)


POLICIES: list[Policy] = [restarting, server_capacity]


def check(user: Any, registry: Registry) -> Refusal | None:
    """The first refusal of any policy, or None if the answer may start."""
    for policy in POLICIES:
        refusal = policy(user, registry)
        if refusal is not None:
            return refusal
    return None
