"""`manage.py attachments sweep`: delete files nobody sent, and stored files no row names.

Run it from cron (daily is plenty). Files of purged conversations go on their own, when the
purge commits; this catches uploads whose page was closed before sending, and files left by
a crash or an object store that refused a delete. `manage.py attachments usage` lists who
keeps how much.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db.models import Count, Sum

from chat import limits
from chat.attachments import writes
from chat.models import Attachment


class Command(BaseCommand):
    help = "Attachment housekeeping: `sweep` orphans, `usage` per user."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["sweep", "usage"])

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "sweep":
            rows, stray = writes.do_sweep()
            self.stdout.write(f"Deleted {rows} unsent upload(s) older than {writes.UNSENT_GRACE} "
                              f"and {stray} stored file(s) no attachment names.")
            return
        usage = (Attachment.objects.values("owner__username").annotate(files=Count("id"), bytes=Sum("size"))
                 .order_by("-bytes"))
        for row in usage:
            self.stdout.write(f"{row['owner__username']}: {row['files']} file(s), {limits.megabytes(row['bytes'])}")
