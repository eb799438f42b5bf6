"""Every fault from issue 6, as a user would notice it, over real HTTP to the fake provider.

Each test checks the same four things a user cares about: their message is kept, the
answer ends in a truthful final state with its reason (never left `streaming`), the
socket still works, and the upstream connection was closed rather than left dangling.
Timeouts are set small on the Provider record so the whole file runs in seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connection, connections

from chat.models import ChatModel, Message, Provider
from tests.fakeprovider import FakeProvider, Recorded, Script
from tests.test_chat_socket import saved_messages, send_frame, text_of

pytestmark = pytest.mark.django_db(transaction=True)

WORDS = [f"w{i} " for i in range(6)]


# ---- what every fault test checks -----------------------------------------------------


async def ask(sock: Any, model: ChatModel, content: str = "Please answer", timeout: float = 15) -> list[dict[str, Any]]:
    """Send one message and read every frame up to its `end`."""
    await sock.send(send_frame(model, content))
    return await sock.recv_until("end", timeout=timeout)


async def assert_truthful_end(
    sock: Any,
    frames: list[dict[str, Any]],
    status: str,
    reason: str,
    kind: str | None,
    content: str | None = None,
) -> Message:
    """The user message kept, the answer saved as the end frame says, the socket usable."""
    ack, end = frames[0], frames[-1]
    assert ack["type"] == "ack", frames
    assert (end["status"], end["reason"]) == (status, reason), end
    assert (end["error"] or {}).get("kind") == kind, end
    if kind is not None:
        assert end["error"]["message"] and end["error"]["ref"]
    user_msg, answer = await saved_messages(ack["conversation"]["id"])
    assert (user_msg.role, user_msg.content) == ("user", "Please answer")
    assert (answer.status, answer.reason, answer.error_kind or None) == (status, reason, kind)
    assert answer.content == text_of(frames)
    if content is not None:
        assert answer.content == content
    await sock.send({"type": "ping"})
    assert (await sock.recv_until("pong"))[-1]["type"] == "pong"
    assert not await Message.objects.filter(status="streaming").aexists()
    return answer


async def upstream_closed(request: Recorded, timeout: float = 2.0) -> bool:
    """The provider saw the end of this request: it finished, or Parley hung up."""

    def wait() -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if request.finished.is_set() or request.client_disconnected.is_set():
                return True
            time.sleep(0.02)
        return False

    return await asyncio.to_thread(wait)


@sync_to_async
def set_timeouts(model: ChatModel, **timeouts: float) -> None:
    Provider.objects.filter(id=model.provider_id).update(**timeouts)


# ---- the provider fails before the first token ---------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_a_5xx_before_the_first_token_is_retried_and_the_answer_arrives(
    alice: Any, fake_model: ChatModel, fake: FakeProvider, connect: Any, status: int
) -> None:
    fake.enqueue(Script(status=status))
    fake.enqueue(Script(tokens=["Fine", " now."]))
    sock = await connect(alice)
    frames = await ask(sock, fake_model)
    await assert_truthful_end(sock, frames, "complete", "stop", None, "Fine now.")
    assert len(fake.requests) == 2
    assert all([await upstream_closed(r) for r in fake.requests])


@pytest.mark.parametrize(("status", "kind"), [(500, "unavailable"), (502, "unavailable"), (503, "overloaded")])
async def test_a_5xx_on_every_attempt_ends_in_a_clear_error(
    alice: Any, fake_model: ChatModel, fake: FakeProvider, connect: Any, status: int, kind: str
) -> None:
    fake.script_for_model("fake-model", Script(status=status))
    sock = await connect(alice)
    frames = await ask(sock, fake_model)
    await assert_truthful_end(sock, frames, "error", "error", kind, "")
    assert len(fake.requests) == 3, "retried, but boundedly"
    assert all([await upstream_closed(r) for r in fake.requests])


async def test_a_429_waits_for_retry_after_before_trying_again(
    alice: Any, fake_model: ChatModel, fake: FakeProvider, connect: Any
) -> None:
    fake.enqueue(Script(status=429, headers={"Retry-After": "1"}))
    fake.enqueue(Script(tokens=["Patience", " pays."]))
    sock = await connect(alice)
    started = time.monotonic()
    frames = await ask(sock, fake_model)
    await assert_truthful_end(sock, frames, "complete", "stop", None, "Patience pays.")
    assert len(fake.requests) == 2
    assert time.monotonic() - started >= 1.0, "the retry came before Retry-After said it may"


async def test_a_429_that_persists_ends_as_a_rate_limit_error(
    alice: Any, fake_model: ChatModel, fake: FakeProvider, connect: Any
) -> None:
    fake.script_for_model("fake-model", Script(status=429, headers={"Retry-After": "0"}))
    sock = await connect(alice)
    frames = await ask(sock, fake_model)
    await assert_truthful_end(sock, frames, "error", "error", "rate_limit", "")
    assert all([await upstream_closed(r) for r in fake.requests])


async def test_a_401_is_not_retried_and_says_the_key_is_wrong(
    alice: Any, fake_model: ChatModel, fake: FakeProvider, connect: Any
) -> None:
    fake.script_for_model("fake-model", Script(status=401))
    sock = await connect(alice)
    frames = await ask(sock, fake_model)
    await assert_truthful_end(sock, frames, "error", "error", "auth", "")
    assert "credentials" in frames[-1]["error"]["message"]
    assert len(fake.requests) == 1, "a wrong key does not get better by asking again"


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def blackhole() -> Iterator[int]:
    """A loopback listener whose accept queue is full, so a new connect never completes."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = int(listener.getsockname()[1])
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    yield port
    for s in [*fillers, listener]:
        s.close()


async def test_a_provider_refusing_connections_ends_in_a_clear_error(
    alice: Any, fake_model: ChatModel, connect: Any, closed_port: int
) -> None:
    await Provider.objects.filter(id=fake_model.provider_id).aupdate(base_url=f"http://127.0.0.1:{closed_port}/v1")
    sock = await connect(alice)
    frames = await ask(sock, fake_model)
    await assert_truthful_end(sock, frames, "error", "error", "unavailable", "")


async def test_a_connect_timeout_ends_in_a_timeout_error(
    alice: Any, fake_model: ChatModel, connect: Any, blackhole: int
) -> None:
    await Provider.objects.filter(id=fake_model.provider_id).aupdate(
        base_url=f"http://127.0.0.1:{blackhole}/v1", connect_timeout=0.3
    )
    sock = await connect(alice)
    started = time.monotonic()
    frames = await ask(sock, fake_model)
    await assert_truthful_end(sock, frames, "error", "error", "timeout", "")
    assert time.monotonic() - started < 6, "three short attempts, not a long hang"


@pytest.mark.parametrize("keepalive", [None, 0.1], ids=["silent", "keep-alives"])
async def test_no_first_token_within_the_limit_ends_in_a_timeout_error(
    alice: Any, fake_model: ChatModel, fake: FakeProvider, connect: Any, keepalive: float | None
) -> None:
    await set_timeouts(fake_model, first_token_timeout=0.4)
    fake.script_for_model("fake-model", Script(first_token_delay=30, keepalive_interval=keepalive))
    sock = await connect(alice)
    started = time.monotonic()
    frames = await ask(sock, fake_model)
    await assert_truthful_end(sock, frames, "error", "error", "timeout", "")
    assert time.monotonic() - started < 6
    assert all(r.client_disconnected.is_set() for r in fake.requests), "every attempt was hung up on"


# ---- the provider fails after the first token ------------------------------------------


@pytest.mark.parametrize("keepalive", [None, 0.1], ids=["silent", "keep-alives"])
async def test_a_stall_mid_answer_keeps_the_text_and_ends_in_a_timeout(
    alice: Any, fake_model: ChatModel, fake: FakeProvider, connect: Any, keepalive: float | None
) -> None:
    await set_timeouts(fake_model, read_timeout=0.5)
    fake.enqueue(Script(tokens=WORDS, stall_after=3, keepalive_interval=keepalive))
    sock = await connect(alice)
    started = time.monotonic()
    frames = await ask(sock, fake_model)
    assert time.monotonic() - started < 3, "keep-alives must not keep a stalled answer open"
    await assert_truthful_end(sock, frames, "incomplete", "error", "timeout", "w0 w1 w2 ")
    assert await upstream_closed(fake.requests[-1])
    assert len(fake.requests) == 1, "text was shown: no retry that could repeat it"


async def test_a_tcp_reset_mid_answer_keeps_the_text_as_incomplete(
    alice: Any, fake_model: ChatModel, fake: FakeProvider, connect: Any
) -> None:
    fake.enqueue(Script(tokens=WORDS, drop_after=3))
    sock = await connect(alice)
    frames = await ask(sock, fake_model)
    await assert_truthful_end(sock, frames, "incomplete", "error", "incomplete", "w0 w1 w2 ")
    assert await upstream_closed(fake.requests[-1])


async def test_an_error_event_after_http_200_keeps_the_text_and_reports_the_error(
    alice: Any, fake_model: ChatModel, fake: FakeProvider, connect: Any
) -> None:
    fake.enqueue(Script(tokens=WORDS, error_event_after=2))
    sock = await connect(alice)
    frames = await ask(sock, fake_model)
    await assert_truthful_end(sock, frames, "incomplete", "error", "unavailable", "w0 w1 ")
    assert await upstream_closed(fake.requests[-1])


async def test_an_error_event_before_any_text_is_retried(
    alice: Any, fake_model: ChatModel, fake: FakeProvider, connect: Any
) -> None:
    fake.enqueue(Script(tokens=WORDS, error_event_after=0))
    fake.enqueue(Script(tokens=["Second", " try."]))
    sock = await connect(alice)
    frames = await ask(sock, fake_model)
    await assert_truthful_end(sock, frames, "complete", "stop", None, "Second try.")


async def test_a_malformed_sse_line_ends_the_answer_as_incomplete(
    alice: Any, fake_model: ChatModel, fake: FakeProvider, connect: Any
) -> None:
    fake.enqueue(Script(tokens=WORDS, malformed_after=2))
    sock = await connect(alice)
    frames = await ask(sock, fake_model)
    await assert_truthful_end(sock, frames, "incomplete", "error", "unavailable", "w0 w1 ")
    assert await upstream_closed(fake.requests[-1])


async def test_an_oversized_sse_line_is_refused_without_buffering_it_all(
    alice: Any, fake_model: ChatModel, fake: FakeProvider, connect: Any
) -> None:
    huge = "x" * (2 << 20)  # one 2 MiB data line: over the decoder's 1 MiB line limit
    fake.enqueue(Script(tokens=["w0 ", "w1 ", huge, "w3 "]))
    sock = await connect(alice)
    frames = await ask(sock, fake_model)
    await assert_truthful_end(sock, frames, "incomplete", "error", "unavailable", "w0 w1 ")
    assert await upstream_closed(fake.requests[-1])


async def test_a_stream_with_no_terminator_is_not_reported_complete(
    alice: Any, fake_model: ChatModel, fake: FakeProvider, connect: Any
) -> None:
    fake.enqueue(Script(tokens=WORDS, no_terminator=True))
    sock = await connect(alice)
    frames = await ask(sock, fake_model)
    await assert_truthful_end(sock, frames, "incomplete", "error", "incomplete", "".join(WORDS))
    assert await upstream_closed(fake.requests[-1])


async def test_an_html_page_instead_of_a_stream_says_the_url_is_probably_wrong(
    alice: Any, fake_model: ChatModel, fake: FakeProvider, connect: Any
) -> None:
    fake.script_for_model("fake-model", Script(html_body=True))
    sock = await connect(alice)
    frames = await ask(sock, fake_model)
    await assert_truthful_end(sock, frames, "error", "error", "unavailable", "")
    assert "web page" in frames[-1]["error"]["message"]
    assert all([await upstream_closed(r) for r in fake.requests])


# ---- the client goes away or reads slowly -------------------------------------------


async def test_a_client_that_disconnects_mid_answer_finds_it_complete_on_return(
    alice: Any, fake_model: ChatModel, fake: FakeProvider, connect: Any
) -> None:
    tokens = [f"t{i} " for i in range(20)]
    fake.enqueue(Script(tokens=tokens, tokens_per_second=20))
    sock = await connect(alice)
    await sock.send(send_frame(fake_model, "Please answer"))
    frames = await sock.recv_until("delta")
    answer_id = frames[1]["message"]["id"]
    await sock.close()

    upstream = fake.requests[-1]
    assert await asyncio.to_thread(upstream.finished.wait, 5), "the answer did not run to its end"
    assert not upstream.client_disconnected.is_set(), "closing the tab must not hang up on the provider"
    again = await connect(alice)
    await again.send({"type": "resume", "message": answer_id, "after_seq": 0})
    resumed = await again.recv_until("end")
    assert resumed[0]["replace"] is True or text_of(resumed) == "".join(tokens)
    assert (resumed[-1]["status"], resumed[-1]["reason"]) == ("complete", "stop")
    answer = await Message.objects.aget(id=answer_id)
    assert (answer.status, answer.content) == ("complete", "".join(tokens))


def _other_users_stream_seconds(live: Any, cookie: str, model: str, tokens: int, tps: float) -> float:
    from bench.relay import Tab

    async def run() -> float:
        tab = await Tab.open(live, cookie)
        try:
            answer = await tab.ask(model)
            assert answer["end"]["status"] == "complete" and len(answer["text"].split()) == tokens
            return float(answer["total"])
        finally:
            await tab.ws.close()

    return asyncio.run(run())


def _stuck_reader_asking_big(live: Any, cookie: str, model: str) -> Any:
    """A socket that sends "big" and then, after a frame or two, stops reading from TCP.

    max_queue=1 and a tiny receive buffer make the server's writes back up.
    """
    import websockets.sync.client

    slow = websockets.sync.client.connect(
        live.url.replace("http", "ws") + "/ws/chat/",
        additional_headers={"Cookie": cookie, "Origin": live.url},
        max_queue=1,
        max_size=None,
    )
    slow.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.send(
        json.dumps(
            {"type": "send", "client_id": str(uuid.uuid4()), "conversation": None, "model": model, "content": "big"}
        )
    )
    return slow


def _answer_to_big(live: Any) -> tuple[str, int] | None:
    """(status, length) of the answer to the message "big", once it has stopped streaming."""
    row = None
    for _ in range(300):  # 30 s
        rows = live.sql(
            "select a.status, length(a.content) from chat_message a join chat_message u "
            "on a.parent_id = u.id where u.content = 'big'"
        )
        row = rows[0] if rows else None
        if row and row[0] != "streaming":
            break
        time.sleep(0.1)
    return row  # type: ignore[return-value]


def test_a_client_that_stops_reading_does_not_slow_another_users_stream(fake_server: FakeProvider) -> None:
    """Over real TCP (Daphne): one socket never reads a 4 MB answer; Bob's stream keeps its pace."""

    from bench.relay import make_sessions, model_id
    from tests.live import LiveServer

    fake_server.reset()
    live = LiveServer().start()
    try:
        live.add_fake_provider(fake_server.url)
        slow_cookie, bob_cookie = make_sessions(live, 2)
        model = model_id(live)
        bob_tokens, tps = 30, 20.0
        fake_server.enqueue(Script(tokens=[f"b{i} " for i in range(bob_tokens)], tokens_per_second=tps))
        alone = _other_users_stream_seconds(live, bob_cookie, model, bob_tokens, tps)

        big = [("x" * 99) + " " for _ in range(40_000)]  # 4 MB, as fast as the fake can send
        fake_server.enqueue(Script(tokens=big))
        slow = _stuck_reader_asking_big(live, slow_cookie, model)
        fake_server.wait_for_requests(2)
        fake_server.enqueue(Script(tokens=[f"b{i} " for i in range(bob_tokens)], tokens_per_second=tps))
        beside_slow = _other_users_stream_seconds(live, bob_cookie, model, bob_tokens, tps)
        assert beside_slow < alone + 0.5, (
            f"Bob's answer took {beside_slow:.2f}s beside a stuck reader, {alone:.2f}s alone"
        )

        # The stuck reader's answer is still saved in full: it belongs to the server.
        assert _answer_to_big(live) == ("complete", len("".join(big)))
        with contextlib.suppress(Exception):
            slow.close()
    finally:
        live.stop()


def test_a_client_that_stops_reading_is_cut_past_the_unsent_cap_and_its_answer_is_kept(
    fake_server: FakeProvider,
) -> None:
    """Over real TCP (Daphne): past PARLEY_MAX_UNSENT_BYTES the stuck socket is dropped, not buffered."""
    import websockets.exceptions

    from bench.relay import make_sessions, model_id
    from tests.live import LiveServer

    fake_server.reset()
    live = LiveServer(extra_env={"PARLEY_MAX_UNSENT_BYTES": str(256 * 1024)}).start()
    try:
        live.add_fake_provider(fake_server.url)
        (cookie,) = make_sessions(live, 1)
        model = model_id(live)
        big = [("y" * 99) + " " for _ in range(40_000)]  # 4 MB, sixteen times the cap
        fake_server.enqueue(Script(tokens=big))
        slow = _stuck_reader_asking_big(live, cookie, model)
        assert _answer_to_big(live) == ("complete", len("".join(big))), "the answer is saved whole"

        # What reached the client before the cut can be read; then the connection is gone.
        cut = False
        for _ in range(10_000):
            try:
                slow.recv(timeout=5)
            except websockets.exceptions.ConnectionClosed:
                cut = True
                break
            except TimeoutError:
                break
        assert cut, "a client that stopped reading should have been disconnected"
        assert "stopped reading" in live.log()
    finally:
        live.stop()


# ---- the database has trouble ----------------------------------------------------------


@pytest.fixture
async def short_busy_timeout(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    """Make a held lock fail Parley's writes fast ("database is locked") instead of queueing 20 s.

    Connections are opened per database call (CONN_MAX_AGE=0), so new ones pick this up;
    afterwards the database thread's connection is closed so no later test inherits it.
    """
    await sync_to_async(connections.close_all)()
    monkeypatch.setitem(connections["default"].settings_dict["OPTIONS"], "timeout", 0.1)
    yield
    monkeypatch.undo()
    await sync_to_async(connections.close_all)()


def hold_write_lock(seconds: float) -> threading.Thread:
    """Another process-like connection takes SQLite's write lock for `seconds`."""
    path = connection.settings_dict["NAME"]
    taken = threading.Event()

    def hold() -> None:
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("begin exclusive")
        taken.set()
        time.sleep(seconds)
        db.execute("commit")
        db.close()

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    taken.wait(2)
    return thread


@contextlib.contextmanager
def db_retries_logged() -> Iterator[list[logging.LogRecord]]:
    """The retries chat.store logs (its logger does not propagate to caplog)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("chat.store")
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


@pytest.mark.sqlite
async def test_a_checkpoint_during_a_brief_lock_is_retried_and_the_answer_saved(
    alice: Any,
    fake_model: ChatModel,
    fake: FakeProvider,
    connect: Any,
    settings: Any,
    short_busy_timeout: None,
) -> None:
    settings.PARLEY_CHECKPOINT_SECONDS = 0.2
    tokens = [f"c{i} " for i in range(30)]
    fake.enqueue(Script(tokens=tokens, tokens_per_second=20))
    sock = await connect(alice)
    await sock.send(send_frame(fake_model, "Please answer"))
    frames = await sock.recv_until("delta")
    answer_id = frames[1]["message"]["id"]
    with db_retries_logged() as retries:
        lock = hold_write_lock(1.0)
        frames += await sock.recv_until("end", timeout=20)
        await asyncio.to_thread(lock.join)
    assert retries, "the lock never bit: this test proved nothing"
    answer = await assert_truthful_end(sock, frames, "complete", "stop", None, "".join(tokens))
    assert answer.seq == frames[-1]["seq"]
    assert str(answer.id) == answer_id


# Generation._finish waits on the final write with `await asyncio.shield(save)` inside
# suppress(CancelledError): when the write itself fails, shield re-raises its
# OperationalError, the generation task dies, and no `end` is ever sent.


@pytest.mark.sqlite
async def test_a_final_write_that_cannot_be_saved_is_reported_as_failed_not_left_hanging(
    alice: Any,
    fake_model: ChatModel,
    fake: FakeProvider,
    connect: Any,
    short_busy_timeout: None,
) -> None:
    fake.enqueue(Script(tokens=[f"f{i} " for i in range(3)], tokens_per_second=10))
    sock = await connect(alice)
    await sock.send(send_frame(fake_model, "Please answer"))
    await sock.recv_until("delta")
    lock = hold_write_lock(3.0)  # longer than with_db_retry's ~2 s budget
    try:
        end = (await sock.recv_until("end", timeout=4))[-1]
    finally:
        await asyncio.to_thread(lock.join)
    assert end["status"] == "error" and end["error"]["kind"] == "unavailable", "success reported for an unsaved answer"


@pytest.mark.sqlite
async def test_an_answer_whose_final_write_failed_is_saved_once_the_database_is_back(
    alice: Any,
    fake_model: ChatModel,
    fake: FakeProvider,
    connect: Any,
    short_busy_timeout: None,
) -> None:
    fake.enqueue(Script(tokens=[f"f{i} " for i in range(3)], tokens_per_second=10))
    sock = await connect(alice)
    await sock.send(send_frame(fake_model, "Please answer"))
    answer_id = (await sock.recv_until("delta"))[1]["message"]["id"]
    await asyncio.to_thread(hold_write_lock(3.0).join)  # longer than with_db_retry's ~2 s budget
    for _ in range(20):
        answer = await Message.objects.aget(id=answer_id)
        if answer.status != "streaming":
            break
        await asyncio.sleep(0.1)
    assert answer.status != "streaming"


@pytest.mark.sqlite
async def test_a_send_that_cannot_be_saved_gets_an_error_not_silence(
    alice: Any,
    fake_model: ChatModel,
    fake: FakeProvider,
    connect: Any,
    short_busy_timeout: None,
) -> None:
    sock = await connect(alice)
    conversation = (await ask(sock, fake_model))[0]["conversation"]["id"]
    fake.enqueue(Script(tokens=WORDS, first_token_delay=5))
    lock = hold_write_lock(3.0)
    try:
        frame = send_frame(fake_model, "Please answer", conversation=conversation)
        await sock.send(frame)
        # Stopped before the save fails: the generation is then waiting on the save.
        await sock.send({"type": "stop", "conversation": conversation})
        reply = (await sock.recv_until("error", timeout=6))[-1]
    finally:
        await asyncio.to_thread(lock.join)
    assert (reply["code"], reply["client_id"]) == ("unavailable", frame["client_id"])
    await sock.send({"type": "ping"})
    assert (await sock.recv_until("pong"))[-1]["type"] == "pong"
    assert not await Message.objects.filter(status="streaming").aexists()


@pytest.mark.sqlite
async def test_twenty_streams_through_a_database_is_locked_storm_lose_no_write(
    alice: Any,
    fake_model: ChatModel,
    fake: FakeProvider,
    connect: Any,
    settings: Any,
) -> None:
    settings.PARLEY_CHECKPOINT_SECONDS = 0.2
    settings.PARLEY_USER_MAX_ACTIVE_GENERATIONS = 0  # twenty of one user's answers at once, on purpose
    streams, tokens = 20, [f"s{i} " for i in range(30)]
    fake.set_default(Script(tokens=tokens, tokens_per_second=30))
    path = connection.settings_dict["NAME"]
    stop = threading.Event()
    committed = 0

    def hammer() -> None:
        # Another writer takes the lock over and over: short transactions, tiny gaps.
        nonlocal committed
        db = sqlite3.connect(path, isolation_level=None, timeout=20)
        db.execute("create table if not exists fault_hammer (n integer)")
        db.execute("delete from fault_hammer")
        while not stop.is_set():
            db.execute("begin immediate")
            db.execute("insert into fault_hammer values (?)", (committed,))
            time.sleep(0.01)
            db.execute("commit")
            committed += 1
            time.sleep(0.002)
        db.close()

    thread = threading.Thread(target=hammer, daemon=True)
    thread.start()
    try:
        sock = await connect(alice)
        frames = [send_frame(fake_model, "Please answer") for _ in range(streams)]
        for frame in frames:
            await sock.send(frame)
        ends: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + 40
        while len(ends) < streams and time.monotonic() < deadline:
            frame = await sock.recv(timeout=30)
            if frame["type"] == "end":
                ends[frame["message"]] = frame
            assert frame["type"] != "error", frame
    finally:
        stop.set()
        await asyncio.to_thread(thread.join, 5)
    assert len(ends) == streams
    assert {(e["status"], e["reason"]) for e in ends.values()} == {("complete", "stop")}
    answers = [m async for m in Message.objects.filter(role="assistant")]
    assert len(answers) == streams and {a.content for a in answers} == {"".join(tokens)}
    assert await Message.objects.filter(role="user").acount() == streams
    db = sqlite3.connect(path)
    hammered = db.execute("select count(*) from fault_hammer").fetchone()[0]
    db.execute("drop table fault_hammer")
    db.commit()
    db.close()
    assert hammered == committed > 50, "the other writer lost writes, or never really competed"
    await sock.send({"type": "ping"})
    assert (await sock.recv_until("pong"))[-1]["type"] == "pong"


# ---- several tabs, and a hard kill -------------------------------------------------------


async def test_a_second_tab_sees_the_same_answer_live_and_can_stop_it(
    alice: Any, fake_model: ChatModel, fake: FakeProvider, connect: Any
) -> None:
    fake.enqueue(Script(tokens=[f"t{i} " for i in range(200)], tokens_per_second=40))
    first, second = await connect(alice), await connect(alice)
    await first.send(send_frame(fake_model, "Please answer"))
    mine = await first.recv_until("delta")
    theirs = await second.recv_until("delta")
    assert [f["type"] for f in theirs[:2]] == ["ack", "start"]
    conversation = mine[0]["conversation"]["id"]
    await second.send({"type": "stop", "conversation": conversation})  # Stop pressed in the other tab
    stopped_at = time.monotonic()
    mine += await first.recv_until("end")
    theirs += await second.recv_until("end")
    assert time.monotonic() - stopped_at < 1.0
    assert text_of(mine) == text_of(theirs), "both tabs show the same text"
    assert mine[-1] == theirs[-1] and (mine[-1]["status"], mine[-1]["reason"]) == ("incomplete", "stopped")
    assert await upstream_closed(fake.requests[-1])
    _, answer = await saved_messages(conversation)
    assert answer.content == text_of(mine)


def test_after_a_hard_kill_the_restarted_server_marks_the_answer_incomplete(
    fake_server: FakeProvider,
) -> None:
    """SIGKILL mid-answer: start-up finds it `streaming` and saves it as incomplete/server_restart."""
    from bench.relay import make_sessions, model_id
    from tests.live import LiveServer

    fake_server.reset()
    fake_server.enqueue(Script(tokens=[f"k{i} " for i in range(400)], tokens_per_second=40))
    live = LiveServer(extra_env={"PARLEY_CHECKPOINT_SECONDS": "0.3"}).start()
    try:
        live.add_fake_provider(fake_server.url)
        cookie, model = make_sessions(live, 1)[0], model_id(live)

        async def stream_a_second() -> str:
            from bench.relay import Tab

            tab = await Tab.open(live, cookie)
            await tab.ws.send(
                json.dumps(
                    {
                        "type": "send",
                        "client_id": str(uuid.uuid4()),
                        "conversation": None,
                        "model": model,
                        "content": "Please answer",
                    }
                )
            )
            answer = ""
            async with asyncio.timeout(10):
                while True:
                    frame = json.loads(await tab.ws.recv())
                    if frame["type"] == "start":
                        answer = frame["message"]["id"]
                    if frame["type"] == "delta" and frame["seq"] >= 20:
                        return answer

        answer_id = asyncio.run(stream_a_second())
        assert live.process is not None
        live.process.kill()
        live.process.wait(5)
        live.start()  # the same database: start-up recovery runs first
        status, reason, content = live.sql("select status, reason, content from chat_message where id = ?", answer_id)[
            0
        ]
    finally:
        live.stop()
    assert (status, reason) == ("incomplete", "server_restart")
    assert content.startswith("k0 k1 "), "the last checkpoint's text is kept for Continue"
