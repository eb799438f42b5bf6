"""`make bench`: every benchmark in one run, printed as a table of side-by-side figures."""

from __future__ import annotations

import asyncio
import importlib
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")


def show(title: str, rows: dict[str, object]) -> None:
    print(f"\n## {title}\n")
    print("| measure | value |\n|---|---|")
    for key, value in rows.items():
        print(f"| {key} | {value:.2f} |" if isinstance(value, float) else f"| {key} | {value} |")
    sys.stdout.flush()


def main() -> None:
    from bench import queries, relay

    relay_results = asyncio.run(relay.run())
    show("Relay: Parley vs calling the provider directly", relay_results)
    r = relay_results
    print(
        f"\nTTFT added: {r['ttft_added_ms']:.2f} ms (target < 5); one stream: {r['stream_parley_tps']:,.0f} tokens/s "
        f"(target >= 20,000), {r['stream_parley_tps'] / r['stream_direct_tps']:.2f}x of direct; "
        f"CPU {r['cpu_us_per_token']:.1f} us/token (target < 50); "
        f"{r['concurrent_failures']} of {r['concurrent_streams']} concurrent streams failed, "
        f"{r['concurrent_saved']} saved."
    )
    show("Database work per answer", queries.run())
    # Optional sections contributed by other parts of the app (e.g. in-browser models).
    sections = (
        ("bench.load", "Load on one Daphne process"),
        ("bench.browser_render", "Browser rendering"),
        ("bench.local_models", "In-browser models"),
    )
    for name, title in sections:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError:
            continue
        show(title, module.run())


if __name__ == "__main__":
    main()
