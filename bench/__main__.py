"""`make bench`: every benchmark in one run, printed as a table of side-by-side figures.

Every section starts by measuring the machine (load average and a CPU-speed probe,
bench/machine.py) and prints that beside its figures: on a shared machine they say how
much a figure can be trusted and which runs can be compared.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import sys
from collections.abc import Callable
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")


def show(title: str, rows: dict[str, object]) -> None:
    print(f"\n## {title}\n")
    print("| measure | value |\n|---|---|")
    for key, value in rows.items():
        print(f"| {key} | {value:.2f} |" if isinstance(value, float) else f"| {key} | {value} |")
    sys.stdout.flush()


def section(title: str, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    from bench import machine

    at_start = machine.probe()
    results = run()
    show(title, {**at_start, **results})
    return results


def main() -> None:
    from bench import api, burst, per_token, queries, relay

    r = section("Relay: Parley vs calling the provider directly", lambda: asyncio.run(relay.run()))
    print(
        f"\nTTFT added: {r['ttft_added_ms']:.2f} ms (target < 5); one stream: {r['stream_parley_tps']:,.0f} tokens/s "
        f"(target >= 20,000), {r['stream_parley_tps'] / r['stream_direct_tps']:.2f}x of direct; "
        f"CPU {r['cpu_us_per_token']:.1f} us/token (target < 50); "
        f"{r['concurrent_failures']} of {r['concurrent_streams']} concurrent streams failed, "
        f"{r['concurrent_saved']} saved."
    )
    section("Database work per answer", queries.run)
    section("CPU per relayed token at 100 answers × 50 tokens/s: Parley beside the floor", per_token.run)
    section("A burst of 100 sends: time to ack", burst.run)
    a = section("The OpenAI-compatible API beside the socket, and the response cache", api.run)
    print(
        f"\nAPI: TTFT added {a['ttft_api_added_ms']:.2f} ms (socket {a['ttft_socket_added_ms']:.2f} ms), "
        f"CPU {a['cpu_us_per_token_api']:.1f} us/token (socket {a['cpu_us_per_token_socket']:.1f}); "
        f"cache TTFT: hit {a['cache_ttft_hit_ms']:.2f} ms, miss {a['cache_ttft_miss_ms']:.2f} ms, "
        f"direct {a['cache_ttft_direct_ms']:.2f} ms."
    )
    # Optional sections contributed by other parts of the app (e.g. in-browser models).
    sections = (
        ("bench.load", "Load on one Daphne process"),
        ("bench.cluster", "Load on 1, 2 and 3 processes behind nginx (PostgreSQL + Redis)"),
        ("bench.metering", "Metering: the same answers with a usage record per answer and without"),
        ("bench.attachments", "Attachments: upload to first token, a 5 MB image beside a text-only message"),
        ("bench.browser_render", "Browser rendering"),
        ("bench.local_models", "In-browser models"),
    )
    for name, title in sections:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError:
            continue
        section(title, module.run)


if __name__ == "__main__":
    main()
