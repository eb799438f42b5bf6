"""A burst of sends: 100 `send` frames arriving at once, each answered by `ack` once saved.

100 sockets of 100 distinct users, each starting a new conversation of its own, all
sent in one tight loop (the 100th leaves the client within milliseconds of the first).
The time to `ack` is measured per socket from the moment its own frame was sent; an
`ack` means the user's message is saved, so this is the write path under a burst: one
SQLite file, Channels' one database thread. Each answer is short (10 tokens at 50
tokens/s), so a burst overlaps a little streaming, as a real one would. The floor runs
the same bursts interleaved (it saves nothing: its figure is the socket and loop alone).

BENCH_BURSTS sets the bursts per server (3); figures are over all of them.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from typing import Any

from bench import machine
from bench.load import enqueue, open_tabs, pct, stream_one
from bench.relay import Fake, Tab
from bench.servers import FloorServer, ParleyServer

SENDS = 100
BURSTS = int(os.environ.get("BENCH_BURSTS", "3"))
TARGET_P95_MS = 100.0


async def answer_after(tab: Tab, client_id: str, sent: float) -> tuple[float, str]:
    """(ms from send to ack, the answer's final status) for one socket of the burst."""
    ack_ms = float("nan")
    conversation = None
    async with asyncio.timeout(60):
        while True:
            frame = json.loads(await tab.ws.recv())
            if frame["type"] == "ack" and frame.get("client_id") == client_id:
                ack_ms = (time.monotonic() - sent) * 1000
                conversation = frame["conversation"]["id"]
            elif frame["type"] == "error" and frame.get("client_id") == client_id:
                return ack_ms, "error: " + str(frame.get("code", frame.get("kind", "")))
            elif frame["type"] == "end" and frame.get("conversation") == conversation:
                return ack_ms, str(frame.get("status"))


async def burst(tabs: list[Tab], model: str, fake: Fake) -> list[tuple[float, str]]:
    await enqueue(fake, len(tabs), 10)
    ids = [str(uuid.uuid4()) for _ in tabs]
    frames = [
        json.dumps({"type": "send", "client_id": i, "conversation": None, "model": model, "content": "burst"})
        for i in ids
    ]
    sent: list[float] = []
    for tab, frame in zip(tabs, frames, strict=True):
        await tab.ws.send(frame)
        sent.append(time.monotonic())
    return await asyncio.gather(*(answer_after(t, i, s) for t, i, s in zip(tabs, ids, sent, strict=True)))


def _figures(results: list[tuple[float, str]]) -> str:
    acks = [ms for ms, _ in results]
    failed = sum(1 for _, status in results if status != "complete")
    return (
        f"p50 {pct(acks, 50):.0f} / p95 {pct(acks, 95):.0f} / max {max(acks):.0f} ms"
        f" ({len(acks)} sends, {failed} not complete)"
    )


async def _run() -> dict[str, Any]:
    fake = Fake()
    live = ParleyServer().start()
    floor = FloorServer(fake)
    results: dict[str, Any] = {}
    tabs: list[Tab] = []
    try:
        model = live.add_fake(fake)
        parley_tabs = await open_tabs(live, live.sessions(SENDS))
        floor_tabs = await open_tabs(floor, ["floor=1"] * SENDS)  # type: ignore[arg-type]
        tabs = parley_tabs + floor_tabs
        await enqueue(fake, 10, 5)  # warm: connections, imports, first queries
        await asyncio.gather(
            *(
                stream_one(t, m)
                for t, m in [(t, model) for t in parley_tabs[:5]] + [(t, "fake-model") for t in floor_tabs[:5]]
            )
        )
        parley_all: list[tuple[float, str]] = []
        floor_all: list[tuple[float, str]] = []
        for n in range(BURSTS):
            seen = machine.brief()
            parley = await burst(parley_tabs, model, fake)
            parley_all += parley
            results[f"burst {n + 1}: Parley"] = f"{_figures(parley)}; {seen}"
            seen = machine.brief()
            floor_burst = await burst(floor_tabs, "fake-model", fake)
            floor_all += floor_burst
            results[f"burst {n + 1}: floor"] = f"{_figures(floor_burst)}; {seen}"
        results["Parley: send → ack, all bursts"] = _figures(parley_all)
        results["floor: send → ack, all bursts"] = _figures(floor_all)
        p95 = pct([ms for ms, _ in parley_all], 95)
        results["target"] = f"p95 < {TARGET_P95_MS:.0f} ms: {'met' if p95 < TARGET_P95_MS else 'missed'}"
    finally:
        await asyncio.gather(*(t.ws.close() for t in tabs), return_exceptions=True)
        live.stop()
        floor.stop()
        await fake.close()
    return results


def run() -> dict[str, Any]:
    return asyncio.run(_run())


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
    for key, value in {**machine.probe(), **run()}.items():
        print(f"{key}: {value}")
