"""What the machine was like when a figure was taken: load average and a CPU-speed probe.

The same code measured p95 32 ms on a quiet machine and 150–250 ms while other work loaded
its two cores, so no figure is printed without these beside it. The probe is a fixed pure-
Python loop timed in nanoseconds per iteration, by the wall clock (the core's speed and the
share of it this process gets) and by on-CPU time (the core's speed alone, which on this
shared machine still swings almost twofold within a minute): per-token CPU figures can be
read in probe iterations, the same work whatever the core's speed at that moment.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

PROBE_ITERATIONS = 200_000


def _loop(n: int) -> int:
    total = 0
    for i in range(n):
        total += i & 7
    return total


def cpu_probe_ns(runs: int = 5, clock: Callable[[], int] = time.perf_counter_ns) -> float:
    """Median ns per iteration of a fixed loop over ``runs`` runs (~10-20 ms each here).

    By the wall clock (the default) it also counts time this process waited for a core;
    by ``time.thread_time_ns`` only the speed of the core while it ran (which still moves
    with what shares it: the other hyperthread, the caches).
    """
    times = []
    for _ in range(runs):
        start = clock()
        _loop(PROBE_ITERATIONS)
        times.append((clock() - start) / PROBE_ITERATIONS)
    return statistics.median(times)


def probe() -> dict[str, object]:
    """The rows every bench section prints beside its figures."""
    one, five, _ = os.getloadavg()
    return {
        "machine: load average 1 / 5 min": f"{one:.2f} / {five:.2f} ({os.cpu_count()} cores)",
        "machine: CPU probe, ns per loop iteration (wall / on-CPU)": (
            f"{cpu_probe_ns():.0f} / {cpu_probe_ns(clock=time.thread_time_ns):.0f}"
        ),
    }


def brief() -> str:
    """The same, in one line: for figures printed per round."""
    one, five, _ = os.getloadavg()
    return f"load {one:.2f}/{five:.2f}, probe {cpu_probe_ns(3):.0f}/{cpu_probe_ns(3, time.thread_time_ns):.0f} ns"
