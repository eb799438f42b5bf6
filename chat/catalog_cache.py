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


def clear(**_: Any) -> None:
    with _lock:
        _models.clear()
        _user_groups.clear()


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
