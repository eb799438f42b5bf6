"""Talking to a provider on an admin's behalf: "test connection" and "discover models".

Nothing a user loads waits on a provider. The chat page reads ChatModel rows only; the
admin's provider list shows each provider's last known health from Django's cache and,
when that is stale or missing, asks for a check in a background thread with a short
timeout. A dead provider therefore shows as unhealthy instead of stalling a page.

The cache is CACHES["default"]. Django's local-memory default keeps one copy per process,
which is enough: a cold cache costs one background check, never a wait. Only the two
admin actions (which an admin clicks and waits for) call a provider in the request, and
they too give up after PARLEY_DISCOVERY_TIMEOUT seconds.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
import threading
import time
from collections.abc import Iterable

from django.conf import settings
from django.core.cache import cache

from chat.crypto import UndecryptableSecret
from chat.models import ChatModel, Provider
from providers import registry
from providers.base import ChatMessage, ChatRequest, Done, ErrorKind, ModelInfo, ProviderError, Target

log = logging.getLogger(__name__)


def _timeout() -> float:
    return float(getattr(settings, "PARLEY_DISCOVERY_TIMEOUT", 5.0))


def _ttl() -> float:
    """How long a check stays fresh before a page asks for a new one in the background."""
    return float(getattr(settings, "PARLEY_DISCOVERY_TTL", 600.0))


@dataclasses.dataclass(frozen=True)
class Health:
    """The outcome of one check; only user-safe text (ProviderError.message and ref) is kept."""

    ok: bool
    checked: float  # time.time()
    latency_ms: int = 0
    models: tuple[ModelInfo, ...] = ()
    listed: bool = False  # False when the check was a one-token chat (no model list)
    kind: str = ""
    message: str = ""
    ref: str = ""

    @property
    def stale(self) -> bool:
        return time.time() - self.checked > _ttl()

    def summary(self) -> str:
        if not self.ok:
            return f"{self.message} (ref {self.ref})"
        listed = f", {len(self.models)} model(s) listed" if self.listed else ""
        return f"connected in {self.latency_ms} ms{listed}"


def _cache_key(provider: Provider) -> str:
    return f"parley:provider-health:{provider.pk}"


def forget(provider: Provider) -> None:
    """Drop a provider's last check: its address or secrets changed, so it says nothing now."""
    cache.delete(_cache_key(provider))


def cached_health(provider: Provider) -> Health | None:
    value = cache.get(_cache_key(provider))
    return value if isinstance(value, Health) else None


# ---- running a check ---------------------------------------------------------------------

_pool: concurrent.futures.ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_inflight: dict[str, concurrent.futures.Future[Health]] = {}


def _executor() -> concurrent.futures.ThreadPoolExecutor:
    # Created on first use, never at import. Each check runs its own event loop in a worker
    # thread, so it works the same from a sync admin view, a background refresh or a test.
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="parley-discovery")
        return _pool


@dataclasses.dataclass(frozen=True)
class _Plan:
    """Everything a check needs, read from the database in the caller's thread."""

    provider_id: str
    family: str
    target: Target
    chat_model: str | None  # a one-token chat instead of a model list, for servers without one


def _plan(provider: Provider) -> _Plan:
    from providers.presets import PRESETS

    target = provider.target()
    limit = _timeout()
    target = dataclasses.replace(
        target,
        connect_timeout=min(target.connect_timeout, limit),
        read_timeout=min(target.read_timeout, limit),
        first_token_timeout=min(target.first_token_timeout, limit),
    )
    preset = PRESETS.get(provider.preset)
    chat_model = None
    if preset is not None and not preset.supports_model_list:
        first = provider.models.order_by("-enabled", "-is_default", "model_id").first()
        chat_model = first.model_id if first else None
    return _Plan(str(provider.pk), provider.family, target, chat_model)


async def _one_token(plan: _Plan) -> None:
    request = ChatRequest(plan.chat_model or "", (ChatMessage("user", "Hi"),), max_tokens=1)
    # The family directly, not registry.stream: a health check must not sit in retries.
    events = registry.family(plan.family).stream(plan.target, request)
    try:
        async for event in events:
            if isinstance(event, Done):
                break
    finally:
        await events.aclose()  # type: ignore[attr-defined]


async def _probe(plan: _Plan) -> tuple[ModelInfo, ...]:
    from providers.http import aclose_client

    try:
        if plan.chat_model is not None:
            await asyncio.wait_for(_one_token(plan), _timeout())
            return ()
        return tuple(await asyncio.wait_for(registry.list_models(plan.family, plan.target), _timeout()))
    except TimeoutError:
        raise ProviderError(ErrorKind.TIMEOUT, detail=f"no answer within {_timeout():g} s") from None
    finally:
        await aclose_client()  # this loop is about to end; so must its connections


def _run(plan: _Plan) -> Health:
    """Check one provider (in a worker thread), cache and return the outcome."""
    started = time.monotonic()
    try:
        models = asyncio.run(_probe(plan))
        health = Health(
            ok=True, checked=time.time(), latency_ms=round((time.monotonic() - started) * 1000),
            models=models, listed=plan.chat_model is None,
        )
    except ProviderError as error:
        log.warning(
            "provider check failed ref=%s provider=%s kind=%s status=%s detail=%s",
            error.ref, plan.target.name, error.kind.value, error.status, error.detail,
        )
        health = Health(ok=False, checked=time.time(), kind=error.kind.value, message=error.message, ref=error.ref)
    except Exception:
        # Not a provider's answer (a decryption failure, a bug): the traceback goes to the
        # log under a ref, and the admin sees the ref.
        failure = ProviderError(ErrorKind.UNAVAILABLE, "The check failed inside Parley; the server log has details.")
        log.exception("provider check crashed ref=%s provider=%s", failure.ref, plan.target.name)
        health = Health(ok=False, checked=time.time(), kind="internal", message=failure.message, ref=failure.ref)
    cache.set(f"parley:provider-health:{plan.provider_id}", health, timeout=None)
    return health


UNREADABLE_MESSAGE = (
    "This provider's stored secrets cannot be decrypted with the current PARLEY_ENCRYPTION_KEYS. "
    "Restore the removed key, or enter the key again on the provider's page."
)


def check(provider: Provider) -> Health:
    """Check now and wait (bounded by the timeout): for admin actions only."""
    try:
        plan = _plan(provider)
    except UndecryptableSecret:
        # Nothing to send: say why, under a ref like any failed check.
        failure = ProviderError(ErrorKind.AUTH, UNREADABLE_MESSAGE, detail="undecryptable secret")
        log.warning("provider check refused ref=%s provider=%s: undecryptable", failure.ref, provider.name)
        health = Health(
            ok=False, checked=time.time(), kind="secrets", message=failure.message, ref=failure.ref
        )
        cache.set(_cache_key(provider), health, timeout=None)
        return health
    return _executor().submit(_run, plan).result(timeout=_timeout() + 10)


def refresh_stale(providers: Iterable[Provider]) -> None:
    """Queue background checks for enabled providers whose health is missing or stale."""
    for provider in providers:
        if not provider.enabled:
            continue
        health = cached_health(provider)
        if health is not None and not health.stale:
            continue
        key = str(provider.pk)
        with _pool_lock:
            running = _inflight.get(key)
            if running is not None and not running.done():
                continue
        try:
            plan = _plan(provider)
        except Exception:
            log.exception("could not plan a check of provider %s", provider.name)
            continue
        future = _executor().submit(_run, plan)
        with _pool_lock:
            _inflight[key] = future


def wait_for_refreshes(timeout: float = 30) -> None:
    """Block until queued background checks are done (a seam for tests and shutdown)."""
    with _pool_lock:
        futures = list(_inflight.values())
        _inflight.clear()
    concurrent.futures.wait(futures, timeout=timeout)


# ---- importing a model list ------------------------------------------------------------


def do_import_models(provider: Provider, models: Iterable[ModelInfo]) -> list[ChatModel]:
    """Add listed models the catalogue lacks, disabled: an admin decides who may use what."""
    known = set(provider.models.values_list("model_id", flat=True))
    new: dict[str, ChatModel] = {}
    for info in models:
        if info.id in known and info.vision is not None:
            # What the provider says of images fills in a model nobody has decided for.
            provider.models.filter(model_id=info.id, vision__isnull=True).update(vision=info.vision)
        if not info.id or len(info.id) > 200 or info.id in known or info.id in new:
            continue
        new[info.id] = ChatModel(
            provider=provider,
            model_id=info.id,
            display_name=info.display_name[:200],
            context_window=info.context_window if info.context_window and info.context_window > 0 else None,
            vision=info.vision,
            enabled=False,
        )
    ChatModel.objects.bulk_create(new.values(), ignore_conflicts=True)
    return list(new.values())
