"""What every send needs from the catalogue, kept per process for a moment.

A send must check that the user may call the model and build the provider's Target
(decrypting its key) before anything goes upstream; read from the database each time,
that was about half of the time Parley added before a first token. The catalogue
changes rarely, so entries live for PARLEY_CATALOG_CACHE_SECONDS and are dropped at once
when this process saves a model, provider or group membership (Django admin runs here).
Changes made by another server process reach this one at once through Redis
(chat.cluster broadcasts "catalog"); changes by a process outside the cluster
(`manage.py provider`) take effect within the TTL.
"""

from __future__ import annotations

import dataclasses
import re
import threading
import time
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.db.models.signals import m2m_changed, post_delete, post_save

from chat.models import ChatModel, Provider
from providers.base import Target


@dataclasses.dataclass(frozen=True)
class Entry:
    model: ChatModel
    groups: frozenset[int]  # empty: everyone may use it
    target: Target
    loaded: float


_models: dict[str, Entry] = {}
_user_groups: dict[int, tuple[frozenset[int], float]] = {}
_lock = threading.Lock()  # sends are checked on several worker threads


def _fresh(loaded: float) -> bool:
    return time.monotonic() - loaded < settings.PARLEY_CATALOG_CACHE_SECONDS


def model_entry(model_id: str) -> Entry | None:
    """The enabled model on an enabled provider, or None."""
    entry = _models.get(model_id)
    if entry is not None and _fresh(entry.loaded):
        return entry
    model = ChatModel.objects.select_related("provider").filter(
        id=model_id, enabled=True, provider__enabled=True
    ).first()
    if model is None:
        with _lock:
            _models.pop(model_id, None)
        return None
    groups = frozenset(model.groups.values_list("id", flat=True))
    entry = Entry(model, groups, model.provider.target(), time.monotonic())
    with _lock:
        _models[model_id] = entry
    return entry


def user_groups(user: Any) -> frozenset[int]:
    cached = _user_groups.get(user.pk)
    if cached is not None and _fresh(cached[1]):
        return cached[0]
    groups = frozenset(user.groups.values_list("id", flat=True))
    with _lock:
        _user_groups[user.pk] = (groups, time.monotonic())
    return groups


# ---- the ids the API names models by ------------------------------------------------------

_API_CHARS = re.compile(r"[^a-z0-9._:/-]+")
_api_ids: tuple[dict[str, str], dict[str, str], float] | None = None  # id -> model uuid, uuid -> id


def api_slug(model_id: str) -> str:
    """A provider's model name as something a person can type: lower case, no spaces."""
    return _API_CHARS.sub("-", model_id.lower()).strip("-/") or "model"


def _assign_api_ids() -> tuple[dict[str, str], dict[str, str]]:
    """Every model's API id, unique in the deployment and stable as models come and go.

    An admin's `api_name` wins; otherwise the model name, and a model whose name another
    model already took (the earlier one keeps it) gets its provider's name in front.
    """
    rows = list(ChatModel.objects.order_by("created", "id").values_list("id", "model_id", "api_name", "provider__name"))
    by_id: dict[str, str] = {}
    taken = {name for _, _, name, _ in rows if name}
    for pk, model_id, name, provider in rows:
        if name:
            by_id[str(pk)] = name
            continue
        slug = api_slug(model_id)
        for candidate in (slug, f"{provider}/{slug}", *(f"{provider}/{slug}-{n}" for n in range(2, 100))):
            if candidate not in taken:
                break
        taken.add(candidate)
        by_id[str(pk)] = candidate
    return {v: k for k, v in by_id.items()}, by_id


def api_ids() -> tuple[dict[str, str], dict[str, str]]:
    """(API id -> model uuid, model uuid -> API id), kept like the rest of the catalogue."""
    global _api_ids
    cached = _api_ids
    if cached is not None and _fresh(cached[2]):
        return cached[0], cached[1]
    forward, back = _assign_api_ids()
    with _lock:
        _api_ids = (forward, back, time.monotonic())
    return forward, back


def api_id(model_uuid: object) -> str:
    return api_ids()[1].get(str(model_uuid), "")


def clear(**_: Any) -> None:
    global _api_ids
    with _lock:
        _models.clear()
        _user_groups.clear()
        _api_ids = None


def changed(**_: Any) -> None:
    """This process changed the catalogue: drop our copy, and tell the other processes."""
    from chat import cluster

    clear()
    cluster.broadcast_catalog()


def connect_signals() -> None:
    """Called from ChatConfig.ready(): drop every entry when this process changes the catalogue."""
    from django.contrib.auth import get_user_model

    for sender in (ChatModel, Provider, Group):
        post_save.connect(changed, sender=sender, dispatch_uid=f"catalog-cache-save-{sender.__name__}")
        post_delete.connect(changed, sender=sender, dispatch_uid=f"catalog-cache-delete-{sender.__name__}")
    m2m_changed.connect(changed, sender=ChatModel.groups.through, dispatch_uid="catalog-cache-model-groups")
    m2m_changed.connect(changed, sender=get_user_model().groups.through, dispatch_uid="catalog-cache-user-groups")
