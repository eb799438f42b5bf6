"""A real Parley: migrated SQLite file + Daphne subprocess on a free loopback port.

Used by the browser tests and the benchmark, so both exercise exactly what `make run` serves.
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST_KEY = "pN3Y0c9n0v7cX8d2dJ5H8mI1lJx8zQ2m3P0r6T9yW4s="


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listened on port {port} within {timeout} s")


def _uuid_arg(value: object, postgres: bool) -> object:
    import uuid

    if isinstance(value, str) and len(value) in (32, 36):
        try:
            value = uuid.UUID(value)
        except ValueError:
            return value
    if isinstance(value, uuid.UUID):
        return str(value) if postgres else value.hex
    return value


def fresh_postgres(base: str, migrated: bool = True) -> str:
    """A new database beside `base`'s; its URL. Already migrated, unless `migrated` is False.

    Migrating a PostgreSQL database takes seconds, and the suite starts dozens of servers:
    each new one is a copy of a template migrated once per set of migration files.
    """
    import uuid

    import psycopg

    server, _, _ = base.rpartition("/")
    name = f"parley_live_{uuid.uuid4().hex[:12]}"
    template = _migrated_template(server) if migrated else "template1"
    with psycopg.connect(server + "/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return f"{server}/{name}"


def _migrations_digest() -> str:
    import hashlib

    files = sorted((ROOT / "chat" / "migrations").glob("*.py"))
    return hashlib.sha256(b"".join(f.name.encode() + f.read_bytes() for f in files)).hexdigest()[:12]


def migrated_sqlite(path: str) -> None:
    """Put a migrated SQLite database at `path`: a copy of one migrated once per migration set."""
    import fcntl

    template = os.path.join(tempfile.gettempdir(), f"parley-template-{_migrations_digest()}.sqlite3")
    with open(template + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(template):
            building = template + ".building"
            for leftover in (building, building + "-wal", building + "-shm"):
                if os.path.exists(leftover):
                    os.remove(leftover)
            env = {**os.environ, "SQLITE_PATH": building, "SECRET_KEY": "template", "PARLEY_ENCRYPTION_KEYS": TEST_KEY}
            env.pop("DJANGO_SETTINGS_MODULE", None)
            env.pop("DATABASE_URL", None)
            result = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env,
                                    capture_output=True, text=True, timeout=300)
            if result.returncode != 0:
                raise RuntimeError(f"migrating the template database failed:\n{result.stdout}\n{result.stderr}")
            with sqlite3.connect(building) as db:  # fold the WAL into the file before copying it
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                db.execute("PRAGMA journal_mode=DELETE")
            os.replace(building, template)
    shutil.copyfile(template, path)


def _migrated_template(server: str) -> str:
    import fcntl

    import psycopg

    name = f"parley_template_{_migrations_digest()}"
    with open(os.path.join(tempfile.gettempdir(), f"{name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one migrates; the others wait for it
        with psycopg.connect(server + "/postgres", autocommit=True) as conn:
            if conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone():
                return name
            conn.execute(f'CREATE DATABASE "{name}"')
        env = {**os.environ, "DATABASE_URL": f"{server}/{name}", "SECRET_KEY": "template",
               "PARLEY_ENCRYPTION_KEYS": TEST_KEY}
        env.pop("DJANGO_SETTINGS_MODULE", None)
        result = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=300)
        if result.returncode != 0:
            with psycopg.connect(server + "/postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            raise RuntimeError(f"migrating the template database failed:\n{result.stdout}\n{result.stderr}")
        return name


def drop_postgres(url: str) -> None:
    import psycopg

    server, _, name = url.rpartition("/")
    with psycopg.connect(server + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class LiveServer:
    """A Parley process of its own. Its database is a fresh SQLite file, or — when the
    environment names a PostgreSQL DATABASE_URL (`make test-postgres`) — a fresh database
    made on that server and dropped afterwards; `extra_env` naming DATABASE_URL shares that
    one (several processes of one deployment)."""

    def __init__(self, extra_env: dict[str, str] | None = None) -> None:
        self.dir = tempfile.mkdtemp(prefix="parley-live-")
        self.made_db: str | None = None
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "SECRET_KEY": "live-test-secret",
            "PARLEY_ENCRYPTION_KEYS": TEST_KEY,
            "SQLITE_PATH": os.path.join(self.dir, "parley.sqlite3"),
            "DEBUG": "0",
            "PYTHONUNBUFFERED": "1",
            **(extra_env or {}),
        }
        self.env.pop("DJANGO_SETTINGS_MODULE", None)
        self.migrated = False
        if self.env.get("DATABASE_URL") and "DATABASE_URL" not in (extra_env or {}):
            self.env["DATABASE_URL"] = self.made_db = fresh_postgres(self.env["DATABASE_URL"])
            self.migrated = True
        elif not self.env.get("DATABASE_URL") and not os.path.exists(self.env["SQLITE_PATH"]):
            migrated_sqlite(self.env["SQLITE_PATH"])
            self.migrated = True
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = os.path.join(self.dir, "server.log")

    def manage(self, *args: str, stdin: str | None = None) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT, env=self.env, input=stdin, capture_output=True, text=True, timeout=120,
        )
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def add_fake_provider(
        self,
        url: str,
        model: str = "fake-model",
        default: str | None = None,
        label: str | None = None,
        also: tuple[str, ...] = (),
    ) -> str:
        """Register the fake provider at ``url`` (its origin) as the OpenAI-compatible provider
        "fake" with one model (``id`` or ``id=Display name``) and any ``also``, through the admins' command."""
        extra = (["--default", default] if default else []) + (["--label", label] if label else [])
        extra += [arg for more in also for arg in ("--model", more)]
        return self.manage("provider", "add", "fake", "--kind", "openai", "--base-url", url + "/v1", "--model", model, *extra)

    def create_user(self, username: str, password: str, superuser: bool = False) -> None:
        make = "create_superuser" if superuser else "create_user"
        self.manage(
            "shell", "-c",
            f"from django.contrib.auth.models import User; User.objects.{make}({username!r}, password={password!r})",
        )

    def start(self, migrate: bool = True) -> LiveServer:
        if migrate and not self.migrated:
            self.manage("migrate", "--noinput")
            self.migrated = True
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )
        wait_for_port(self.port)
        return self

    # --- sharing one server between tests -------------------------------------------------
    def snapshot(self) -> None:
        """Remember which rows exist now; restore() deletes every row added since.

        Browser tests share one server per module (starting one costs 8-12 s): each test
        gets the data the module set up, and nothing a previous test left behind.
        """
        with sqlite3.connect(self.env["SQLITE_PATH"]) as db:
            self._tables = [row[0] for row in db.execute(
                "select name from sqlite_master where type='table' and name not like 'sqlite_%'"
            )]
            self._rows = {t: {r[0] for r in db.execute(f'select rowid from "{t}"')} for t in self._tables}

    def restore(self, settle_seconds: float = 20) -> None:
        """Back to the snapshot, once no answer is still being written by an earlier test."""
        db = sqlite3.connect(self.env["SQLITE_PATH"], timeout=20)
        try:
            deadline = time.monotonic() + settle_seconds
            while db.execute("select count(*) from chat_message where status='streaming'").fetchone()[0]:
                if time.monotonic() > deadline:
                    raise RuntimeError("an answer from an earlier test is still streaming")
                time.sleep(0.05)
            with db:
                for table in self._tables:
                    keep = self._rows[table]
                    added = [r[0] for r in db.execute(f'select rowid from "{table}"') if r[0] not in keep]
                    for start in range(0, len(added), 500):
                        chunk = added[start : start + 500]
                        db.execute(f'delete from "{table}" where rowid in ({",".join("?" * len(chunk))})', chunk)
        finally:
            db.close()

    def log(self) -> str:
        return Path(self.log_path).read_text(errors="replace")

    def stop(self, keep_data: bool = False) -> None:
        """SIGTERM (a graceful drain); the database it made goes too unless `keep_data` (a restart)."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        if self.made_db and not keep_data:
            drop_postgres(self.made_db)
            self.made_db = None

    def kill(self) -> None:
        """kill -9: no drain, no goodbye (what a crash or the OOM killer does)."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    # --- reading its database, whichever it is -----------------------------------------------
    def sql(self, query: str, *args: object) -> list[tuple[object, ...]]:
        """Run one statement on the server's database (`?` placeholders) and return its rows.

        UUID arguments may be given as UUIDs or strings in any form: SQLite stores them as
        32 hex digits, PostgreSQL as its own type.
        """
        url = self.env.get("DATABASE_URL")
        args = tuple(_uuid_arg(a, bool(url)) for a in args)
        if url:
            import psycopg

            with psycopg.connect(url, autocommit=True) as conn:
                cursor = conn.execute(query.replace("?", "%s"), args)  # type: ignore[arg-type]
                return list(cursor.fetchall()) if cursor.description else []
        with sqlite3.connect(self.env["SQLITE_PATH"]) as db:
            return db.execute(query, args).fetchall()
