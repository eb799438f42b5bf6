"""Answers whose process died: found by the others within seconds, saved as incomplete.

Every answer records the process that runs it (`Message.worker`). Every process, every
CHECK_EVERY seconds, looks for answers still `streaming` under another process's name,
asks Redis which of those processes still renew their heartbeat (chat.cluster), and marks
the answers of the dead ones `incomplete`/`server_restart`, keeping their last checkpoint.
The users' open tabs get the saved text and the `end` at once, and see Continue.

It judges nobody while Redis is unreachable, nor for a lease's length after Redis comes
back: a restarted Redis has forgotten every heartbeat, and the living need a moment to
renew theirs. Several processes may mark the same answer: the update is conditional and
the frames say the same thing twice at worst.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from channels.db import database_sync_to_async
from django.utils import timezone

from chat import cluster, protocol
from chat.generation import hub
from chat.models import Message, Reason, Status
from chat.serializers import message_json

log = logging.getLogger(__name__)

CHECK_EVERY = 2.0


def _streaming_workers(me: str) -> set[str]:
    return set(
        Message.objects.filter(status=Status.STREAMING).exclude(worker__in=("", me))
        .values_list("worker", flat=True).distinct()
    )


def do_recover_worker(worker: str) -> list[tuple[int, dict[str, Any]]]:
    """Mark a dead process's answers incomplete; (owner, message JSON) of each one marked."""
    ids = list(Message.objects.filter(status=Status.STREAMING, worker=worker).values_list("id", flat=True))
    if not ids:
        return []
    Message.objects.filter(id__in=ids, status=Status.STREAMING, worker=worker).update(
        status=Status.INCOMPLETE, reason=Reason.SERVER_RESTART, updated=timezone.now()
    )
    rows = Message.objects.filter(id__in=ids).select_related("conversation")
    return [(m.conversation.owner_id, message_json(m)) for m in rows]


async def sweep(c: cluster.Cluster) -> int:
    """One pass; how many answers were recovered."""
    if c.reachable_since is None or time.monotonic() - c.reachable_since < cluster.LEASE + 1:
        return 0
    workers = await database_sync_to_async(_streaming_workers, thread_sensitive=False)(c.worker_id)
    alive = await c.alive(workers)
    if alive is None:
        return 0
    recovered = 0
    for dead in workers - alive:
        marked = await database_sync_to_async(do_recover_worker)(dead)
        if marked:
            log.warning("process %s stopped renewing its lease: %d answer(s) saved as incomplete", dead, len(marked))
        for owner, message in marked:
            for frame in protocol.saved_answer(message):
                hub.publish(owner, frame)
        recovered += len(marked)
    return recovered


async def run(c: cluster.Cluster) -> None:
    while True:
        await asyncio.sleep(CHECK_EVERY)
        try:
            await sweep(c)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("the janitor's pass failed; trying again shortly")
