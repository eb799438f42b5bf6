"""The provider side alone: CPU per token of reading 100 answers × 50 tokens/s through a family.

The HTTP client and the adapter chain are two layers of Parley's per-token cost; this
measures them without the rest (no Daphne, no database, no hub): 100 concurrent
``openai_compat.stream`` calls in this process against the fake provider in its own, at
50 tokens/s each, one token per chunk, and this process's CPU divided by the tokens read.
Provider bodies read straight off the connection (providers/transport.py DirectBody) and
through httpx's iterator are measured in alternate rounds, A B A B.

    .venv/bin/python -m bench.provider_read
"""

from __future__ import annotations

import asyncio
import os
import resource
import statistics
import time
from typing import Any

from bench import machine
from bench.load import enqueue
from bench.relay import Fake
from providers import http, openai_compat
from providers.base import ChatMessage, ChatRequest, Target, TextDelta

STREAMS = 100
TOKENS = 150
ROUNDS = int(os.environ.get("BENCH_READ_ROUNDS", "3"))


async def read_one(target: Target) -> int:
    request = ChatRequest(model="fake-model", messages=(ChatMessage("user", "hi"),))
    return len([event async for event in openai_compat.stream(target, request) if isinstance(event, TextDelta)])


async def one_round(fake: Fake, target: Target, direct: bool) -> dict[str, Any]:
    http.DIRECT_BODY = direct
    seen = machine.brief()
    await enqueue(fake, STREAMS, TOKENS)
    before, started = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    tokens = sum(await asyncio.gather(*(read_one(target) for _ in range(STREAMS))))
    after = resource.getrusage(resource.RUSAGE_SELF)
    user, system = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
    return {
        "us_per_token": (user + system) / tokens * 1e6,
        "user_us_per_token": user / tokens * 1e6,
        "tokens": tokens,
        "wall_s": time.monotonic() - started,
        "machine": seen,
    }


async def _run() -> dict[str, Any]:
    fake = Fake()
    target = Target(base_url=fake.url + "/v1", read_timeout=30, first_token_timeout=30)
    results: dict[str, Any] = {}
    rounds: dict[bool, list[float]] = {True: [], False: []}
    user_rounds: dict[bool, list[float]] = {True: [], False: []}
    try:
        await enqueue(fake, STREAMS, 3)
        await asyncio.gather(*(read_one(target) for _ in range(STREAMS)))  # warm: connections
        for n in range(ROUNDS):
            for direct in (True, False):
                r = await one_round(fake, target, direct)
                rounds[direct].append(r["us_per_token"])
                user_rounds[direct].append(r["user_us_per_token"])
                name = "direct body reader" if direct else "httpx body iterator"
                results[f"round {n + 1}: {name}"] = (
                    f"{r['us_per_token']:.1f} µs/token, {r['user_us_per_token']:.1f} of it user "
                    f"({r['tokens']:,} tokens, wall {r['wall_s']:.2f} s; {r['machine']})"
                )
        for label, per in (("all", rounds), ("user-mode", user_rounds)):
            direct_us, httpx_us = statistics.median(per[True]), statistics.median(per[False])
            results[f"{label} CPU: direct / httpx iterator, µs per token, medians"] = (
                f"{direct_us:.1f} / {httpx_us:.1f} "
                f"(saved {httpx_us - direct_us:.1f} µs, {1 - direct_us / httpx_us:.0%})"
            )
    finally:
        http.DIRECT_BODY = True
        await http.aclose_client()
        await fake.close()
    return results


def run() -> dict[str, Any]:
    return asyncio.run(_run())


if __name__ == "__main__":
    for key, value in {**machine.probe(), **run()}.items():
        print(f"{key}: {value:.2f}" if isinstance(value, float) else f"{key}: {value}")
