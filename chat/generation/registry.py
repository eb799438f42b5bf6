"""The process's running answers: by conversation, by message, by user, and the claims
that keep two requests from starting the same answer twice."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable

from django.conf import settings

from chat.generation.job import Job, Sink
from chat.generation.task import Generation
from chat.models import Reason


class Registry:
    def __init__(self) -> None:
        self._by_conversation: dict[uuid.UUID, Generation] = {}
        self._by_message: dict[uuid.UUID, Generation] = {}
        self._per_user: dict[int, int] = {}
        # Conversations claimed between a send's checks and its start (see reserve()).
        self._reserved: dict[uuid.UUID, int] = {}
        # Client ids in flight: a second request with the same one waits for the first.
        self._claims: dict[tuple[int, uuid.UUID], asyncio.Future[None]] = {}
        self._starting = 0  # admitted, not yet started (see take_capacity)
        self._lock = threading.Lock()
        # False once shutdown begins: new answers are refused instead of being cut short.
        self.accepting = True

    # --- counts for admission -----------------------------------------------------------
    def active_count(self) -> int:
        return len(self._by_message)

    def take_capacity(self, limit: int) -> bool:
        """A place among the process's answers for one about to start (from any thread).

        Running answers and admitted ones not yet started both count, so a burst of sends
        checked in parallel cannot all slip under the limit.
        """
        with self._lock:
            if len(self._by_message) + self._starting >= limit:
                return False
            self._starting += 1
            return True

    def give_back_capacity(self) -> None:
        with self._lock:
            self._starting -= 1

    def user_count(self, user_id: int) -> int:
        return self._per_user.get(user_id, 0)

    # --- claims ---------------------------------------------------------------------------
    def is_busy(self, conversation_id: uuid.UUID, user_id: int) -> bool:
        """Busy for its owner only: anyone else must learn nothing about the conversation."""
        generation = self._by_conversation.get(conversation_id)
        owner = generation.user_id if generation else self._reserved.get(conversation_id)
        return owner == user_id

    def reserve(self, conversation_id: uuid.UUID, user_id: int) -> bool:
        """Claim a conversation before the database write, so two sends cannot both start."""
        if self.is_busy(conversation_id, user_id):
            return False
        self._reserved.setdefault(conversation_id, user_id)
        return True

    def release(self, conversation_id: uuid.UUID, user_id: int) -> None:
        if self._reserved.get(conversation_id) == user_id:
            del self._reserved[conversation_id]

    def in_flight(self, user_id: int, client_id: uuid.UUID) -> asyncio.Future[None] | None:
        """Done when the request that holds this client id has saved (or given up)."""
        return self._claims.get((user_id, client_id))

    def claim_client_id(self, user_id: int, client_id: uuid.UUID) -> Callable[[], None]:
        """Hold a client id while its request is checked and saved; returns the release.

        The database's unique constraints stop a duplicate row, but only after the upstream
        call has started; two tabs resending the same message at once must not pay for two.
        """
        key = (user_id, client_id)
        claim: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._claims[key] = claim

        def release() -> None:
            if not claim.done():
                claim.set_result(None)
            if self._claims.get(key) is claim:
                del self._claims[key]

        return release

    # --- running answers ----------------------------------------------------------------
    def running(self) -> list[Generation]:
        return list(self._by_message.values())

    def get_by_message(self, message_id: uuid.UUID) -> Generation | None:
        return self._by_message.get(message_id)

    def get_by_conversation(self, conversation_id: uuid.UUID) -> Generation | None:
        return self._by_conversation.get(conversation_id)

    def start(
        self, job: Job, sink: Sink, on_start: Callable[[], None] | None = None, on_end: Callable[[], None] | None = None
    ) -> Generation:
        """Run the job. `on_start` once it counts as running; `on_end` (sync, may do I/O: it runs
        on a worker thread) when it has ended."""
        generation = Generation(job, sink)
        generation.on_end = on_end
        self._reserved.pop(job.conversation_id, None)
        self._by_conversation[job.conversation_id] = generation
        self._by_message[job.message_id] = generation
        self._per_user[job.user_id] = self._per_user.get(job.user_id, 0) + 1
        if on_start is not None:
            on_start()
        generation.task = asyncio.create_task(self._run(generation), name=f"generation-{job.message_id}")
        # An admin cap on one answer's length in time: a runaway stream cannot hold a slot forever.
        generation.time_limit = asyncio.get_running_loop().call_later(
            settings.PARLEY_MAX_GENERATION_SECONDS, self.stop, job.user_id, job.conversation_id, Reason.TIME_LIMIT
        )
        return generation

    async def _run(self, generation: Generation) -> None:
        try:
            await generation.run()
        finally:
            generation.sink.closed()
            if generation.on_end is not None:
                asyncio.get_running_loop().run_in_executor(None, generation.on_end)
            if generation.time_limit is not None:
                generation.time_limit.cancel()
            self._by_conversation.pop(generation.conversation_id, None)
            self._by_message.pop(generation.message_id, None)
            left = self._per_user.get(generation.user_id, 1) - 1
            if left > 0:
                self._per_user[generation.user_id] = left
            else:
                self._per_user.pop(generation.user_id, None)

    def stop(self, user_id: int, conversation_id: uuid.UUID, reason: str = Reason.STOPPED) -> bool:
        generation = self._by_conversation.get(conversation_id)
        if generation is None or generation.user_id != user_id or generation.task is None:
            return False
        generation.cancel_reason = Reason(reason)
        generation.task.cancel()
        return True

    async def shutdown(self, grace: float = 5.0) -> None:
        """Save every running answer as incomplete (server_restart) within `grace` seconds."""
        tasks = []
        for generation in list(self._by_message.values()):
            if generation.task is not None:
                generation.cancel_reason = Reason.SERVER_RESTART
                generation.task.cancel()
                tasks.append(generation.task)
        if tasks:
            await asyncio.wait(tasks, timeout=grace)
