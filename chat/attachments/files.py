"""Where attachment bytes live: Django's storage API under the "attachments" alias.

The local file system by default (a folder next to the database), any S3-compatible store
through django-storages when configured (docs/attachments.md). Names are "<owner>/<uuid>":
nothing in them comes from the user. A file goes when its row goes — also when a whole
conversation or user is deleted by a cascade — and only once that deletion is committed,
so a rolled-back delete never leaves a row without its file.
"""

from __future__ import annotations

import collections
import logging
import threading
import uuid
from typing import IO, Any

from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models.signals import post_delete

from chat.models import Attachment
from chat.models.attachments import attachment_storage

__all__ = ["attachment_storage", "connect_signals", "delete", "open_file", "read", "save"]

log = logging.getLogger(__name__)


def save(owner_id: int, attachment_id: uuid.UUID, data: bytes) -> str:
    """Write the bytes; returns the stored name (the store may alter it, never to another's)."""
    return attachment_storage().save(f"{owner_id}/{attachment_id.hex}", ContentFile(data))


# Files never change once written, so each process keeps the latest few it read: every turn
# of a chat sends its images again, and an object store would be asked each time.
_CACHE_BYTES = 64 * 1024 * 1024
_cache: collections.OrderedDict[str, bytes] = collections.OrderedDict()
_cached = 0
_lock = threading.Lock()


def open_file(name: str | None) -> IO[bytes]:
    """The stored file for streaming (a download). Always through the alias, never FieldFile:
    a FileField resolves its storage once, when models load."""
    return attachment_storage().open(name or "", "rb")  # type: ignore[no-any-return]


def read(name: str | None) -> bytes:
    """A stored file's bytes (from this process's small cache when read lately)."""
    global _cached
    name = name or ""
    with _lock:
        data = _cache.get(name)
        if data is not None:
            _cache.move_to_end(name)
            return data
    with attachment_storage().open(name, "rb") as f:
        data = bytes(f.read())
    with _lock:
        if name not in _cache and len(data) <= _CACHE_BYTES // 4:
            _cache[name] = data
            _cached += len(data)
            while _cached > _CACHE_BYTES:
                _cached -= len(_cache.popitem(last=False)[1])
    return data


def delete(name: str) -> None:
    """Remove a stored file; a file already gone is not an error (the orphan sweep may race)."""
    global _cached
    with _lock:
        dropped = _cache.pop(name, None)
        if dropped is not None:
            _cached -= len(dropped)
    try:
        attachment_storage().delete(name)
    except Exception:
        log.exception("could not delete the attachment file %s; `manage.py attachments sweep` retries", name)


def _deleted(sender: Any, instance: Attachment, **_: Any) -> None:
    name = instance.file.name
    if name:
        transaction.on_commit(lambda: delete(name))


def connect_signals() -> None:
    post_delete.connect(_deleted, sender=Attachment, dispatch_uid="attachment-file-delete")
