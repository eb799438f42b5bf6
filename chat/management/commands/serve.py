"""Serve Parley with Daphne, and shut down without losing an answer.

On SIGTERM or SIGINT: new sends are refused as `server_busy`, every running answer is
cancelled and saved as incomplete (reason `server_restart`) within the grace period, its
`end` is sent, then every socket is closed with 1012 (service restart) so clients
reconnect and find the saved partial with Continue. Answers a hard kill leaves
`streaming` are marked the same way at the next start, before anything is served.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from chat import cluster, janitor
from chat.crypto import stale_secrets_help
from chat.store import do_recover_orphans

log = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Run Parley under Daphne (HTTP + WebSocket)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--grace", type=float, default=8.0, help="Seconds to save running answers on shutdown.")
        parser.add_argument("--access-log", action="store_true", help="Log every request to standard output.")

    def handle(self, *args: Any, host: str, port: int, grace: float, access_log: bool, **options: Any) -> None:
        _refuse_undecryptable_secrets()
        shared = cluster.configure()
        # Alone, every answer left `streaming` was this process's, killed: mark them now. With
        # other processes, only unowned ones; a dead process's answers are the janitor's.
        recovered = do_recover_orphans(me=shared.worker_id if shared is not None else None)
        if recovered:
            self.stdout.write(f"Marked {recovered} interrupted answer(s) as incomplete (server_restart).")
        # Importing daphne.server installs Twisted's asyncio reactor: only now, never at import time.
        from daphne.access import AccessLogGenerator
        from daphne.endpoints import build_endpoint_description_strings
        from daphne.server import Server
        from twisted.internet import reactor

        from chat.generation import hub, registry
        from chatsite import private_apis
        from chatsite.asgi import application

        private_apis.allow_service_restart_close_code()
        private_apis.bound_unsent_frames(settings.PARLEY_MAX_UNSENT_BYTES)
        private_apis.send_writes_at_once()

        server = Server(
            application=application,
            endpoints=build_endpoint_description_strings(host=host, port=port),
            signal_handlers=False,
            action_logger=AccessLogGenerator(sys.stdout) if access_log else None,
            # Parley answers frames over its own limit with a `too_large` error frame
            # (chat.limits.frame_bytes); Daphne's 1 MiB default dropped them with a bare 1006.
            websocket_max_message_size=WIRE_MAX_BYTES,
            websocket_max_frame_size=WIRE_MAX_BYTES,
        )
        stopping: list[asyncio.Future[None]] = []

        async def drain() -> None:
            registry.accepting = False
            await registry.shutdown(grace)
            hub.close_all(1012)
            await asyncio.sleep(0.3)  # let the close frames reach the wire
            if shared is not None:
                await shared.stop()

        if shared is not None:
            def join() -> None:
                loop = private_apis.asyncio_loop(reactor)
                loop.create_task(shared.start())
                loop.create_task(janitor.run(shared))

            reactor.callWhenRunning(join)  # type: ignore[attr-defined]
            self.stdout.write(f"Sharing the work with other processes through Redis as {shared.worker_id}.")

        def begin_shutdown() -> None:
            if stopping:
                return
            log.info("shutting down: saving %d running answer(s)", registry.active_count())
            future = asyncio.ensure_future(drain(), loop=private_apis.asyncio_loop(reactor))
            future.add_done_callback(lambda _: reactor.stop())  # type: ignore[attr-defined,misc]
            stopping.append(future)

        def on_signal(signum: int, frame: Any) -> None:
            reactor.callFromThread(begin_shutdown)  # type: ignore[attr-defined]

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        self.stdout.write(f"Parley is serving on http://{host}:{port}/")
        self.stdout.flush()
        server.run()
        # Everything is saved; skip interpreter teardown, where Twisted's asyncio reactor and
        # the database thread have been seen to crash the exit (a SIGSEGV after a clean drain).
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


# Past this, Daphne closes the connection (1009) without Parley seeing the frame; the page
# never sends anything near it (it checks a message's size before sending).
WIRE_MAX_BYTES = 16 * 1024 * 1024


def _refuse_undecryptable_secrets() -> None:
    """Try every stored secret before serving: a dropped encryption key must stop start-up.

    Otherwise the server starts, and every send to such a provider fails while its admin
    page is the only place that says why. The message names the providers and the fixes.
    """
    from chat.models import Provider

    broken = {p.name: p.unreadable_secrets() for p in Provider.objects.all()}
    broken = {name: what for name, what in broken.items() if what}
    if broken:
        raise CommandError(stale_secrets_help(broken))
