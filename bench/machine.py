"""What the machine was like when a figure was taken: load average and a CPU-speed probe.

The same code measured p95 32 ms on a quiet machine and 150–250 ms while other work loaded
its two cores, so no figure is printed without these beside it. The probe is a fixed pure-
Python loop timed in nanoseconds per iteration: it moves with the core's speed and with
the share of it this process gets, which is what every other figure also depends on.
"""

from __future__ import annotations

import os
import statistics
import time

PROBE_ITERATIONS = 200_000


def _loop(n: int) -> int:
    total = 0
    for i in range(n):
        total += i & 7
    return total


def cpu_probe_ns(runs: int = 5) -> float:
    """Median ns per iteration of a fixed loop over ``runs`` runs (~20 ms each on this machine)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        _loop(PROBE_ITERATIONS)
        times.append((time.perf_counter_ns() - start) / PROBE_ITERATIONS)
    return statistics.median(times)


def probe() -> dict[str, object]:
    """The rows every bench section prints beside its figures."""
    one, five, _ = os.getloadavg()
    return {
        "machine: load average 1 / 5 min": f"{one:.2f} / {five:.2f} ({os.cpu_count()} cores)",
        "machine: CPU probe, ns per loop iteration": round(cpu_probe_ns(), 1),
    }


def brief() -> str:
    """The same, in one line: for figures printed per round."""
    one, five, _ = os.getloadavg()
    return f"load {one:.2f}/{five:.2f}, probe {cpu_probe_ns(3):.0f} ns"
