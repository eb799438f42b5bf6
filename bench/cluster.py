"""Load on 1, 2 and 3 Daphne processes behind nginx, on PostgreSQL and Redis.

The same workload as bench.load (answers of 150 tokens at 50 tokens/s, one distinct user per
socket, the fake provider in its own process stamping each token with the time it was sent),
at 100 and 200 streams, through a real nginx that hashes the session cookie. Reported per
deployment: CPU per relayed token (every server process's CPU, user + system, over the tokens
the clients received), p95 added latency, Stop p99, answers lost. And the cost of a frame that
crosses processes: the same answers watched by a second device of each user, once on the same
process and once on another; the owner and the watcher's extra CPU over the frames forwarded.

BENCH_CLUSTER_PROCESSES (1,2,3) and BENCH_CLUSTER_STREAMS (100,200) choose what runs.
"""

from __future__ import annotations

import asyncio
import os
import time
import types
from typing import Any

from bench import machine
from bench.load import TOKENS, enqueue, pct, stream_one
from bench.relay import FAIR_USE_OFF, Fake, Tab, cpu_seconds
from tests.cluster.conftest import Deployment, Socket, spread, start_deployment

SERVER_ENV = {"PARLEY_MAX_ACTIVE_GENERATIONS": "1000", "PARLEY_AUTO_TITLES": "0", **FAIR_USE_OFF}

PROCESSES = [int(n) for n in os.environ.get("BENCH_CLUSTER_PROCESSES", "1,2,3").split(",")]
STREAMS = [int(n) for n in os.environ.get("BENCH_CLUSTER_STREAMS", "100,200").split(",")]
STOP_AFTER = 1.0


def server_cpu(d: Deployment) -> float:
    return sum(cpu_seconds(s.process.pid) for s in d.servers if s.process is not None)


async def open_tabs(d: Deployment, count: int) -> list[Tab]:
    front = types.SimpleNamespace(url=d.url)
    return [await Tab.open(front, cookie) for cookie in d.sessions(count)]  # type: ignore[arg-type]


async def one_round(d: Deployment, fake: Fake, tabs: list[Tab], stop: bool) -> dict[str, Any]:
    await enqueue(fake, len(tabs), TOKENS)
    before = server_cpu(d)
    answers = await asyncio.gather(
        *(stream_one(t, d.model, STOP_AFTER if stop else None) for t in tabs), return_exceptions=True
    )
    cpu = server_cpu(d) - before
    ok = [a for a in answers if isinstance(a, dict)]
    tokens = sum(len(a["stamps"]) for a in ok)
    lost = (
        len(answers)
        - len(ok)
        + (0 if stop else sum(1 for a in ok if a["end"].get("status") != "complete" or len(a["stamps"]) != TOKENS))
    )
    return {
        "cpu_us_per_token": cpu / max(tokens, 1) * 1e6,
        "added_p95_ms": pct([ms for a in ok for ms in a["token_ms"]], 95),
        "stop_p99_ms": pct([a["stop_ms"] for a in ok if "stop_ms" in a], 99),
        "lost": lost,
    }


async def deployment_figures(processes: int, streams: int, fake: Fake) -> dict[str, Any]:
    d = start_deployment(fake, processes=processes, **SERVER_ENV)
    try:
        tabs = await open_tabs(d, streams)
        await one_round(d, fake, tabs[:10], stop=False)  # warm connections and caches
        load = await one_round(d, fake, tabs, stop=False)
        stops = await one_round(d, fake, tabs, stop=True)
        for tab in tabs:
            await tab.ws.close()
        return {**load, "stop_p99_ms": stops["stop_p99_ms"], "lost": load["lost"] + stops["lost"]}
    finally:
        d.stop()


async def crossing_frame_cost(fake: Fake, watchers: int = 50) -> dict[str, Any]:
    """µs of CPU per frame forwarded to another process, owner's and watcher's together."""
    d = start_deployment(fake, processes=2, **SERVER_ENV)
    try:
        pairs: dict[bool, list[tuple[Socket, Socket]]] = {True: [], False: []}
        while min(len(v) for v in pairs.values()) < watchers:
            by_server = await spread(d.url, d.sessions(6, username=f"x{time.monotonic_ns()}"))
            cookies = [c for group in by_server.values() for c in group]
            owner = await Socket.open(d.url, cookies[0])
            for cookie in cookies[1:]:
                watcher = await Socket.open(d.url, cookie)
                crossing = watcher.server != owner.server
                if len(pairs[crossing]) < watchers:
                    pairs[crossing].append((owner, watcher))
                    break
        figures: dict[str, Any] = {}
        for crossing in (False, True):
            await enqueue(fake, watchers, TOKENS)
            before = server_cpu(d)
            tabs = [types.SimpleNamespace(ws=owner.ws) for owner, _ in pairs[crossing]]
            await asyncio.gather(*(stream_one(t, d.model) for t in tabs))  # type: ignore[arg-type]
            await asyncio.sleep(0.5)  # the watchers' frames are in flight a moment longer
            figures["crossing" if crossing else "same_process"] = server_cpu(d) - before
        same_cpu, cross_cpu = figures["same_process"], figures["crossing"]
        frames = watchers * TOKENS  # about one frame per token at 50 tokens/s
        return {
            "extra_cpu_s": cross_cpu - same_cpu,
            "us_per_crossing_frame": (cross_cpu - same_cpu) / frames * 1e6,
            "frames": frames,
        }
    finally:
        d.stop()


async def main() -> dict[str, Any]:
    fake = Fake()
    rows: dict[str, Any] = {"machine": machine.brief()}
    try:
        for streams in STREAMS:
            for processes in PROCESSES:
                figures = await deployment_figures(processes, streams, fake)
                rows[f"{processes} process(es), {streams} streams"] = (
                    f"{figures['cpu_us_per_token']:.0f} µs CPU/token, p95 added {figures['added_p95_ms']:.0f} ms, "
                    f"Stop p99 {figures['stop_p99_ms']:.0f} ms, {figures['lost']} lost; {machine.brief()}"
                )
        cost = await crossing_frame_cost(fake)
        rows["a frame that crosses processes"] = (
            f"{cost['us_per_crossing_frame']:.1f} µs CPU (owner + watcher) over {cost['frames']:,} frames; "
            f"{machine.brief()}"
        )
    finally:
        await fake.close()
    return rows


def run() -> dict[str, Any]:
    return asyncio.run(main())


if __name__ == "__main__":
    from bench.__main__ import show

    show("Several processes behind nginx", run())
