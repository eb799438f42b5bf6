"""`manage.py invite`: an invite link from the command line, for scripted set-ups.

The link is printed once (only its hash is stored); prefix the path with the address
people reach the server at.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser

from chat import invites


class Command(BaseCommand):
    help = "Make an invite link that lets people create accounts while sign-up is closed."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--uses", type=int, default=1, help="Accounts it may create (default 1).")
        parser.add_argument("--days", type=float, default=7, help="Days until it expires (default 7).")
        parser.add_argument("--note", default="", help="Who it is for (seen by admins only).")
        parser.add_argument("--group", action="append", default=[], help="A group new accounts join.")

    def handle(self, *args: Any, uses: int, days: float, note: str, group: list[str], **options: Any) -> None:
        if uses < 1 or days <= 0:
            raise CommandError("--uses must be at least 1 and --days more than 0.")
        groups = list(Group.objects.filter(name__in=group))
        missing = set(group) - {g.name for g in groups}
        if missing:
            raise CommandError(f"No group named {', '.join(sorted(missing))}.")
        invite, token = invites.do_create_invite(max_uses=uses, days=days, note=note, groups=groups)
        self.stdout.write(invites.link_path(token))
        self.stderr.write(f"Makes up to {uses} account(s) until {invite.expires:%Y-%m-%d %H:%M} UTC.")
