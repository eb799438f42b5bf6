"""Counters that hold across processes: Django's cache (local memory by default, Redis when
REDIS_URL is set, which keeps them across a Parley restart too).

A counter that cannot be reached fails open: rate limits are a courtesy to the team, and a
Redis outage must not stop everyone from chatting (budgets, kept in the database, still hold).
"""

from __future__ import annotations

import logging

from django.core.cache import cache

log = logging.getLogger(__name__)


def _incr(key: str, ttl: float) -> int:
    for _ in range(3):
        cache.add(key, 0, timeout=ttl)
        try:
            return int(cache.incr(key))
        except ValueError:  # expired between add and incr
            continue
    raise RuntimeError(f"counter {key} kept expiring")


def hit(key: str, window_seconds: int) -> int | None:
    """Count one event in a fixed window; the count so far, or None if the cache is away."""
    try:
        return _incr(key, window_seconds + 1)
    except Exception as exc:
        log.warning("rate counter unavailable (%s): not limiting", exc)
        return None


def acquire(key: str, limit: int, ttl: float) -> bool:
    """Take one of `limit` places; False when all are taken. The places expire after `ttl`,
    so a process that died holding some gives them back in time."""
    try:
        taken = _incr(key, ttl)
    except Exception as exc:
        log.warning("concurrency counter unavailable (%s): not limiting", exc)
        return True
    if taken > limit:
        release(key)
        return False
    return True


def release(key: str) -> None:
    try:
        if int(cache.decr(key)) < 0:
            cache.set(key, 0)
    except ValueError:
        pass  # expired: nothing left to give back
    except Exception as exc:
        log.warning("could not release counter %s (%s)", key, exc)
