"""Where Parley's CPU per relayed token goes, by layer: py-spy on the real server under load.

Runs rounds of bench.per_token (100 answers × 50 tokens/s, one distinct user per
socket) against Parley as `manage.py serve` runs it, with py-spy sampling every thread of
the server process from outside (``--nonblocking``: the server is never paused, so its
timing is undisturbed). Each sample is charged to the innermost frame that belongs to a
known layer (see LAYERS), and the layers' shares are scaled by the round's measured CPU
per token, so the table reads in µs per token. Samples whose stack has no such frame at
all are the event loop itself (asyncio, selectors, the Twisted reactor's loop glue).

    make profile                                   # installs py-spy, prints the table
    .venv/bin/python -m bench.profile --httpx-body # the same with the old body reader
    .venv/bin/python -m bench.profile --keep DIR   # also keep the raw stacks in DIR
    .venv/bin/python -m bench.profile --burst      # bursts of 100 sends instead, per send

The raw stacks (``profile.txt``, py-spy's collapsed format: one stack per line with its
sample count) open in speedscope or flamegraph.pl for the whole picture.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from bench import machine
from bench.burst import burst
from bench.load import enqueue, open_tabs, pct, stream_one
from bench.per_token import STREAMS, Contender, one_round
from bench.relay import Fake, Tab, cpu_seconds
from bench.servers import ParleyServer
from tests.live import ROOT

# (layer, path fragments), tried in this order on each frame; a frame's file decides.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "HTTP client: httpx, httpcore, h11, providers/transport.py + chunked.py",
        ("/httpx/", "/httpcore/", "/h11/", "/anyio/", "/sniffio/", "/providers/transport.py", "/providers/chunked.py"),
    ),
    ("SSE decoder: providers/sse.py", ("/providers/sse.py",)),
    ("adapter chain: providers/ (family, http.py, registry)", ("/providers/",)),
    (
        "database: ORM, sqlite3, services, sync_to_async hops",
        (
            "/django/db/",
            "/sqlite3/",
            "/asgiref/",
            "/channels/db.py",
            "/chat/services.py",
            "/chat/conversation",
            "/chat/access.py",
            "/chat/models.py",
            "/concurrent/futures/",
        ),
    ),
    ("frames on the wire: Twisted, Daphne, autobahn, txaio", ("/twisted/", "/daphne/", "/autobahn/", "/txaio/")),
    ("consumer: chat/consumers.py, Channels", ("/channels/", "/chat/consumers.py")),
    (
        "generation + hub: chat/generation.py, frames, serializers",
        ("/chat/generation.py", "/chat/frames.py", "/chat/serializers.py"),
    ),
    ("other Parley and Django", ("/chat/", "/chatsite/", "/django/")),
]
LOOP = "event loop: epoll, asyncio's socket reads (the provider sockets), loop glue"


def layer_of(frames: list[str]) -> str:
    """The layer of the innermost frame that belongs to one; ``frames`` run outermost first.

    The last layer (generic Parley and Django code, such as settings or connection
    lookups) is only a fallback: a stack whose innermost named frame is Django's
    connection handler, called from a database hop, is database work.
    """
    *specific, (fallback, generic) = LAYERS
    # On the loop's thread only what runs inside a callback counts: the frames around the
    # dispatch (serve.py, Daphne's Server.run, the Twisted reactor's run) are in every stack.
    for i, frame in enumerate(frames):
        if frame.startswith("Handle._run ("):
            frames = frames[i + 1 :]
            break
    else:
        if any(frame.startswith("BaseEventLoop._run_once (") for frame in frames):
            return LOOP  # between callbacks: epoll, timers, the loop's own work
    found = LOOP
    for frame in reversed(frames):
        path = frame[frame.rfind("(") + 1 :]
        for name, fragments in specific:
            if any(f in path for f in fragments):
                return name
        if found == LOOP and any(f in path for f in generic):
            found = fallback
    return found


def parse(raw: str) -> tuple[collections.Counter[str], collections.Counter[str], collections.Counter[str], int]:
    """(samples by layer, by innermost function, by thread, total) from py-spy's raw output."""
    layers: collections.Counter[str] = collections.Counter()
    leaves: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        thread, *frames = stack.split(";")
        total += n
        layers[layer_of(frames)] += n
        # "thread (123): MainThread" → "MainThread"; workers are numbered, their pools are not.
        threads[thread.partition(": ")[2].rstrip("-_0123456789") or "unnamed"] += n
        if frames:
            leaf = frames[-1]
            function, path = leaf[: leaf.rfind(" (")], leaf[leaf.rfind("(") + 1 : leaf.rfind(":")]
            short = re.sub(r".*/(site-packages|python3\.\d+)/", "", path).replace(str(ROOT) + "/", "")
            leaves[f"{function} ({short})"] += n
    return layers, leaves, threads, total


def start_spy(pid: int, rate: int, out: str) -> subprocess.Popen[bytes]:
    spy = subprocess.Popen(
        [
            os.path.join(os.path.dirname(sys.executable), "py-spy"),
            "record",
            "--pid",
            str(pid),
            "--rate",
            str(rate),
            "--nonblocking",
            "--threads",
            "--full-filenames",
            "--format",
            "raw",
            "-o",
            out,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    time.sleep(1.0)  # attached before the round starts
    return spy


def stop_spy(spy: subprocess.Popen[bytes], out: str) -> str:
    """Stop sampling (py-spy writes its file on SIGINT) and return the raw stacks."""
    spy.send_signal(signal.SIGINT)
    _, err = spy.communicate(timeout=30)
    if not os.path.exists(out):
        raise RuntimeError(f"py-spy wrote nothing: {err.decode(errors='replace')[-500:]}")
    with open(out) as f:
        return f.read()


async def _rounds(who: Contender, fake: Fake, rounds: int) -> tuple[str, float, str]:
    measured = [await one_round(who, fake) for _ in range(rounds)]
    us = statistics.median(r["us_per_token"] for r in measured)
    lost = sum(r["lost"] for r in measured)
    return (
        "token",
        us,
        (
            f"{us:.1f} µs/token (median), {sum(r['tokens'] for r in measured):,} tokens, {lost} lost; "
            + "; ".join(r["machine"] for r in measured)
        ),
    )


async def _bursts(live: ParleyServer, tabs: list[Tab], model: str, fake: Fake, rounds: int) -> tuple[str, float, str]:
    """Bursts of 100 sends (bench.burst): the cost is per send, streaming of its short answer included."""
    cpu, acks, seen = cpu_seconds(live.pid), [], []
    for _ in range(rounds):
        seen.append(machine.brief())
        acks += [ms for ms, _ in await burst(tabs, model, fake)]
    us = (cpu_seconds(live.pid) - cpu) / len(acks) * 1e6
    return (
        "send",
        us,
        (f"{us:.0f} µs/send, ack p50 {pct(acks, 50):.0f} / p95 {pct(acks, 95):.0f} ms; " + "; ".join(seen)),
    )


async def _profile(httpx_body: bool, keep: str | None, rate: int, rounds: int, burst_sends: bool) -> dict[str, Any]:
    fake = Fake()
    live = ParleyServer(httpx_body=httpx_body).start()
    workdir = tempfile.mkdtemp(prefix="parley-profile-")
    out = os.path.join(workdir, "profile.txt")
    results: dict[str, Any] = {}
    tabs = []
    try:
        model = live.add_fake(fake)
        tabs = await open_tabs(live, live.sessions(STREAMS))
        who = Contender("Parley", live.pid, tabs, model)
        await enqueue(fake, 5, 5)
        await asyncio.gather(*(stream_one(t, model) for t in tabs[:5]))
        spy = start_spy(live.pid, rate, out)
        if burst_sends:
            unit, us, summary = await _bursts(live, tabs, model, fake, rounds)
        else:
            unit, us, summary = await _rounds(who, fake, rounds)
        layers, leaves, threads, total = parse(stop_spy(spy, out))
        results[f"measured, {rounds} rounds with py-spy attached"] = summary
        results["samples, by thread"] = f"{total:,}: " + ", ".join(
            f"{name} {n / total:.0%}" for name, n in threads.most_common()
        )
        for name, n in layers.most_common():
            results[name] = f"{n / total * us:5.1f} µs/{unit} ({n / total:5.1%})"
        for leaf, n in leaves.most_common(15):
            results[f"top: {leaf}"] = f"{n / total:.1%}"
    finally:
        await asyncio.gather(*(t.ws.close() for t in tabs), return_exceptions=True)
        live.stop()
        await fake.close()
        if keep:
            os.makedirs(keep, exist_ok=True)
            if os.path.exists(out):
                shutil.copy(out, os.path.join(keep, "profile.txt"))
        shutil.rmtree(workdir, ignore_errors=True)
    return results


def run(
    httpx_body: bool = False, keep: str | None = None, rate: int = 200, rounds: int = 3, burst_sends: bool = False
) -> dict[str, Any]:
    return asyncio.run(_profile(httpx_body, keep, rate, rounds, burst_sends))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--httpx-body", action="store_true", help="read provider bodies through httpx's iterator")
    parser.add_argument("--keep", metavar="DIR", help="keep the raw stacks (profile.txt) in DIR")
    parser.add_argument("--rate", type=int, default=200, help="samples per second (default 200)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of 100 answers sampled (default 3)")
    parser.add_argument("--burst", action="store_true", help="profile bursts of 100 sends (bench.burst) instead")
    args = parser.parse_args()
    figures = run(args.httpx_body, args.keep, args.rate, args.rounds, args.burst)
    for key, value in {**machine.probe(), **figures}.items():
        print(f"| {key} | {value} |")


if __name__ == "__main__":
    main()
