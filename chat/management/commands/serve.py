"""Serve Parley with Daphne after marking answers orphaned by a previous process."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from chat.services import do_recover_orphans


class Command(BaseCommand):
    help = "Run Parley under Daphne (HTTP + WebSocket)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)

    def handle(self, *args: Any, host: str, port: int, **options: Any) -> None:
        recovered = do_recover_orphans()
        if recovered:
            self.stdout.write(f"Marked {recovered} interrupted answer(s) as incomplete (server_restart).")
        from daphne.cli import CommandLineInterface

        self.stdout.write(f"Parley is serving on http://{host}:{port}/")
        CommandLineInterface().run(["-b", host, "-p", str(port), "chatsite.asgi:application"])
