"""Sockets outlive nothing their user has lost: a session ended, a password changed, an account closed.

A WebSocket is authenticated once, at its handshake, and may stay open for a day. So:

- every state-changing command re-checks its session (`check_session`, on the worker
  thread that checks the command anyway), and
- each process watches its open sockets: once a second (PARLEY_SESSION_CHECK_SECONDS) one
  query finds the watched sessions that are gone and one the watched users that changed;
  those sockets are closed with 4001. A change made in this process (a logout, an admin
  deactivating someone) wakes the watch at once.

4001 means "your session changed: reconnect". The page reconnects at once with whatever
cookie it now has: after a logout or a deactivation that handshake is closed with 4401 and
the page says "signed out"; after the user changed their own password (Django gives that
session a new key) it simply carries on.

Watching the database rather than a message bus means a change made anywhere — another
server process, `manage.py changepassword`, a shell — is seen by every process.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import post_delete, post_save
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from chat import sql

log = logging.getLogger(__name__)

CLOSE_SIGNED_OUT = 4401  # at the handshake: nobody is signed in
CLOSE_SESSION_CHANGED = 4001  # later: the session this socket was opened with is no longer valid
Deliver = Callable[[str | int], None]


class SignedOut(Exception):
    """The socket's session no longer signs anyone in."""


@dataclasses.dataclass
class Watched:
    user_id: int
    session_key: str
    password: str  # the user's password hash when last checked: a change means "check the session"


def _session_store() -> Any:
    from importlib import import_module

    return import_module(settings.SESSION_ENGINE).SessionStore


def session_signs_in(session_key: str | None, user_id: int, user: Any = None) -> bool:
    """Django's own test: the session exists, names this user, and carries their current auth hash."""
    if not session_key:
        return False
    data = _session_data(session_key)  # {} when missing or expired
    if str(data.get(SESSION_KEY)) != str(user_id):
        return False
    if user is None:
        user = _user(user_id)
    if user is None or not user.is_active:
        return False
    return constant_time_compare(data.get(HASH_SESSION_KEY, ""), user.get_session_auth_hash())


def _session_data(session_key: str) -> dict[str, Any]:
    store = _session_store()
    if settings.SESSION_ENGINE != "django.contrib.sessions.backends.db":
        return dict(store(session_key).load())
    # Every send asks this: two bare SELECTs instead of the ORM's compiled queries.
    from django.contrib.sessions.models import Session

    row = sql.select_one(
        f"SELECT {sql.column(Session, 'session_data')} FROM {sql.table(Session)} WHERE "
        f"{sql.column(Session, 'session_key')} = %s AND {sql.column(Session, 'expire_date')} > %s",
        [session_key, sql.prep(Session, "expire_date", timezone.now())],
    )
    return dict(store().decode(row[0])) if row else {}


def _user(user_id: int) -> Any:
    model = get_user_model()
    row = sql.select_one(
        f"SELECT {sql.column(model, 'password')}, {sql.column(model, 'is_active')} FROM {sql.table(model)} "
        f"WHERE {sql.column(model, 'id')} = %s", [user_id],
    )
    # An unsaved instance is enough: the auth hash depends only on the password hash.
    return model(pk=user_id, password=row[0], is_active=bool(row[1])) if row else None


def check_session(scope: dict[str, Any]) -> None:
    """Raise SignedOut unless the socket's session still signs its user in (sync; ORM)."""
    session = scope.get("session")
    user = scope.get("user")
    if user is None or not session_signs_in(getattr(session, "session_key", None), user.pk):
        raise SignedOut


def _live_sessions(keys: set[str]) -> set[str]:
    if settings.SESSION_ENGINE == "django.contrib.sessions.backends.db":
        from django.contrib.sessions.models import Session

        live: set[str] = set()
        ordered = sorted(keys)
        for start in range(0, len(ordered), 500):
            live.update(Session.objects.filter(
                session_key__in=ordered[start : start + 500], expire_date__gt=timezone.now()
            ).values_list("session_key", flat=True))
        return live
    store = _session_store()
    return {key for key in keys if store().exists(key)}


def find_revoked(watched: dict[Deliver, Watched]) -> list[Deliver]:
    """The sockets whose session is gone or whose user changed so that it no longer signs in."""
    live = _live_sessions({w.session_key for w in watched.values()})
    ids = sorted({w.user_id for w in watched.values()})
    model = get_user_model()
    # Two columns, not user objects: this runs every second over every open socket.
    users: dict[int, tuple[str, bool]] = {}
    for start in range(0, len(ids), 500):
        users.update(
            (pk, (password, active)) for pk, password, active in
            model.objects.filter(pk__in=ids[start : start + 500]).values_list("pk", "password", "is_active")
        )
    revoked = []
    for deliver, w in watched.items():
        found = users.get(w.user_id)
        if w.session_key not in live or found is None or not found[1]:
            revoked.append(deliver)
        elif found[0] != w.password:
            # A new password ends other sessions; the one that changed it stays signed in.
            user = model(pk=w.user_id, password=found[0], is_active=True)
            if session_signs_in(w.session_key, w.user_id, user):
                w.password = found[0]
            else:
                revoked.append(deliver)
    return revoked


class Watch:
    """The open sockets of this process, checked once a second."""

    def __init__(self) -> None:
        self._watched: dict[Deliver, Watched] = {}
        self._tasks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[None]]
        self._tasks = weakref.WeakKeyDictionary()
        self._wake: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Event] = weakref.WeakKeyDictionary()

    def add(self, deliver: Deliver, user: Any, session_key: str) -> None:
        self._watched[deliver] = Watched(user.pk, session_key, user.password)
        loop = asyncio.get_running_loop()
        task = self._tasks.get(loop)
        if task is None or task.done():
            self._wake[loop] = asyncio.Event()
            self._tasks[loop] = loop.create_task(self._run(loop), name="session-watch")

    def discard(self, deliver: Deliver) -> None:
        self._watched.pop(deliver, None)

    def check_soon(self) -> None:
        """Check now rather than at the next tick (called from any thread, by signals)."""
        for loop, event in list(self._wake.items()):
            if not loop.is_closed():
                loop.call_soon_threadsafe(event.set)

    async def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        wake = self._wake[loop]
        while self._watched:
            with contextlib.suppress(TimeoutError):  # woken early by a sign-out, or on the second
                await asyncio.wait_for(wake.wait(), settings.PARLEY_SESSION_CHECK_SECONDS)
            wake.clear()
            await self.check(self._watched)

    async def check(self, watched: dict[Deliver, Watched]) -> None:
        snapshot = dict(watched)
        if not snapshot:
            return
        try:
            # Off the one database thread: a check must never queue behind the answers' saves.
            revoked = await database_sync_to_async(find_revoked, thread_sensitive=False)(snapshot)
        except Exception:
            log.exception("could not check the open sockets' sessions; trying again shortly")
            return
        close(revoked)
        for deliver in revoked:
            self._watched.pop(deliver, None)


def close(delivers: Iterable[Deliver]) -> None:
    for deliver in delivers:
        deliver(CLOSE_SESSION_CHANGED)


watch = Watch()


def _changed(**_: Any) -> None:
    from chat import cluster

    watch.check_soon()
    cluster.broadcast_sessions()


def connect_signals() -> None:
    """Called from ChatConfig.ready(): changes made in this process are acted on at once."""
    user_model = get_user_model()
    user_logged_out.connect(_changed, dispatch_uid="revocation-logout")
    post_save.connect(_changed, sender=user_model, dispatch_uid="revocation-user-saved")
    post_delete.connect(_changed, sender=user_model, dispatch_uid="revocation-user-deleted")
