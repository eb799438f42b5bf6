"""`manage.py serve` with every SQLite statement counted: the load benchmark's measurement copy.

Another process cannot see a SQLite connection's statements, so the benchmark runs the
same server code through this launcher, which sets sqlite3's trace callback on each new
connection and writes the running counts to $PARLEY_BENCH_COUNTS four times a second.
The callback only compares a few characters per statement, so the figures it disturbs
(CPU) are disturbed by far less than their noise.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
    import django

    django.setup()
    from django.core.management import execute_from_command_line
    from django.db.backends.signals import connection_created

    counts = {"writes": 0, "transactions": 0, "reads": 0}
    lock = threading.Lock()

    def trace(sql: str) -> None:
        head = sql.lstrip()[:6].upper()
        key = (
            "writes" if head in ("INSERT", "UPDATE", "DELETE")
            else "transactions" if head.startswith("BEGIN")
            else "reads" if head == "SELECT"
            else None
        )
        if key is not None:
            with lock:
                counts[key] += 1

    def on_connect(sender: Any, connection: Any, **kwargs: Any) -> None:
        if connection.vendor == "sqlite":
            connection.connection.set_trace_callback(trace)

    connection_created.connect(on_connect)
    path = os.environ["PARLEY_BENCH_COUNTS"]

    def dump() -> None:
        while True:
            with lock:
                text = json.dumps(counts)
            with open(path + ".tmp", "w") as f:
                f.write(text)
            os.replace(path + ".tmp", path)
            time.sleep(0.25)

    threading.Thread(target=dump, name="bench-counts", daemon=True).start()
    execute_from_command_line(["manage.py", "serve", *sys.argv[1:]])


if __name__ == "__main__":
    main()
