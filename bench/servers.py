"""The processes a bench drives: Parley through bench.traced_serve, and the floor relay.

Both listen on loopback and both call the one fake provider (bench.relay.Fake, its own
process), so the clients in the bench process can drive them alike.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from bench.relay import BENCH_ENV, Fake, make_sessions, model_id
from tests.live import ROOT, LiveServer, free_port, wait_for_port


class ParleyServer(LiveServer):
    """Parley as `manage.py serve` runs it, launched through bench.traced_serve.

    ``counts``: SQLite statements counted (see bench.traced_serve); ``httpx_body``: provider
    bodies read through httpx's iterator, the way they were read before the direct reader;
    ``queued_writes``: Twisted's writes left to its next pass, as before send_writes_at_once.
    """

    def __init__(
        self,
        extra_env: dict[str, str] | None = None,
        *,
        counts: bool = False,
        httpx_body: bool = False,
        queued_writes: bool = False,
    ) -> None:
        super().__init__({**BENCH_ENV, **(extra_env or {})})
        self.counts_path = os.path.join(self.dir, "counts.json") if counts else ""
        if counts:
            self.env["PARLEY_BENCH_COUNTS"] = self.counts_path
        if httpx_body:
            self.env["PARLEY_BENCH_HTTPX_BODY"] = "1"
        if queued_writes:
            self.env["PARLEY_BENCH_QUEUED_WRITES"] = "1"

    def start(self) -> ParleyServer:
        self.manage("migrate", "--noinput")
        log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.traced_serve", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_for_port(self.port)
        return self

    def counts(self) -> dict[str, int]:
        time.sleep(0.3)  # the launcher writes its counts every 0.25 s
        with open(self.counts_path) as f:
            return dict(json.load(f))

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def add_fake(self, fake: Fake) -> str:
        """Register the fake provider; returns the model id a `send` names."""
        self.add_fake_provider(fake.url, model="fake-model=Fake", default="fake-model")
        return model_id(self)

    def sessions(self, count: int) -> list[str]:
        return make_sessions(self, count)


class FloorServer:
    """bench.floor in its own process, relaying from ``fake``."""

    def __init__(self, fake: Fake) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.floor", "--port", str(self.port), "--upstream", fake.url],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
