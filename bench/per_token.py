"""CPU per relayed token at 100 answers × 50 tokens/s: Parley beside the floor, interleaved.

All in: the server process's CPU (user + system, from /proc, every thread) from the first
`send` of a round until every `end` has arrived, divided by the tokens the clients
received. That takes in each answer's send, saves, checkpoints and final write, not only
the streaming. Parley (bench.traced_serve without counting, i.e. `manage.py serve`) and
the floor (bench.floor) run side by side on one fake provider and are driven by the same
clients, one distinct user per socket, in rounds A B A B, so both see the same noise; the
ratio is taken within each pair. The fake writes each token as its own HTTP chunk at
50 tokens/s per answer (a loop that falls behind may read several at once, for Parley and
the floor alike; the floor counts its reads).

BENCH_CPU_ROUNDS sets the pairs (2), BENCH_CPU_STREAMS the answers per round (100), and
BENCH_CPU_VARIANTS adds Parley servers with one change undone, to measure it against what
it replaced in the same rounds: ``httpx-body`` (provider bodies through httpx's iterator
instead of providers/transport.py DirectBody), ``queued-writes`` (Twisted's writes left to
its next pass, without chatsite/private_apis.py send_writes_at_once), ``before`` (both).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
from typing import Any

from bench import machine
from bench.load import enqueue, open_tabs, pct, stream_one
from bench.relay import Fake, Tab, cpu_seconds, cpu_split
from bench.servers import FloorServer, ParleyServer

STREAMS = int(os.environ.get("BENCH_CPU_STREAMS", "100"))
ROUNDS = int(os.environ.get("BENCH_CPU_ROUNDS", "2"))
TOKENS = 150  # 3 s per answer at 50 tokens/s, as in bench.load
# name: (httpx_body, queued_writes), see ParleyServer
VARIANTS: dict[str, tuple[bool, bool]] = {
    "httpx-body": (True, False),
    "queued-writes": (False, True),
    "before": (True, True),
}


def variant(name: str) -> ParleyServer:
    """A Parley server with the named change undone ("" for none)."""
    httpx_body, queued_writes = VARIANTS[name] if name else (False, False)
    return ParleyServer(httpx_body=httpx_body, queued_writes=queued_writes)


TARGET_US = 60.0
TARGET_RATIO = 2.5


class Contender:
    def __init__(self, name: str, pid: int, tabs: list[Tab], model: str) -> None:
        self.name, self.pid, self.tabs, self.model = name, pid, tabs, model
        self.rounds: list[dict[str, Any]] = []


async def floor_stats(tab: Tab) -> dict[str, int]:
    await tab.ws.send('{"type":"stats"}')
    async with asyncio.timeout(10):
        while (frame := json.loads(await tab.ws.recv()))["type"] != "stats":
            pass
    return frame


def on_cpu_probe() -> float:
    return machine.cpu_probe_ns(3, time.thread_time_ns)


async def one_round(who: Contender, fake: Fake) -> dict[str, Any]:
    seen = machine.brief()
    probe_before = on_cpu_probe()
    await enqueue(fake, len(who.tabs), TOKENS)
    (user_before, sys_before), fake_before = cpu_split(who.pid), cpu_seconds(fake.proc.pid)
    started = time.monotonic()
    answers = await asyncio.gather(*(stream_one(t, who.model) for t in who.tabs), return_exceptions=True)
    wall = time.monotonic() - started
    await asyncio.sleep(0.2)  # the last final writes and connection hand-backs are part of the cost
    user, system = (after - before for after, before in zip(cpu_split(who.pid), (user_before, sys_before), strict=True))
    cpu = user + system
    probe = (probe_before + on_cpu_probe()) / 2
    ok = [a for a in answers if isinstance(a, dict)]
    tokens = sum(len(a["stamps"]) for a in ok)
    lost = (
        len(answers)
        - len(ok)
        + sum(1 for a in ok if a["end"].get("status") != "complete" or len(a["stamps"]) != TOKENS)
    )
    latency = [ms for a in ok for ms in a["token_ms"]]
    return {
        "us_per_token": cpu / max(tokens, 1) * 1e6,
        "user_us_per_token": user / max(tokens, 1) * 1e6,
        # The same cost in iterations of the probe loop, timed on-CPU around the round.
        "probe_iterations_per_token": cpu / max(tokens, 1) * 1e9 / probe,
        "tokens": tokens,
        "lost": lost,
        "cpu_s": cpu,
        "wall_s": wall,
        "p95_ms": pct(latency, 95),
        "fake_cpu_s": cpu_seconds(fake.proc.pid) - fake_before,
        "machine": seen,
    }


def _row(r: dict[str, Any]) -> str:
    return (
        f"{r['us_per_token']:.1f} µs/token = {r['probe_iterations_per_token']:.0f} probe iterations, "
        f"{r['user_us_per_token']:.1f} µs user "
        f"({r['cpu_s']:.2f} s CPU / {r['tokens']:,} tokens, "
        f"{r['lost']} lost, p95 added {r['p95_ms']:.0f} ms, wall {r['wall_s']:.2f} s; {r['machine']})"
    )


async def _run() -> dict[str, Any]:
    fake = Fake()
    variants = [v for v in os.environ.get("BENCH_CPU_VARIANTS", "").split(",") if v]
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        raise SystemExit(f"BENCH_CPU_VARIANTS: unknown {sorted(unknown)}; known: {sorted(VARIANTS)}")
    parleys = [("Parley", ParleyServer().start())]
    parleys += [(f"Parley, {v}", variant(v).start()) for v in variants]
    floor = FloorServer(fake)
    contenders: list[Contender] = []
    results: dict[str, Any] = {}
    try:
        for name, live in parleys:
            model = live.add_fake(fake)
            tabs = await open_tabs(live, live.sessions(STREAMS))
            contenders.append(Contender(name, live.pid, tabs, model))
        floor_tabs = await open_tabs(floor, ["floor=1"] * STREAMS)  # type: ignore[arg-type]
        contenders.append(Contender("floor", floor.pid, floor_tabs, "fake-model"))
        for who in contenders:  # warm: connections, imports, first queries
            await enqueue(fake, 5, 5)
            await asyncio.gather(*(stream_one(t, who.model) for t in who.tabs[:5]))
        stats_before = await floor_stats(floor_tabs[0])
        for n in range(ROUNDS):
            for who in contenders:
                who.rounds.append(await one_round(who, fake))
                results[f"round {n + 1}: {who.name}"] = _row(who.rounds[-1])
        stats = await floor_stats(floor_tabs[0])
        reads = stats["upstream_reads"] - stats_before["upstream_reads"]
        relayed = stats["tokens"] - stats_before["tokens"]
        results["floor: tokens per upstream read (1.0 = one token per chunk as sent)"] = relayed / max(reads, 1)
        floor_us = [r["us_per_token"] for r in contenders[-1].rounds]
        for who in contenders[:-1]:
            us = [r["us_per_token"] for r in who.rounds]
            ratios = [a / b for a, b in zip(us, floor_us, strict=True)]
            results[f"{who.name}: µs per token, median of rounds"] = statistics.median(us)
            results[f"{who.name}: user-mode µs per token, median"] = statistics.median(
                r["user_us_per_token"] for r in who.rounds
            )
            results[f"{who.name}: probe iterations per token, median"] = statistics.median(
                r["probe_iterations_per_token"] for r in who.rounds
            )
            results[f"{who.name} ÷ floor, median of per-pair ratios"] = statistics.median(ratios)
            results[f"{who.name}: lost answers, all rounds"] = sum(r["lost"] for r in who.rounds)
        results["floor: µs per token, median of rounds"] = statistics.median(floor_us)
        results["floor: user-mode µs per token, median"] = statistics.median(
            r["user_us_per_token"] for r in contenders[-1].rounds
        )
        results["floor: probe iterations per token, median"] = statistics.median(
            r["probe_iterations_per_token"] for r in contenders[-1].rounds
        )
        parley_us = results["Parley: µs per token, median of rounds"]
        ratio = results["Parley ÷ floor, median of per-pair ratios"]
        results["target"] = (
            f"Parley ≤ {TARGET_US:.0f} µs: {'met' if parley_us <= TARGET_US else 'missed'}; "
            f"≤ {TARGET_RATIO}× floor: {'met' if ratio <= TARGET_RATIO else 'missed'}"
        )
    finally:
        await asyncio.gather(*(t.ws.close() for who in contenders for t in who.tabs), return_exceptions=True)
        for _, live in parleys:
            live.stop()
        floor.stop()
        await fake.close()
    return results


def run() -> dict[str, Any]:
    """The figures for docs/performance.md; `python -m bench` shows them as a table."""
    return asyncio.run(_run())


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
    for key, value in {**machine.probe(), **run()}.items():
        print(f"{key}: {value:.2f}" if isinstance(value, float) else f"{key}: {value}")
