"""What metering costs: the same answers with a usage record per answer and without.

Two measures, side by side:

1. All in, as bench.per_token measures it: the server process's CPU per relayed token
   over a round of BENCH_METERING_STREAMS answers (50) × 150 tokens at 50 tokens/s, one
   Parley with metering (the default) and one with PARLEY_METERING=0 (a switch that exists
   for this benchmark only: no UsageRecord is built or saved), on one fake provider, in
   BENCH_METERING_ROUNDS pairs (3) whose order alternates (on-off, off-on, ...), each
   round with the machine's load beside it.
2. The final save alone, in this process: chat.store.do_finish_message with the usage
   record (built by chat.metering.record, as the chat sink does) and without, interleaved,
   BENCH_METERING_SAVES times each (400); the difference is what metering adds per answer,
   which divided by an answer's tokens is what it adds per token.

The models are priced, so the cost is computed as in a deployment that charges.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import statistics
import tempfile
import time
import uuid
from typing import Any

from bench import machine
from bench.load import open_tabs
from bench.per_token import TOKENS, Contender, one_round
from bench.relay import Fake
from bench.servers import ParleyServer

STREAMS = int(os.environ.get("BENCH_METERING_STREAMS", "50"))
ROUNDS = int(os.environ.get("BENCH_METERING_ROUNDS", "3"))
SAVES = int(os.environ.get("BENCH_METERING_SAVES", "400"))
PRICE = "from chat.models import ChatModel; ChatModel.objects.update(price_input_per_mtok=3, price_output_per_mtok=15)"


def _usage_rows(live: ParleyServer) -> int:
    with sqlite3.connect(live.env["SQLITE_PATH"]) as db:
        return int(db.execute("select count(*) from chat_usagerecord").fetchone()[0])


async def _end_to_end() -> dict[str, Any]:
    fake = Fake()
    servers = {"metering on": ParleyServer().start(), "metering off": ParleyServer({"PARLEY_METERING": "0"}).start()}
    contenders: list[Contender] = []
    results: dict[str, Any] = {}
    try:
        for name, live in servers.items():
            model = live.add_fake(fake)
            live.manage("shell", "-c", PRICE)
            contenders.append(Contender(name, live.pid, await open_tabs(live, live.sessions(STREAMS)), model))
        for who in contenders:  # warm: connections, imports, first queries
            await one_round(Contender(who.name, who.pid, who.tabs[:5], who.model), fake)
        for n in range(ROUNDS):
            for who in contenders if n % 2 == 0 else contenders[::-1]:
                r = await one_round(who, fake)
                who.rounds.append(r)
                results[f"round {n + 1}: {who.name}"] = (
                    f"{r['us_per_token']:.1f} µs/token = {r['probe_iterations_per_token']:.0f} probe iterations "
                    f"({r['cpu_s']:.2f} s CPU / {r['tokens']:,} tokens, {r['lost']} lost; {r['machine']})"
                )
        on, off = contenders
        pairs = [a["us_per_token"] - b["us_per_token"] for a, b in zip(on.rounds, off.rounds, strict=True)]
        for who in contenders:
            results[f"{who.name}: µs per token, median of rounds"] = statistics.median(
                r["us_per_token"] for r in who.rounds
            )
            results[f"{who.name}: probe iterations per token, median"] = statistics.median(
                r["probe_iterations_per_token"] for r in who.rounds
            )
            results[f"{who.name}: lost answers, all rounds"] = sum(r["lost"] for r in who.rounds)
        results["on − off, µs per token, median of per-pair differences"] = statistics.median(pairs)
        results["on − off, µs per token, each pair"] = ", ".join(f"{d:+.1f}" for d in pairs)
        results["usage records written (on / off)"] = (
            f"{_usage_rows(servers['metering on'])} / {_usage_rows(servers['metering off'])}"
        )
    finally:
        await asyncio.gather(*(t.ws.close() for who in contenders for t in who.tabs), return_exceptions=True)
        for live in servers.values():
            live.stop()
        await fake.close()
    return results


def _django() -> None:
    """A migrated database for the final-save measure: bench.queries's, or a new one."""
    from django.apps import apps

    if not apps.ready:
        from tests.live import TEST_KEY

        directory = tempfile.mkdtemp(prefix="parley-metering-")
        os.environ.update(
            SECRET_KEY="bench",
            PARLEY_ENCRYPTION_KEYS=TEST_KEY,
            SQLITE_PATH=os.path.join(directory, "db.sqlite3"),
            PARLEY_AUTO_TITLES="0",
        )
        import django

        django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _final_saves() -> dict[str, Any]:
    _django()
    from django.contrib.auth.models import User

    from chat import metering, store
    from chat.generation.job import Outcome
    from chat.models import ChatModel, Conversation, Message, Provider, Source

    user = User.objects.create_user(f"meter-{uuid.uuid4().hex[:8]}")
    provider = Provider.objects.create(
        name=f"m{uuid.uuid4().hex[:8]}", family="openai", base_url="http://127.0.0.1:9/v1"
    )
    model = ChatModel.objects.create(
        provider=provider, model_id="priced", price_input_per_mtok=3, price_output_per_mtok=15
    )
    conversation = Conversation.objects.create(owner=user)
    answer = Message.objects.create(conversation=conversation, role="assistant", content="", status="streaming")
    outcome = Outcome(
        status="complete",
        reason="",
        content="x" * 600,
        reasoning="",
        seq=TOKENS,
        input_tokens=10,
        output_tokens=TOKENS,
        ttft_ms=40,
        duration_ms=3000,
    )
    timings: dict[bool, list[int]] = {True: [], False: []}
    building: list[int] = []
    seen = machine.brief()
    for i in range(2 * SAVES + 20):
        metered = i % 2 == 0
        started = time.perf_counter_ns()
        usage = metering.record(user, Source.CHAT, model, outcome, message_id=answer.id) if metered else None
        built = time.perf_counter_ns()
        store.do_finish_message(answer.id, conversation.id, outcome, usage)
        if i >= 20:  # the first few warm the statement cache and the file
            timings[metered].append(time.perf_counter_ns() - started)
            if metered:
                building.append(built - started)
    on, off = (statistics.median(timings[m]) / 1000 for m in (True, False))
    return {
        "final save with the usage record, µs (median)": on,
        "final save without it, µs (median)": off,
        "of which building the record (cost included), µs (median)": statistics.median(building) / 1000,
        "metering per answer, µs": on - off,
        f"metering per token at {TOKENS} tokens an answer, µs": (on - off) / TOKENS,
        "metering per token at 2,000 tokens an answer, µs": (on - off) / 2000,
        "final saves: machine": seen,
    }


def run() -> dict[str, Any]:
    """The figures for docs/performance.md; `python -m bench` shows them as a table."""
    return {**asyncio.run(_end_to_end()), **_final_saves()}


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
    for key, value in {**machine.probe(), **run()}.items():
        print(f"{key}: {value:.2f}" if isinstance(value, float) else f"{key}: {value}")
