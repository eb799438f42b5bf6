"""The chat socket as a caller of the generation core: commands in, jobs and sinks out.

A `send`, `regenerate` or `continue` has its client id claimed, is checked and built (reads
only, `prepare_*`), admitted (chat.admission: limits and budgets), and handed to the
registry as a Job with a ChatSink. The sink saves the rows while the upstream call already
runs, answers `ack` once they are saved, fans every frame out to the user's sockets, and
writes the answer's usage record with its final state.

Resends — the same client id again, after a lost ack or from a second tab at the same
moment — are recognised in one place, `find_resend`, and answered with the same ack and
the answer as it stands, never with a second upstream call.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
import uuid
from collections.abc import Callable
from typing import Any

from channels.db import database_sync_to_async
from django.contrib.auth.models import User
from django.db import IntegrityError

from chat import admission, budgets, cluster, history, metering, protocol, response_cache, sql, store, titles
from chat.access import ModelUnavailable, NotFound, access_conversation, access_message, access_model_entry
from chat.attachments import parts  # issue 16: files with a send
from chat.generation import Job, Outcome, hub, registry
from chat.generation.hub import Deliver
from chat.models import ChatModel, Conversation, Message, Reason, Role, Source, Status, TitleSource, UserPreferences
from chat.protocol import AFTER_NEWEST, Frame, FrameError, Options
from chat.serializers import conversation_json, message_json
from providers.base import ChatMessage, ChatRequest, Target

log = logging.getLogger(__name__)

TITLE_CHARS = 60
CONTINUE_PROMPT = "Continue your previous answer exactly where it stopped. Do not repeat any of it."
# How long a request waits for another request with the same client id to save.
CLAIM_WAIT_SECONDS = 10.0
# Saves waiting for their batch beyond which a new answer holds its upstream call until the
# saves are done (at most BURST_HOLD_SECONDS): under a burst acks come first; alone, the
# save and the upstream call overlap.
BURST_BACKLOG = 4
BURST_HOLD_SECONDS = 0.5


@dataclasses.dataclass
class Posted:
    """A saved send. ``duplicate`` means the client id was seen before."""

    conversation: Conversation
    user_message: Message
    assistant: Message | None
    duplicate: bool


@dataclasses.dataclass
class Prepared:
    """A command checked and built, not yet written: the rows and what to ask upstream."""

    start: store.NewAnswer
    model: ChatModel  # from the catalogue, with its provider: what the answer is metered against
    target: Target
    request: ChatRequest
    client_id: uuid.UUID
    cache: response_cache.Plan = response_cache.OFF

    @property
    def family(self) -> str:
        return self.model.provider.family

    def job(self, user_id: int, received_at: float) -> Job:
        assistant = self.start.assistant
        continues = self.start.continues
        return Job(
            user_id=user_id, conversation_id=self.start.conversation.id, message_id=assistant.id,
            family=self.family, target=self.target, request=self.request, received_at=received_at,
            prefix=assistant.content if continues else "",
            prefix_reasoning=assistant.reasoning if continues else "",
            seq_base=assistant.seq if continues else 0,
            cached=self.cache.hit,
        )


# ---- resends ---------------------------------------------------------------------------

def find_resend(user: User, client_id: uuid.UUID, conversation_id: object = None) -> Posted | None:
    """What an earlier request with this client id saved, or None: the one resend check.

    A send's client id is on its user message (and on the conversation it created); a
    regenerate's is on its new answer.
    """
    if conversation_id:
        conversation = access_conversation(user, conversation_id)
    else:
        # Every new conversation asks this, and almost always finds nothing: a bare probe first.
        probe = sql.select_one(
            f"SELECT {sql.column(Conversation, 'id')} FROM {sql.table(Conversation)} WHERE "
            f"{sql.column(Conversation, 'owner')} = %s AND {sql.column(Conversation, 'client_id')} = %s "
            f"AND {sql.column(Conversation, 'deleted_at')} IS NULL",
            [user.pk, sql.prep(Conversation, "client_id", client_id)],
        )
        if probe is None:
            return None
        conversation = Conversation.objects.get(id=probe[0] if isinstance(probe[0], uuid.UUID) else uuid.UUID(probe[0]))
    earlier = Message.objects.filter(conversation=conversation, client_id=client_id).first()
    if earlier is None:
        return None
    if earlier.role == Role.USER:
        answer = (
            Message.objects.filter(conversation=conversation, parent=earlier, role=Role.ASSISTANT)
            .order_by("created").first()
        )
        return Posted(conversation, earlier, answer, duplicate=True)
    question = Message.objects.get(id=earlier.parent_id)  # type: ignore[misc]  # an answer always has its question
    return Posted(conversation, question, earlier, duplicate=True)


def replay(posted: Posted, client_id: object) -> list[Frame]:
    """A resend's answer: the same `ack`, then the answer as it stands (live if still running)."""
    out = [protocol.ack(client_id, conversation_json(posted.conversation), message_json(posted.user_message))]
    if posted.assistant is None:
        return out
    answer = message_json(posted.assistant)
    frames = protocol.AnswerFrames(posted.conversation.id, posted.assistant.id)
    generation = registry.get_by_message(posted.assistant.id)
    if generation is not None:
        out += [frames.start(answer), generation.catch_up()]
    else:
        out += [frames.start(answer), *protocol.saved_answer(answer, with_text=False)]
    return out


# ---- checking and building (reads only) ---------------------------------------------------

def _new_answer(conversation: Conversation, parent: Message, model: ChatModel, client_id: uuid.UUID | None) -> Message:
    return Message(
        id=uuid.uuid4(), conversation=conversation, parent=parent, role=Role.ASSISTANT,
        status=Status.STREAMING, model=model, model_name=model.name, client_id=client_id,
        worker=cluster.worker_id(),
    )


def prepare_send(user: User, command: protocol.Send) -> Prepared | Posted:
    """Check access and build the request; a known client id returns what it saved.

    A resend is caught here, before any upstream call (calls cost money); the unique
    constraints catch the rare true race at save time.
    """
    entry = access_model_entry(user, command.model)
    model = entry.model
    options = command.options
    found = find_resend(user, command.client_id, command.conversation)
    if found is not None:
        return found
    # Attachments (issue 16): the sender's files, checked for this model before any call.
    attached = parts.for_send(user, command.attachments, command.conversation, model) if command.attachments else []
    if command.conversation:
        conversation = access_conversation(user, command.conversation)
        all_rows = history.rows(conversation)
        if command.parent == AFTER_NEWEST:
            parent_id = next(reversed(all_rows)) if all_rows else None
        elif command.parent is None:
            parent_id = None
        else:
            parent_id = uuid.UUID(command.parent)
            if parent_id not in all_rows:
                raise NotFound("No such message in this conversation.")
        path = history.branch(all_rows, parent_id)
        is_new = False
    else:
        system = options.system
        if system is None:
            row = sql.select_one(
                f"SELECT {sql.column(UserPreferences, 'default_system_prompt')} FROM {sql.table(UserPreferences)} "
                f"WHERE {sql.column(UserPreferences, 'user')} = %s", [user.pk],
            )
            system = row[0] if row else ""
        opening = command.content if command.content.strip() else ", ".join(a.name for a in attached)
        conversation = Conversation(
            owner=user, client_id=command.client_id, title=" ".join(opening.split())[:TITLE_CHARS],
            system_prompt=system, temperature=options.temperature, max_tokens=options.max_tokens,
        )
        parent_id, path, is_new = None, [], True
    conversation.model = model
    turns = [*history.turns(conversation, path, model), ChatMessage("user", command.content, parts.of(attached, model))]
    user_message = Message(
        id=uuid.uuid4(), conversation=conversation, parent_id=parent_id, role=Role.USER,
        content=command.content, status=Status.COMPLETE, client_id=command.client_id,
        attachments=parts.summaries(attached),
    )
    answer = _new_answer(conversation, user_message, model, None)
    attachment_ids = tuple(a.id for a in attached)
    start = store.NewAnswer(user, conversation, is_new, user_message, answer, attachment_ids=attachment_ids)
    request = history.request(model, turns, options, conversation)
    return Prepared(start, model, entry.target, request, command.client_id, response_cache.plan(user, model, request))


def prepare_regenerate(user: User, command: protocol.Regenerate) -> Prepared | Posted:
    """A new answer beside an earlier one (same user message): the old one stays a sibling."""
    earlier = access_message(user, command.message)
    conversation = earlier.conversation
    if earlier.role != Role.ASSISTANT or earlier.parent_id is None:
        raise NotFound("Only an answer can be regenerated.")
    found = find_resend(user, command.client_id, conversation.id)
    if found is not None:
        return found
    entry = access_model_entry(user, command.model or earlier.model_id)
    model = entry.model
    user_message = Message.objects.get(id=earlier.parent_id)
    turns = history.turns(conversation, history.branch(history.rows(conversation), user_message.id), model)
    conversation.model = model
    start = store.NewAnswer(
        user, conversation, False, user_message, _new_answer(conversation, user_message, model, command.client_id),
        new_user_message=False,
    )
    request = history.request(model, turns, command.options, conversation)
    # Regenerate asks for a new answer: never the cached one, but the new one is kept.
    cache = response_cache.plan(user, model, request, read=False)
    return Prepared(start, model, entry.target, request, command.client_id, cache)


def prepare_continue(user: User, command: protocol.Continue) -> Prepared:
    """Ask the same model to carry on an answer that stopped early; it grows in place."""
    answer = access_message(user, command.message)
    conversation = answer.conversation
    if answer.role != Role.ASSISTANT or answer.status == Status.STREAMING or not answer.content:
        raise NotFound("Only an answer with some text that has stopped can be continued.")
    if answer.status == Status.COMPLETE and answer.reason != Reason.LENGTH:
        raise NotFound("This answer is finished; regenerate it instead.")
    entry = access_model_entry(user, answer.model_id)
    model = entry.model
    path = history.branch(history.rows(conversation), answer.id)
    turns = [*history.turns(conversation, path, model), ChatMessage("user", CONTINUE_PROMPT)]
    answer.worker = cluster.worker_id()
    start = store.NewAnswer(
        user, conversation, False, Message.objects.get(id=answer.parent_id), answer,  # type: ignore[misc]
        new_user_message=False, continues=True,
    )
    return Prepared(
        start, model, entry.target, history.request(model, turns, Options(), conversation),
        command.client_id,
    )


# ---- the sink --------------------------------------------------------------------------

class ChatSink:
    """Rows in the database, frames to every socket of the user, `ack` once saved."""

    def __init__(self, prepared: Prepared, user: User, reply: Deliver, release: Callable[[], None]) -> None:
        self.prepared = prepared
        self.user = user
        self.user_id: int = user.pk
        self.reply = reply  # the socket that asked: resends and failures are its business only
        self.release = release  # of the client id claim: later requests with it are resends

    async def open(self) -> dict[str, Any] | None:
        try:
            return await self._open()
        finally:
            self.release()

    async def _open(self) -> dict[str, Any] | None:
        start = self.prepared.start
        try:
            clash = await store.answer_starts.submit(start)
        except IntegrityError as exc:
            clash = exc
        except Exception:  # noqa: BLE001 — any other failure is told to the user, not raised
            clash = None
            self._could_not_save()
            return None
        if clash is not None:
            earlier = await database_sync_to_async(self._earlier)()
            if earlier is None:
                self._could_not_save()
                return None
            for frame in replay(earlier, self.prepared.client_id):
                self.reply(frame.json())
            return None
        hub.publish(self.user_id, protocol.ack(
            self.prepared.client_id, conversation_json(start.conversation), message_json(start.user_message)
        ))
        return message_json(start.assistant)

    def _earlier(self) -> Posted | None:
        conversation = None if self.prepared.start.is_new_conversation else self.prepared.start.conversation.id
        try:
            return find_resend(self.user, self.prepared.client_id, conversation)
        except NotFound:
            return None  # the conversation went away (deleted in another tab) before the save

    def _could_not_save(self) -> None:
        ref = secrets.token_hex(4)
        conversation_id = self.prepared.start.conversation.id
        log.exception("could not save the message for conversation %s, ref=%s", conversation_id, ref)
        self.reply(protocol.error(
            "unavailable", f"Parley could not save your message. Try again. (ref {ref})", self.prepared.client_id,
            ref=ref,
        ).json())

    async def before_upstream(self, opened: asyncio.Task[dict[str, Any] | None]) -> None:
        if store.answer_starts.backlog() < BURST_BACKLOG:
            return
        # A burst: ack everyone first. Wait for this save, then for the others queued
        # behind it (boundedly), before httpx's request set-up takes the CPU.
        await asyncio.wait([opened])
        deadline = asyncio.get_running_loop().time() + BURST_HOLD_SECONDS
        # The batch has no event to wait on; 5 ms polls for at most the hold are cheap.
        while store.answer_starts.busy() and asyncio.get_running_loop().time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.005)

    def publish(self, frame: Frame) -> None:
        hub.publish(self.user_id, frame)

    def checkpoint(self, content: str, reasoning: str, seq: int) -> None:
        store.checkpoint_later(self.prepared.start.assistant.id, content, reasoning, seq)

    async def finish(self, outcome: Outcome) -> None:
        start = self.prepared.start
        usage = metering.record(
            self.user, Source.CHAT, self.prepared.model, outcome, message_id=start.assistant.id, cached=outcome.cached
        )
        await store.finishes.submit((start.assistant.id, start.conversation.id, outcome, usage))

    def closed(self) -> None:
        if cluster.current is not None:
            cluster.current.release(self.prepared.start.conversation.id, self.prepared.start.assistant.id)

    def finished(self, outcome: Outcome) -> None:
        conversation = self.prepared.start.conversation
        if outcome.status == Status.COMPLETE and conversation.title_source == TitleSource.FIRST_MESSAGE:
            titles.schedule(conversation.id, self.user_id)  # in the background; never delays an answer
        response_cache.keep_answer(self.prepared.cache, outcome)
        warn_if_near_budget(self.user)


def warn_if_near_budget(user: User) -> None:
    """After an answer: a `budget` frame to the user's tabs once a budget is nearly spent."""
    if budgets.surely_none():
        return

    async def check() -> None:
        try:
            standings = await database_sync_to_async(budgets.standing, thread_sensitive=False)(user)
        except Exception:
            log.exception("could not read the budgets of user %s", user.pk)
            return
        near = [s.as_json() for s in standings if s.fraction >= budgets.WARN_AT]
        if near:
            hub.publish(user.pk, protocol.budget(near))

    task = asyncio.get_running_loop().create_task(check())
    _background.add(task)
    task.add_done_callback(_background.discard)


_background: set[asyncio.Task[None]] = set()


# ---- starting an answer ------------------------------------------------------------------

Prepare = Callable[[], Prepared | Posted]


async def start(
    user: User, client_id: uuid.UUID, conversation: str | None, received_at: float,
    prepare: Prepare, reply: Deliver, check_caller: Callable[[], None] = lambda: None,
) -> None:
    """Claim, check, admit and start one answer for the socket that asked (`reply`).

    `check_caller` runs first, on the same worker thread as `prepare`: the socket re-checks
    its session there (it raises to refuse).
    """
    earlier = registry.in_flight(user.pk, client_id)
    if earlier is not None:
        # The same request from another tab at the same moment: wait for its save, then
        # this one is a resend like any other (prepare finds it and replays).
        await asyncio.wait([earlier], timeout=CLAIM_WAIT_SECONDS)
    claim = registry.claim_client_id(user.pk, client_id)
    release: Callable[[], None] | None = claim  # None once the sink owns it
    try:
        checked = await _prepare(
            user, client_id, conversation, lambda: _checked(user, client_id, check_caller, prepare)
        )
        if isinstance(checked, Posted):
            for frame in replay(checked, client_id):
                reply(frame.json())
            return
        ticket, prepared = checked
        # The upstream call starts now; the rows are saved alongside it, and the claim is
        # released once they are (ChatSink.open). The user's place is given back at the end.
        sink = ChatSink(prepared, user, reply, claim)
        try:
            if cluster.current is not None:
                await _claim(cluster.current, user, prepared, client_id)
            registry.start(prepared.job(user.pk, received_at), sink, ticket.started, ticket.release)
        except BaseException:
            ticket.release()
            raise
        release = None
    finally:
        if release is not None:
            release()


async def _claim(c: cluster.Cluster, user: User, prepared: Prepared, client_id: uuid.UUID) -> None:
    """Several processes: record this one as the answer's owner first, or refuse the send."""
    try:
        await c.claim(user.pk, prepared.start.conversation.id, prepared.start.assistant.id)
    except cluster.Unavailable:
        raise FrameError(
            "unavailable",
            "Parley's servers cannot coordinate right now, so your message was not sent. Try again in a moment.",
            client_id,
        ) from None


def _checked(
    user: User, client_id: uuid.UUID, check_caller: Callable[[], None], prepare: Prepare
) -> Posted | tuple[admission.Ticket, Prepared]:
    """On a worker thread: the caller's check, the command's checks, then admission.

    Admission comes after prepare so that a resend of something already answered is
    replayed even to a user who has since reached a limit: it costs nothing upstream.
    """
    check_caller()
    prepared = prepare()
    if isinstance(prepared, Posted):
        return prepared
    try:
        return admission.admit(user, registry), prepared
    except admission.Refused as exc:
        r = exc.refusal
        raise FrameError(r.code, r.message, client_id, retry_after=r.retry_after) from None


async def _prepare(
    user: User, client_id: uuid.UUID, conversation: str | None, prepare: Callable[[], Any]
) -> Any:
    """Check and build, holding the conversation so two different sends cannot both start."""
    conversation_id = uuid.UUID(conversation) if conversation else None
    reserved = conversation_id is not None and registry.reserve(conversation_id, user.pk)
    if conversation_id is not None and not reserved and not await _is_resend(user, client_id, conversation_id):
        raise FrameError("busy", "An answer is still being generated in this conversation. Stop it or wait.", client_id)
    # Reads only, batched on the database thread with the other sends' checks (store.checks).
    work = asyncio.ensure_future(store.checks.submit(prepare))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        # The socket went away mid-check: places admission took must still be given back.
        work.add_done_callback(_give_back)
        raise
    except ModelUnavailable:
        raise FrameError("model_unavailable", "That model is not available to you.", client_id) from None
    except NotFound as exc:
        # The access layer's messages are written for users and say nothing about others' data.
        raise FrameError("not_found", str(exc), client_id) from None
    except parts.Refused as exc:  # issue 16: files this model cannot take, or that cannot fit
        raise FrameError(exc.code, exc.message, client_id) from None
    finally:
        if reserved:
            assert conversation_id is not None
            registry.release(conversation_id, user.pk)


def _give_back(work: asyncio.Future[Any]) -> None:
    if not work.cancelled() and work.exception() is None:
        result = work.result()
        if isinstance(result, tuple) and isinstance(result[0], admission.Ticket):
            result[0].release()


async def _is_resend(user: User, client_id: uuid.UUID, conversation_id: uuid.UUID) -> bool:
    # Not .aexists(): only database_sync_to_async closes stale connections (see the consumer).
    return await database_sync_to_async(
        Message.objects.filter(client_id=client_id, conversation__owner=user, conversation_id=conversation_id).exists
    )()
