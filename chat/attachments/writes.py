"""Uploading an attachment, and the sweep of files nobody sent.

`do_upload` checks everything before it writes anything: the file's size, what its bytes
are (chat.attachments.inspect), the owner's file count and storage left. The bytes are then
written, the owner's room checked again with the row's insert (two uploads at once cannot
both take the last room), and the file removed again if that fails.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import Count, Sum
from django.utils import timezone

from chat import limits
from chat.attachments import files
from chat.attachments.inspect import Inspected, inspect

__all__ = ["Inspected", "TooLarge", "check_room", "check_size", "do_remove_unsent", "do_sweep", "do_upload",
           "inspect", "store"]
from chat.limits import Invalid
from chat.models import Attachment

# An upload not sent with a message within this long is an orphan (the page was closed).
UNSENT_GRACE = timedelta(hours=24)


class TooLarge(Invalid):
    """A size or count limit: the page says so with the numbers (HTTP 413)."""


def check_size(name: str, size: int | None) -> None:
    cap = limits.attachment_bytes()
    if size is not None and size > cap:
        raise TooLarge(f"{name} is {limits.megabytes(size)}; files may be at most {limits.megabytes(cap)}.")


def check_room(user: Any, adding: int) -> None:
    used = Attachment.objects.filter(owner=user).aggregate(n=Count("id"), bytes=Sum("size"))
    count, stored = used["n"] or 0, used["bytes"] or 0
    if count + 1 > limits.attachment_user_files():
        raise TooLarge(f"You keep {count:,} files, the most allowed. Delete conversations with files to make room.")
    room = limits.attachment_user_bytes()
    if stored + adding > room:
        raise TooLarge(
            f"This file ({limits.megabytes(adding)}) does not fit: you keep {limits.megabytes(stored)} of files "
            f"and may keep {limits.megabytes(room)}. Delete conversations with files to make room."
        )


def do_upload(user: Any, raw_name: str, data: bytes) -> Attachment:
    """Check, store and record one upload (run off the database thread: it decodes images)."""
    check_size(raw_name, len(data))
    kept = inspect(raw_name, data)
    check_room(user, len(kept.data))
    return store(user, kept)


def store(user: Any, kept: Inspected, conversation_id: uuid.UUID | None = None) -> Attachment:
    attachment = Attachment(
        id=uuid.uuid4(), owner=user, conversation_id=conversation_id, kind=kept.kind, name=kept.name,
        media_type=kept.media_type, size=len(kept.data), sha256=hashlib.sha256(kept.data).hexdigest(),
        width=kept.width, height=kept.height, pages=kept.pages, text=kept.text,
    )
    name = files.save(user.pk, attachment.id, kept.data)
    attachment.file.name = name
    try:
        with transaction.atomic():
            check_room(user, 0 if conversation_id else len(kept.data))
            attachment.save(force_insert=True)
    except BaseException:
        files.delete(name)
        raise
    return attachment


def do_remove_unsent(user: Any, attachment: Attachment) -> None:
    """Take a file out of the composer: only one no message has been sent with."""
    if attachment.conversation_id is not None:
        raise Invalid("This file is part of a sent message; delete the conversation to remove it.")
    attachment.delete()


def do_sweep() -> tuple[int, int]:
    """Delete uploads never sent within UNSENT_GRACE, then stored files no row names (a crash
    between writing a file and its row, a delete that failed). Returns (rows, stray files)."""
    cutoff = timezone.now() - UNSENT_GRACE
    rows = 0
    for attachment in Attachment.objects.filter(conversation__isnull=True, created__lt=cutoff).iterator():
        attachment.delete()
        rows += 1
    stray = 0
    storage = files.attachment_storage()
    for folder in storage.listdir("")[0]:
        names = [f"{folder}/{name}" for name in storage.listdir(folder)[1]]
        known = set(Attachment.objects.filter(file__in=names).values_list("file", flat=True))
        for name in names:
            # Young files may belong to an upload whose row is being written right now.
            if name not in known and storage.get_modified_time(name) < cutoff:
                files.delete(name)
                stray += 1
    return rows, stray
