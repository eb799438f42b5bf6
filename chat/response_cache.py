"""Answers to exact repeats, kept so a repeated prompt costs nothing upstream.

Opt-in per model (its `cache_ttl`, admin). A request is cached only at a temperature no
higher than the model's `cache_max_temperature` (one that sets none counts as 1.0, most
providers' default): above that the user expects a different answer each time. The key is
a hash of everything the provider is asked — the model, every message with its files'
bytes, temperature, top_p, max_tokens, stop and the reasoning request — so a hit is an
answer to exactly the same question. Each user has their own cache unless the model is
`cache_shared`: then the members of a group share one (a user in two groups reads from and
writes to both; a user in none keeps their own).

Kept in Django's cache (`default`): this process's memory, or Redis when REDIS_URL is set,
so every process shares it. Only complete answers are kept. Lookups happen on the worker
thread that checks a send; writes go to a thread of their own after the answer is saved.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
from typing import Any

from django.core.cache import cache

from chat import catalog_cache
from chat.generation.job import Cached, Outcome
from chat.models import ChatModel
from providers.base import ChatRequest, DocumentPart, ImagePart, Part, TextPart

log = logging.getLogger(__name__)

DEFAULT_TEMPERATURE = 1.0  # what a request without one is taken to run at


@dataclasses.dataclass(frozen=True)
class Plan:
    """What the cache does for one request: the answer it has, and where a new one goes."""

    hit: Cached | None = None
    keys: tuple[str, ...] = ()
    ttl: int = 0
    state: str = "off"  # off (not cached for this request), hit, miss, bypass (not read)


OFF = Plan()


def _part(part: Part) -> list[Any]:
    if isinstance(part, TextPart):
        return ["text", part.text]
    if isinstance(part, ImagePart):
        return ["image", part.media_type, hashlib.sha256(part.data).hexdigest()]
    if isinstance(part, DocumentPart):
        data = hashlib.sha256(part.data).hexdigest() if part.data is not None else ""
        return ["document", part.name, part.media_type, hashlib.sha256(part.text.encode()).hexdigest(), data]
    raise TypeError(f"unknown part {type(part).__name__}")


def digest(model: ChatModel, request: ChatRequest) -> str:
    """The hash of everything that decides an answer."""
    reasoning = dataclasses.asdict(request.reasoning) if request.reasoning is not None else None
    doc = {
        "model": str(model.id),
        "name": request.model,
        "messages": [[m.role, m.content, [_part(p) for p in m.parts]] for m in request.messages],
        "temperature": request.temperature,
        "top_p": request.top_p,
        "max_tokens": request.max_tokens,
        "stop": list(request.stop),
        "reasoning": reasoning,
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def cacheable(model: ChatModel, request: ChatRequest) -> bool:
    if model.cache_ttl <= 0:
        return False
    temperature = DEFAULT_TEMPERATURE if request.temperature is None else request.temperature
    return temperature <= model.cache_max_temperature


def _scopes(user: Any, model: ChatModel) -> list[str]:
    if model.cache_shared:
        groups = sorted(catalog_cache.user_groups(user))
        if groups:
            return [f"g{g}" for g in groups]
    return [f"u{user.pk}"]


def plan(user: Any, model: ChatModel, request: ChatRequest, *, read: bool = True, write: bool = True) -> Plan:
    """Look the request up (unless `read` is False: Regenerate, an API bypass). Sync: cache I/O."""
    if not cacheable(model, request) or not (read or write):
        return OFF
    key = digest(model, request)
    keys = tuple(f"answer:{scope}:{key}" for scope in _scopes(user, model))
    hit = None
    if read:
        try:
            found = cache.get_many(list(keys))
        except Exception:
            log.exception("the response cache could not be read; asking the provider")
            found = {}
        hit = next((_cached(found[k]) for k in keys if k in found), None)
    state = "hit" if hit is not None else "miss" if read else "bypass"
    return Plan(hit, keys if write else (), model.cache_ttl, state)


def _cached(value: Any) -> Cached | None:
    try:
        return Cached(**value)
    except TypeError:
        return None  # written by another version of Parley: a miss


def keep_answer(plan: Plan, outcome: Outcome) -> None:
    """After an answer is saved: keep it if it is a complete fresh one (off the loop: Redis I/O).

    Called by each caller's sink (`finished`), so the core needs no cache of its own.
    """
    if not plan.keys or outcome.cached or outcome.status != "complete" or not outcome.content:
        return
    if outcome.reason not in ("stop", "length"):
        return
    answer = Cached(outcome.content, outcome.reasoning, outcome.reason, outcome.input_tokens, outcome.output_tokens)
    asyncio.get_running_loop().run_in_executor(None, keep, plan.keys, plan.ttl, answer)


def keep(keys: tuple[str, ...], ttl: int, answer: Cached) -> None:
    """Store a complete answer under each key (sync: run off the event loop)."""
    try:
        cache.set_many({k: dataclasses.asdict(answer) for k in keys}, timeout=ttl)
    except Exception:
        log.exception("the response cache could not be written")
