"""Every write of the answer path: what an answer starts with, checkpoints, final states.

All writes are per message, never per token, and writes that fall due together are
committed together: a hundred sends arriving at once, or a hundred answers reaching
their checkpoint in the same moment, cost a few transactions on the one database thread
instead of a hundred (`Batch`). If a batch fails, its items are written one by one, so
one bad item (a conversation deleted meanwhile) never costs the others their save.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from channels.db import database_sync_to_async
from django.db import IntegrityError, OperationalError, transaction
from django.utils import timezone

from chat import sql
from chat.generation.job import Outcome
from chat.models import Attachment, Conversation, Message, Reason, Status, UsageRecord

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")


def with_db_retry(fn: Callable[[], T], *, attempts: int = 6, first_wait: float = 0.05) -> T:
    """Retry a write that failed because the database was briefly locked or unreachable.

    Callers never report success for a write that did not happen: the last error is raised.
    """
    wait = first_wait
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except OperationalError as exc:
            if attempt == attempts:
                raise
            log.warning("database write failed (%s), retry %d in %.2fs", exc, attempt, wait)
            time.sleep(wait)
            wait = min(wait * 2, 2.0)
    raise AssertionError("unreachable")


class _Pending(Generic[T, R]):
    def __init__(self) -> None:
        self.items: list[tuple[T, asyncio.Future[R]]] = []
        self.task: asyncio.Task[None] | None = None


class Batch(Generic[T, R]):
    """Group commit: what is submitted while a batch is being written goes in the next one.

    `write_one` is synchronous ORM code; it runs inside the batch's transaction (nested
    atomic blocks become savepoints), or alone in its own if the batch failed. `write_all`,
    if given, writes a whole batch at once instead (statements shared across its items).
    Without `transactional`, items are simply run one after another on the database thread,
    each failing on its own: one hop for a burst of reads instead of one per read.
    """

    def __init__(
        self, write_one: Callable[[T], R], *, write_all: Callable[[list[T]], list[R]] | None = None,
        transactional: bool = True,
    ) -> None:
        self.write_one = write_one
        self.write_all = write_all
        self.transactional = transactional
        # Tasks belong to one event loop; tests and management commands run several.
        self._pending: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Pending[T, R]] = (
            weakref.WeakKeyDictionary()
        )

    def busy(self) -> bool:
        """A batch is being written or waits (in this loop)."""
        pending = self._pending.get(asyncio.get_running_loop())
        return pending is not None and (pending.task is not None or bool(pending.items))

    def backlog(self) -> int:
        """Items waiting for the next batch in this loop (a burst is under way when high)."""
        pending = self._pending.get(asyncio.get_running_loop())
        return len(pending.items) if pending is not None else 0

    async def submit(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        pending = self._pending.get(loop)
        if pending is None:
            pending = self._pending[loop] = _Pending()
        future: asyncio.Future[R] = loop.create_future()
        pending.items.append((item, future))
        if pending.task is None:
            pending.task = loop.create_task(self._drain(pending))
        # Shielded: a caller cancelled while waiting does not cancel the write it asked for.
        return await asyncio.shield(future)

    async def _drain(self, pending: _Pending[T, R]) -> None:
        try:
            while pending.items:
                batch, pending.items = pending.items, []
                try:
                    results = await database_sync_to_async(self._write_many)([item for item, _ in batch])
                except BaseException as exc:
                    results = [exc] * len(batch)
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done():
                        continue
                    if isinstance(result, BaseException):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            pending.task = None
            for _, future in pending.items:  # only if this task itself was cancelled
                if not future.done():
                    future.set_exception(asyncio.CancelledError())
            pending.items = []

    def _write_many(self, items: list[T]) -> list[R | BaseException]:
        if not self.transactional:
            return [self._run(item) for item in items]
        if len(items) > 1:
            try:
                def together() -> list[R]:
                    with transaction.atomic():
                        if self.write_all is not None:
                            return self.write_all(items)
                        return [self.write_one(item) for item in items]

                return list(with_db_retry(together))
            except Exception as exc:
                log.info("a batch of %d writes failed (%s); writing them one by one", len(items), exc)
        out: list[R | BaseException] = []
        for item in items:
            try:
                out.append(with_db_retry(lambda item=item: self._alone(item)))  # type: ignore[misc]
            except Exception as exc:
                out.append(exc)
        return out

    def _run(self, item: T) -> R | BaseException:
        try:
            return self.write_one(item)
        except Exception as exc:
            return exc

    def _alone(self, item: T) -> R:
        with transaction.atomic():
            return self.write_one(item)


# ---- what an answer starts with -----------------------------------------------------------

@dataclasses.dataclass
class NewAnswer:
    """The rows a send, regenerate or continue starts with, checked but not yet written.

    `user_message` is new (a send) or already saved (regenerate, continue); `assistant` is
    new, or for a continue the saved answer that grows (`continues`).
    """

    owner: Any
    conversation: Conversation
    is_new_conversation: bool
    user_message: Message
    assistant: Message
    new_user_message: bool = True
    continues: bool = False
    attachment_ids: tuple[uuid.UUID, ...] = ()  # uploads the user message brings (issue 16)


def _claim_attachments(starts: list[NewAnswer]) -> None:
    """Uploads sent with a message join its conversation (and go when it is purged)."""
    for s in starts:
        if s.attachment_ids:
            Attachment.objects.filter(id__in=s.attachment_ids, owner=s.owner, conversation__isnull=True).update(
                conversation=s.conversation.id
            )


def save_answer_start(start: NewAnswer) -> None:
    """Write what an answer starts with. IntegrityError means its client id was saved before."""
    conversation = start.conversation
    now = timezone.now()
    with transaction.atomic():
        if start.is_new_conversation:
            sql.insert([conversation])
        else:
            sql.update(Conversation, {"id": conversation.id}, model=conversation.model_id, updated=now)
        if start.continues:
            sql.update(
                Message, {"id": start.assistant.id}, status=Status.STREAMING, reason="", error_kind="",
                error_message="", error_ref="", worker=start.assistant.worker, updated=now,
            )
            start.assistant.status = Status.STREAMING
        elif start.new_user_message:
            sql.insert([start.user_message, start.assistant])
        else:
            sql.insert([start.assistant])
        _claim_attachments([start])


def _start_or_error(start: NewAnswer) -> Exception | None:
    try:
        save_answer_start(start)
    except IntegrityError as exc:
        return exc  # a resend (or a race): the caller looks up what was saved first
    return None


def save_answer_starts(starts: list[NewAnswer]) -> list[Exception | None]:
    """A batch of starts with one statement per kind of row (the caller's transaction).

    Any clash fails the whole batch, which is then written one start at a time so the
    clash is found and answered on its own (`_start_or_error`).
    """
    now = timezone.now()
    sql.insert([s.conversation for s in starts if s.is_new_conversation])
    sql.update_rows(Conversation, ("model", "updated"), ("id",),
                    [(s.conversation.model_id, now, s.conversation.id) for s in starts if not s.is_new_conversation])
    sql.update_rows(
        Message, ("status", "reason", "error_kind", "error_message", "error_ref", "worker", "updated"), ("id",),
        [(Status.STREAMING, "", "", "", "", s.assistant.worker, now, s.assistant.id) for s in starts if s.continues],
    )
    rows: list[Message] = []
    for s in starts:
        if s.continues:
            s.assistant.status = Status.STREAMING
        elif s.new_user_message:
            rows += [s.user_message, s.assistant]
        else:
            rows.append(s.assistant)
    sql.insert(rows)
    _claim_attachments(starts)
    return [None] * len(starts)


answer_starts: Batch[NewAnswer, Exception | None] = Batch(_start_or_error, write_all=save_answer_starts)

# The reads a send is checked with, run back to back on the database thread: a burst of
# sends costs a few thread hops, not one each, and no GIL fight among worker threads.
checks: Batch[Callable[[], Any], Any] = Batch(lambda check: check(), transactional=False)


# ---- checkpoints and final states ------------------------------------------------------------

def do_checkpoint(message_id: uuid.UUID, content: str, reasoning: str, seq: int) -> None:
    """Save partial text so a crash loses at most one checkpoint interval."""
    sql.update(
        Message, {"id": message_id, "status": Status.STREAMING},
        content=content, reasoning=reasoning, seq=seq, updated=timezone.now(),
    )


checkpoints: Batch[tuple[uuid.UUID, str, str, int], None] = Batch(lambda item: do_checkpoint(*item))
_checkpoint_tasks: set[asyncio.Task[None]] = set()


def checkpoint_later(message_id: uuid.UUID, content: str, reasoning: str, seq: int) -> None:
    """Queue a checkpoint; the batch it joins is written when the database thread is free."""

    async def write() -> None:
        try:
            await checkpoints.submit((message_id, content, reasoning, seq))
        except Exception:
            # A missed checkpoint only widens what a crash could lose; the final write retries.
            log.exception("checkpoint of message %s failed", message_id)

    task = asyncio.get_running_loop().create_task(write())
    _checkpoint_tasks.add(task)
    task.add_done_callback(_checkpoint_tasks.discard)


def do_finish_message(
    message_id: uuid.UUID, conversation_id: uuid.UUID, outcome: Outcome, usage: UsageRecord | None = None
) -> None:
    """Write an answer's final state and its usage record, in one transaction (the caller's or its own)."""
    now = timezone.now()
    with transaction.atomic():
        sql.update(Message, {"id": message_id}, updated=now, **dataclasses.asdict(outcome))
        sql.update(Conversation, {"id": conversation_id}, updated=now)
        if usage is not None:
            sql.insert([usage])


finishes: Batch[tuple[uuid.UUID, uuid.UUID, Outcome, UsageRecord | None], None] = Batch(
    lambda item: do_finish_message(*item)
)


def _insert_usage(records: list[UsageRecord]) -> list[None]:
    sql.insert(records)
    return [None] * len(records)


# Usage records of answers that keep no message (API calls not saved as conversations).
usage_records: Batch[UsageRecord, None] = Batch(lambda record: _insert_usage([record])[0], write_all=_insert_usage)


def do_recover_orphans(me: str | None = None) -> int:
    """Mark answers left `streaming` by a process that died as incomplete.

    Run at start-up, before this process serves anything. With several processes (`me` is
    this one's name) only answers nobody claimed and this name's own from a previous life
    (a fresh process owns nothing yet): the others' belong to the living or to chat.janitor.
    """
    streaming = Message.objects.filter(status=Status.STREAMING)
    if me is not None:
        streaming = streaming.filter(worker__in=("", me))
    return streaming.update(status=Status.INCOMPLETE, reason=Reason.SERVER_RESTART, updated=timezone.now())
