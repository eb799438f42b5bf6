"""Several Parley processes behind one load balancer: what they share, through Redis.

Each process keeps its own hub and registry, and the load balancer keeps one browser's
sockets on one process (a consistent hash of the session cookie), so the common case
stays in-process and costs nothing here. Redis carries only what must cross:

- **ownership**: which process runs which answer (`owner:<conversation>`, `owner-msg:<message>`),
  with leases the owner renews with its heartbeat (`worker:<id>`) every LEASE/3 seconds;
- **presence**: which processes hold sockets of a user (`presence:<user>`), so an owner
  forwards that user's frames — already coalesced, batched per FLUSH — only to them;
- **routing**: Stop and resume for an answer owned elsewhere go to its owner's channel;
- **broadcasts**: the catalogue changed (drop cached copies), sessions changed (check now).

A process that dies stops renewing: chat.janitor in the others notices within seconds and
saves its answers as incomplete. Redis going away degrades rather than fails: answers keep
streaming to the owner's own sockets and are saved, frames for other processes are
dropped (their sockets resume later), new sends are refused until ownership can be
recorded again, and everything resumes by itself when Redis is back.

Off unless PARLEY_CLUSTER (on by default when REDIS_URL is set): `make run` never touches it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import time
import uuid
from collections import defaultdict
from typing import Any

from django.conf import settings

from chat.generation import hub, registry

log = logging.getLogger(__name__)

LEASE = 6  # seconds a heartbeat or an ownership record lives without renewal
FLUSH = 0.01  # frames for other processes wait this long to travel together
PRESENCE_FRESH = 1.0  # seconds an owner trusts what it knows of a user's other processes


# A Redis command for one pipeline: its name, arguments and keyword arguments.
Command = tuple[str, tuple[Any, ...], dict[str, Any]]


class Unavailable(Exception):
    """Redis cannot record ownership now: a new answer must not start."""


class Cluster:
    def __init__(self, url: str, prefix: str, worker_id: str) -> None:
        import redis.asyncio as redis

        self.url, self.prefix, self.worker_id = url, f"{prefix}:cluster", worker_id
        # Connects lazily, on first use, in the loop that uses it.
        # Named, so CLIENT LIST in Redis shows which process holds which connections.
        self.redis: Any = redis.Redis.from_url(
            url, socket_connect_timeout=2, socket_timeout=2, client_name=f"parley:{worker_id}"
        )
        self.reachable_since: float | None = None
        self.local_users: dict[int, int] = defaultdict(int)  # user → sockets in this process
        self._remote: dict[int, tuple[frozenset[str], float]] = {}  # user → (other workers, when)
        self._outgoing: dict[str, list[tuple[int, str]]] = defaultdict(list)
        self._flusher: asyncio.TimerHandle | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._resumes: dict[tuple[int, str], asyncio.Future[None]] = {}
        self._batch: list[tuple[tuple[Command, ...], asyncio.Future[list[Any]]]] = []
        self.forwarded = 0  # frames sent to other processes (for the bench)
        self.loop: asyncio.AbstractEventLoop | None = None

    # ---- keys ------------------------------------------------------------------------
    def key(self, *parts: object) -> str:
        return ":".join([self.prefix, *map(str, parts)])

    def channel(self, worker: str) -> str:
        return self.key("to", worker)

    @property
    def reachable(self) -> bool:
        return self.reachable_since is not None

    # ---- life -------------------------------------------------------------------------
    async def start(self) -> None:
        self.loop = loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._listen(), name="cluster-listen"),
            loop.create_task(self._heartbeat(), name="cluster-heartbeat"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                await task
        if self.redis is not None:
            with contextlib.suppress(Exception):
                await self.redis.delete(self.key("worker", self.worker_id))
            with contextlib.suppress(Exception):
                await self.redis.aclose()

    def _lost(self, exc: BaseException) -> None:
        if self.reachable_since is not None:
            log.warning("Redis unreachable (%s): this process carries on alone until it is back", exc)
        self.reachable_since = None

    def _found(self) -> None:
        if self.reachable_since is None:
            log.info("Redis reachable: sharing ownership and frames with the other processes")
            self.reachable_since = time.monotonic()

    async def _listen(self) -> None:
        wait = 0.5
        while True:
            pubsub = None
            try:
                pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
                await pubsub.subscribe(self.channel(self.worker_id), self.key("all"))
                self._found()
                wait = 0.5
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self._handle(json.loads(message["data"]))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._lost(exc)
                await asyncio.sleep(wait)
                wait = min(wait * 2, 5.0)
            finally:
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        await pubsub.aclose()

    async def _heartbeat(self) -> None:
        while True:
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    pipe.set(self.key("worker", self.worker_id), time.time(), ex=LEASE)
                    for generation in registry.running():
                        pipe.expire(self.key("owner", generation.conversation_id), LEASE)
                        pipe.expire(self.key("owner-msg", generation.message_id), LEASE)
                    for user in list(self.local_users):
                        pipe.sadd(self.key("presence", user), self.worker_id)
                        pipe.expire(self.key("presence", user), 3 * LEASE)
                    await pipe.execute()
                self._found()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._lost(exc)
            await asyncio.sleep(LEASE / 3)

    # ---- sockets here ------------------------------------------------------------------
    def socket_opened(self, user_id: int) -> None:
        first = self.local_users[user_id] == 0
        self.local_users[user_id] += 1
        if first:
            self._spawn(self._present(user_id, True))

    def socket_closed(self, user_id: int) -> None:
        left = self.local_users.get(user_id, 1) - 1
        if left > 0:
            self.local_users[user_id] = left
            return
        self.local_users.pop(user_id, None)
        self._spawn(self._present(user_id, False))

    async def _present(self, user_id: int, here: bool) -> None:
        with contextlib.suppress(Exception):
            if here:
                await self.redis.sadd(self.key("presence", user_id), self.worker_id)
                await self.redis.expire(self.key("presence", user_id), 3 * LEASE)
            else:
                await self.redis.srem(self.key("presence", user_id), self.worker_id)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.append(task)
        task.add_done_callback(lambda t: self._tasks.remove(t) if t in self._tasks else None)

    async def batched(self, *commands: Command) -> list[Any]:
        """Run `commands` in one pipeline with every other caller's of this loop pass.

        A burst of sends claims its answers at about the same moment: one at a time, 200
        claims opened 200 connections at once and, on a busy loop, some replies were read
        only after the 2-s socket timeout, refusing those sends. Together they are one round
        trip on one connection. An error fails the whole pipeline's callers alike.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Any]] = loop.create_future()
        self._batch.append((commands, future))
        if len(self._batch) == 1:
            loop.call_soon(lambda: self._spawn(self._run_batch()))
        return await future

    async def _run_batch(self) -> None:
        batch, self._batch = self._batch, []
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for commands, _ in batch:
                    for name, args, kwargs in commands:
                        getattr(pipe, name)(*args, **kwargs)
                results = await pipe.execute()
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        at = 0
        for commands, future in batch:
            if not future.done():
                future.set_result(results[at : at + len(commands)])
            at += len(commands)

    # ---- frames for a user's sockets elsewhere --------------------------------------------
    async def learn_presence(self, user_id: int) -> None:
        """Which other processes hold this user's sockets (asked at an answer's start)."""
        try:
            (members,) = await self.batched(("smembers", (self.key("presence", user_id),), {}))
        except Exception as exc:
            self._lost(exc)
            return
        others = frozenset(m.decode() if isinstance(m, bytes) else m for m in members) - {self.worker_id}
        self._remote[user_id] = (others, time.monotonic())

    def forward(self, user_id: int, text: str) -> None:
        """Queue a frame for the user's sockets on other processes (never blocks, may drop)."""
        known = self._remote.get(user_id)
        if known is None or time.monotonic() - known[1] > PRESENCE_FRESH:
            self._remote[user_id] = (known[0] if known else frozenset(), time.monotonic())
            self._spawn(self.learn_presence(user_id))
        if not known or not known[0] or not self.reachable:
            return
        for worker in known[0]:
            self._outgoing[worker].append((user_id, text))
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().call_later(FLUSH, self._flush)

    def _flush(self) -> None:
        self._flusher = None
        outgoing, self._outgoing = self._outgoing, defaultdict(list)
        for worker, frames in outgoing.items():
            self.forwarded += len(frames)
            self._send(worker, {"op": "frames", "frames": frames})

    def _send(self, worker: str, message: dict[str, Any]) -> None:
        self._spawn(self._publish(self.channel(worker), message))

    async def _publish(self, channel: str, message: dict[str, Any]) -> None:
        try:
            await self.redis.publish(channel, json.dumps(message, separators=(",", ":")))
        except Exception as exc:
            self._lost(exc)

    def broadcast(self, op: str, **fields: Any) -> None:
        """From any thread (signals fire in request threads)."""
        message = {"op": op, "from": self.worker_id, **fields}
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(lambda: self._spawn(self._publish(self.key("all"), message)))

    # ---- what other processes tell this one ---------------------------------------------------
    def _handle(self, message: dict[str, Any]) -> None:
        op = message.get("op")
        if op == "frames":
            for user_id, text in message["frames"]:
                hub.publish_text(int(user_id), text)
                if '"replace":true' in text or text.startswith('{"type":"end"'):
                    for key in [k for k in self._resumes if k[0] == int(user_id)]:
                        future = self._resumes.pop(key)
                        if not future.done():
                            future.set_result(None)
        elif op == "stop":
            registry.stop(int(message["user"]), uuid.UUID(message["conversation"]), message.get("reason", "stopped"))
        elif op == "resume":
            self._answer_resume(message)
        elif op == "catalog" and message.get("from") != self.worker_id:
            from chat import budgets, catalog_cache

            catalog_cache.clear()
            budgets.clear()
        elif op == "sessions" and message.get("from") != self.worker_id:
            from chat import revocation

            revocation.watch.check_soon()

    def _answer_resume(self, message: dict[str, Any]) -> None:
        generation = registry.get_by_message(uuid.UUID(message["message"]))
        user_id = int(message["user"])
        if generation is None or generation.user_id != user_id:
            return
        frames = [generation.catch_up().json()]
        if generation.end_frame is not None:
            frames.append(generation.end_frame.json())
        self._send(message["from"], {"op": "frames", "frames": [[user_id, f] for f in frames]})

    # ---- ownership ------------------------------------------------------------------------
    async def claim(self, user_id: int, conversation_id: uuid.UUID, message_id: uuid.UUID) -> None:
        """Record that this process owns the answer (before any upstream call), or Unavailable."""
        record = json.dumps({"worker": self.worker_id, "message": str(message_id), "user": user_id})
        try:
            await self.batched(
                ("set", (self.key("owner", conversation_id), record), {"ex": LEASE}),
                ("set", (self.key("owner-msg", message_id), self.worker_id), {"ex": LEASE}),
            )
        except Exception as exc:
            self._lost(exc)
            raise Unavailable from exc
        await self.learn_presence(user_id)

    def release(self, conversation_id: uuid.UUID, message_id: uuid.UUID) -> None:
        async def forget() -> None:
            with contextlib.suppress(Exception):
                await self.redis.delete(self.key("owner", conversation_id), self.key("owner-msg", message_id))

        self._spawn(forget())

    async def owner_of_conversation(self, conversation_id: uuid.UUID) -> tuple[str, int] | None:
        try:
            raw = await self.redis.get(self.key("owner", conversation_id))
        except Exception as exc:
            self._lost(exc)
            return None
        if raw is None:
            return None
        record = json.loads(raw)
        return str(record["worker"]), int(record["user"])

    async def route_stop(self, user_id: int, conversation_id: uuid.UUID, reason: str = "stopped") -> bool:
        """Ask the owner elsewhere to stop; False if no other process owns it."""
        owner = await self.owner_of_conversation(conversation_id)
        if owner is None or owner[0] == self.worker_id or owner[1] != user_id:
            return False
        await self._publish(self.channel(owner[0]), {
            "op": "stop", "user": user_id, "conversation": str(conversation_id), "reason": reason,
        })
        return True

    async def route_resume(self, user_id: int, message_id: uuid.UUID, wait: float = 2.0) -> bool:
        """Ask the owner elsewhere for the answer so far; True once its reply has arrived here."""
        try:
            raw = await self.redis.get(self.key("owner-msg", message_id))
        except Exception as exc:
            self._lost(exc)
            return False
        worker = raw.decode() if isinstance(raw, bytes) else raw
        if not worker or worker == self.worker_id:
            return False
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._resumes[(user_id, str(message_id))] = future
        await self._publish(self.channel(worker), {
            "op": "resume", "user": user_id, "message": str(message_id), "from": self.worker_id,
        })
        try:
            await asyncio.wait_for(future, wait)
        except TimeoutError:
            self._resumes.pop((user_id, str(message_id)), None)
            return False  # the owner did not answer (it may just have died): the database will
        return True

    async def alive(self, workers: set[str]) -> set[str] | None:
        """Which of these processes still renew their heartbeat; None if Redis cannot say."""
        if not workers:
            return set()
        ordered = sorted(workers)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for worker in ordered:
                    pipe.exists(self.key("worker", worker))
                answers = await pipe.execute()
        except Exception as exc:
            self._lost(exc)
            return None
        return {worker for worker, found in zip(ordered, answers, strict=True) if found}


def new_worker_id() -> str:
    return f"{os.getpid()}-{secrets.token_hex(3)}"


# The process's cluster, once `manage.py serve` has started it; None in one-process mode.
current: Cluster | None = None


def enabled() -> bool:
    return current is not None


def configure() -> Cluster | None:
    """At start-up, before serving: this process's place in the cluster (None when alone).

    Synchronous, so the process has its name before the first socket arrives; `start()`
    then connects, on the server's loop.
    """
    global current
    if not settings.PARLEY_CLUSTER or not settings.REDIS_URL:
        return None
    current = Cluster(settings.REDIS_URL, settings.PARLEY_CACHE_PREFIX, settings.PARLEY_WORKER_ID or new_worker_id())
    hub.relay = current.forward  # frames for this user's sockets in other processes too
    return current


def broadcast_catalog() -> None:
    if current is not None:
        current.broadcast("catalog")


def broadcast_sessions() -> None:
    if current is not None:
        current.broadcast("sessions")


def worker_id() -> str:
    """This process's name in the cluster ("" in one-process mode)."""
    return current.worker_id if current is not None else ""
