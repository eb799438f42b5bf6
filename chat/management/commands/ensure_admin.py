"""Create the first administrator if there is none (used by `make run`)."""

from __future__ import annotations

import os
import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create an 'admin' superuser if no superuser exists (password from PARLEY_ADMIN_PASSWORD or generated)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--username", default=os.environ.get("PARLEY_ADMIN_USER", "admin"))

    def handle(self, *args: Any, username: str, **options: Any) -> None:
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            return
        password = os.environ.get("PARLEY_ADMIN_PASSWORD", "")
        generated = not password
        if generated:
            password = secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, email="", password=password)
        if generated:
            # Printed once, here, and stored nowhere else in plain text.
            self.stdout.write(f"Created administrator '{username}' with password: {password}")
            self.stdout.write("Change it at /accounts/password/ after signing in.")
        else:
            self.stdout.write(f"Created administrator '{username}' (password from PARLEY_ADMIN_PASSWORD).")
