"""Load on one Daphne process: idle sockets, 100 streams at 50 tokens/s, Stop, coalescing off.

Everything runs on loopback: the fake provider in its own process, Parley as a real Daphne
process (through bench.traced_serve, which counts SQLite statements), and the clients here.
The fake writes each token as the wall-clock time it sent it (`stamp`), so the delay a
client sees per token is the relay's added latency: network hops on loopback, coalescing
(by design up to PARLEY_COALESCE_MS), and any event-loop lag. Parley exposes no loop-lag
gauge, so lag shows up here as the per-frame delay beyond the coalescing window.

Every wait is bounded in time and every loop in count.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import statistics
import time
import uuid
from typing import Any

from bench import machine
from bench.relay import Fake, Tab, cpu_seconds, make_sessions, model_id, rss_mb
from bench.servers import ParleyServer
from tests.live import LiveServer

IDLE = 1000
# BENCH_STREAMS finds where a given machine stops meeting the latency target.
STREAMS = int(os.environ.get("BENCH_STREAMS", "100"))
# BENCH_LOAD_VARIANT runs the server with a change undone (see bench.per_token.VARIANTS).
VARIANT = os.environ.get("BENCH_LOAD_VARIANT", "")
TPS = 50.0
TOKENS = 150  # 3 s per answer at 50 tokens/s
STOP_AFTER = 1.0


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def open_tabs(live: LiveServer, cookies: list[str], batch: int = 50) -> list[Tab]:
    tabs: list[Tab] = []
    for i in range(0, len(cookies), batch):
        tabs += await asyncio.gather(*(Tab.open(live, c) for c in cookies[i : i + batch]))
    return tabs


async def stream_one(tab: Tab, model: str, stop_after: float | None = None) -> dict[str, Any]:
    """Send and read to `end`: per token the delay since the fake wrote it; optionally Stop.

    Tokens of the first delta are kept apart: they wait for the user's message to be
    saved (an `ack` means saved), so they measure the send path, not the relay.
    Stop is pressed `stop_after` seconds after the first delta, mid-stream.
    """
    client_id = str(uuid.uuid4())
    sent = time.monotonic()
    await tab.ws.send(
        json.dumps({"type": "send", "client_id": client_id, "conversation": None, "model": model, "content": "load"})
    )
    out: dict[str, Any] = {"stamps": [], "token_ms": [], "first_frame_ms": [], "frame_ms": [], "frames": 0}
    conversation = None
    first_delta = stop_sent = 0.0
    async with asyncio.timeout(60):
        while True:
            wait = None
            if stop_after is not None and first_delta and not stop_sent:
                wait = max(0.0, first_delta + stop_after - time.monotonic())
            try:
                raw = await asyncio.wait_for(tab.ws.recv(), wait)
            except TimeoutError:
                stop_sent = time.monotonic()
                await tab.ws.send(json.dumps({"type": "stop", "conversation": conversation}))
                continue
            now_ns = time.time_ns()
            frame = json.loads(raw)
            kind = frame["type"]
            if kind == "ack" and frame.get("client_id") == client_id:
                conversation = frame["conversation"]["id"]
                out["ack_ms"] = (time.monotonic() - sent) * 1000
            elif kind == "error" and frame.get("client_id") == client_id:
                out["end"] = frame
                return out
            elif frame.get("conversation") != conversation:
                continue
            elif kind == "delta":
                got = [int(s) for s in frame["text"].split()]
                out["stamps"] += got
                delays = [(now_ns - s) / 1e6 for s in got]
                if not first_delta:
                    first_delta = time.monotonic()
                    out["first_frame_ms"] += delays
                else:
                    out["token_ms"] += delays
                    if got:
                        out["frame_ms"].append(delays[-1])
                out["frames"] += 1
            elif kind == "end":
                out["end"] = frame
                if stop_sent:
                    out["stop_ms"] = (time.monotonic() - stop_sent) * 1000
                return out


async def ping_ms(tab: Tab) -> float:
    """One ping's round trip on a tab that receives nothing else."""
    sent = time.monotonic()
    await tab.ws.send('{"type":"ping"}')
    async with asyncio.timeout(30):
        while json.loads(await tab.ws.recv())["type"] != "pong":
            pass
    return (time.monotonic() - sent) * 1000


async def probe_lag(tab: Tab, done: asyncio.Event) -> list[float]:
    """Ping round trips on a socket of its own, every 50 ms until `done`.

    A pong needs only the event loop, so beyond the two loopback hops (the idle round
    trip, reported beside it) the time is the server's event-loop lag.
    """
    rtts: list[float] = []
    for _ in range(2000):
        if done.is_set():
            break
        rtts.append(await ping_ms(tab))
        await asyncio.sleep(0.05)
    return rtts


async def enqueue(fake: Fake, count: int, tokens: int) -> None:
    for _ in range(count):
        await fake.enqueue(tokens=["x"] * tokens, tokens_per_second=TPS, stamp=True, usage=[10, tokens])


async def streaming_round(live: ParleyServer, fake: Fake, tabs: list[Tab], model: str, prober: Tab) -> dict[str, Any]:
    """Every tab streams one full answer at once; latency, loop lag, CPU, RSS, frames, writes."""
    assert live.process is not None
    pid = live.process.pid
    idle_rtts = [await ping_ms(prober) for _ in range(20)]
    await enqueue(fake, len(tabs), TOKENS)
    counts_before, cpu_before = live.counts(), cpu_seconds(pid)
    fake_cpu_before, client_cpu_before = cpu_seconds(fake.proc.pid), time.process_time()
    started = time.monotonic()
    done = asyncio.Event()
    probing = asyncio.create_task(probe_lag(prober, done))
    answers = await asyncio.gather(*(stream_one(t, model) for t in tabs), return_exceptions=True)
    wall = time.monotonic() - started
    done.set()
    lag = await probing
    cpu = cpu_seconds(pid) - cpu_before
    rss = rss_mb(pid)
    fake_cpu = cpu_seconds(fake.proc.pid) - fake_cpu_before
    client_cpu = time.process_time() - client_cpu_before
    counts = {k: v - counts_before[k] for k, v in live.counts().items()}
    ok = [a for a in answers if isinstance(a, dict)]
    lost = (
        len(answers)
        - len(ok)
        + sum(1 for a in ok if a["end"].get("status") != "complete" or len(a["stamps"]) != TOKENS)
    )
    db = sqlite3.connect(live.env["SQLITE_PATH"])
    # A stamp is 19 digits and a space; warm-up answers are shorter, so only these match.
    saved = db.execute(
        "select count(*) from chat_message where role='assistant' and status='complete' and length(content) = ?",
        (TOKENS * 20,),
    ).fetchone()[0]
    db.close()
    tokens_ms = [ms for a in ok for ms in a["token_ms"]]
    frame_ms = [ms for a in ok for ms in a["frame_ms"]]
    first_ms = [ms for a in ok for ms in a["first_frame_ms"]]
    acks = [a["ack_ms"] for a in ok if "ack_ms" in a]
    return {
        "streams": len(tabs),
        "ack_after_send_p50_ms": pct(acks, 50),
        "ack_after_send_max_ms": max(acks, default=float("nan")),
        "first_delta_token_delay_p95_ms": pct(first_ms, 95),
        "lost_or_truncated": lost,
        "saved_in_full": saved,
        "added_latency_p50_ms": pct(tokens_ms, 50),
        "added_latency_p95_ms": pct(tokens_ms, 95),
        "added_latency_p99_ms": pct(tokens_ms, 99),
        "frame_delay_after_newest_token_p95_ms": pct(frame_ms, 95),
        "frame_delay_after_newest_token_p99_ms": pct(frame_ms, 99),
        "frame_delay_after_newest_token_max_ms": max(frame_ms, default=float("nan")),
        "ping_rtt_idle_p50_ms": pct(idle_rtts, 50),
        "ping_rtt_under_load_p50_ms": pct(lag, 50),
        "ping_rtt_under_load_p95_ms": pct(lag, 95),
        "ping_rtt_under_load_max_ms": max(lag, default=float("nan")),
        "frames_per_answer": statistics.mean(a["frames"] for a in ok) if ok else float("nan"),
        "wall_s": wall,
        "cpu_s": cpu,
        "cpu_percent_of_one_core": cpu / wall * 100,
        "rss_mb": rss,
        "fake_provider_cpu_s": fake_cpu,
        "bench_client_cpu_s": client_cpu,
        "db_writes_per_s": counts["writes"] / wall,
        "db_transactions_per_s": counts["transactions"] / wall,
    }


async def stop_round(fake: Fake, tabs: list[Tab], model: str) -> dict[str, Any]:
    """Every tab starts a long answer and presses Stop after STOP_AFTER seconds."""
    await enqueue(fake, len(tabs), 1000)
    answers = await asyncio.gather(*(stream_one(t, model, STOP_AFTER) for t in tabs), return_exceptions=True)
    ok = [a for a in answers if isinstance(a, dict) and "stop_ms" in a]
    stopped = [a for a in ok if (a["end"].get("status"), a["end"].get("reason")) == ("incomplete", "stopped")]
    stop_ms = [a["stop_ms"] for a in ok]
    return {
        "stops": len(tabs),
        "stopped_and_saved": len(stopped),
        "stop_to_end_p50_ms": pct(stop_ms, 50),
        "stop_to_end_p99_ms": pct(stop_ms, 99),
        "stop_to_end_max_ms": max(stop_ms, default=float("nan")),
    }


async def idle_sockets(live: LiveServer, cookies: list[str]) -> tuple[list[Tab], dict[str, Any]]:
    assert live.process is not None
    pid = live.process.pid
    before = rss_mb(pid)
    tabs = await open_tabs(live, cookies)
    await asyncio.sleep(2)
    after = rss_mb(pid)

    # Every idle socket still answers: each is a live, authenticated session.
    async def ping(tab: Tab) -> bool:
        await tab.ws.send('{"type":"ping"}')
        async with asyncio.timeout(10):
            return bool(json.loads(await tab.ws.recv())["type"] == "pong")

    alive = sum(await asyncio.gather(*(ping(t) for t in tabs)))
    return tabs, {
        "idle_sockets": len(tabs),
        "idle_sockets_answering_ping": alive,
        "rss_before_mb": before,
        "rss_with_idle_mb": after,
        "kb_per_idle_socket": (after - before) * 1024 / len(tabs),
    }


async def one_server(coalesce_ms: int | None, idle: int) -> dict[str, Any]:
    fake = Fake()
    env = {"PARLEY_COALESCE_MS": str(coalesce_ms)} if coalesce_ms is not None else {}
    from bench.per_token import VARIANTS

    httpx_body, queued_writes = VARIANTS[VARIANT] if VARIANT else (False, False)
    live = ParleyServer(env, counts=True, httpx_body=httpx_body, queued_writes=queued_writes).start()
    results: dict[str, Any] = {}
    tabs: list[Tab] = []
    try:
        live.add_fake_provider(fake.url, model="fake-model=Fake", default="fake-model")
        model = model_id(live)
        cookies = make_sessions(live, idle + STREAMS + 1)
        prober = await Tab.open(live, cookies.pop())
        stream_tabs = await open_tabs(live, cookies[:STREAMS])
        tabs += [prober, *stream_tabs]
        await enqueue(fake, 3, 5)  # warm: connections, imports, first queries
        await asyncio.gather(*(stream_one(t, model) for t in stream_tabs[:3]))
        if idle:
            idle_tabs, figures = await idle_sockets(live, cookies[STREAMS:])
            tabs += idle_tabs
            results.update(figures)
        results.update(await streaming_round(live, fake, stream_tabs, model, prober))
        results.update(await stop_round(fake, stream_tabs, model))
        db = sqlite3.connect(live.env["SQLITE_PATH"])
        results["streaming_left"] = db.execute("select count(*) from chat_message where status='streaming'").fetchone()[
            0
        ]
        db.close()
    finally:
        await asyncio.gather(*(t.ws.close() for t in tabs), return_exceptions=True)
        live.stop()
        await fake.close()
    return results


async def _run() -> dict[str, Any]:
    on = await one_server(None, IDLE)
    off_machine = machine.brief()
    off = await one_server(0, 0)
    results = dict(on)
    results["coalescing_off_run_machine"] = off_machine
    for key in (
        "frames_per_answer",
        "cpu_s",
        "cpu_percent_of_one_core",
        "added_latency_p95_ms",
        "ping_rtt_under_load_p95_ms",
        "lost_or_truncated",
        "db_writes_per_s",
    ):
        results[f"coalescing_off_{key}"] = off[key]
    results["coalescing_frames_saved_percent"] = 100 * (1 - on["frames_per_answer"] / off["frames_per_answer"])
    results["coalescing_cpu_saved_percent"] = 100 * (1 - on["cpu_s"] / off["cpu_s"])
    return results


def run() -> dict[str, Any]:
    """The figures for docs/performance.md; `python -m bench` shows them as a table."""
    return asyncio.run(_run())


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
    for key, value in {**machine.probe(), **run()}.items():
        print(f"{key}: {value:.2f}" if isinstance(value, float) else f"{key}: {value}")
