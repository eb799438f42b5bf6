"""`manage.py serve` with the benchmark's instruments: the measurement copy of the server.

It serves exactly what `manage.py serve` serves, plus, when asked through the environment:

- PARLEY_BENCH_COUNTS=path: every SQLite statement counted. Another process cannot see a
  SQLite connection's statements, so this launcher sets sqlite3's trace callback on each
  new connection and writes the running counts to that file four times a second. The
  callback only compares a few characters per statement, so the figures it disturbs
  (CPU) are disturbed by far less than their noise.
- PARLEY_BENCH_HTTPX_BODY=1: provider response bodies are read through httpx's iterator
  instead of straight off the connection (providers/http.py DIRECT_BODY), so the bench
  can measure the two side by side in one run.
- PARLEY_BENCH_QUEUED_WRITES=1: Twisted queues every write for the reactor's next pass, as
  it does unpatched (chatsite/private_apis.py send_writes_at_once is skipped).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any


def count_statements(path: str) -> None:
    from django.db.backends.signals import connection_created

    counts = {"writes": 0, "transactions": 0, "reads": 0}
    lock = threading.Lock()

    def trace(sql: str) -> None:
        head = sql.lstrip()[:6].upper()
        key = (
            "writes"
            if head in ("INSERT", "UPDATE", "DELETE")
            else "transactions"
            if head.startswith("BEGIN")
            else "reads"
            if head == "SELECT"
            else None
        )
        if key is not None:
            with lock:
                counts[key] += 1

    def on_connect(sender: Any, connection: Any, **kwargs: Any) -> None:
        if connection.vendor == "sqlite":
            connection.connection.set_trace_callback(trace)

    connection_created.connect(on_connect, weak=False)

    def dump() -> None:
        while True:
            with lock:
                text = json.dumps(counts)
            with open(path + ".tmp", "w") as f:
                f.write(text)
            os.replace(path + ".tmp", path)
            time.sleep(0.25)

    threading.Thread(target=dump, name="bench-counts", daemon=True).start()


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
    import django

    django.setup()
    from django.core.management import execute_from_command_line

    if os.environ.get("PARLEY_BENCH_COUNTS"):
        count_statements(os.environ["PARLEY_BENCH_COUNTS"])
    if os.environ.get("PARLEY_BENCH_HTTPX_BODY") == "1":
        from providers import http

        http.DIRECT_BODY = False
    if os.environ.get("PARLEY_BENCH_QUEUED_WRITES") == "1":
        from chatsite import private_apis

        private_apis.send_writes_at_once = lambda connection_class=None: None
    execute_from_command_line(["manage.py", "serve", *sys.argv[1:]])


if __name__ == "__main__":
    main()
