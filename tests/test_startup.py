"""Start-up refuses to run without its secrets, and says what to do."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.live import ROOT, TEST_KEY


def manage_check(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "PARLEY_ENCRYPTION_KEYS", "DEBUG"}}
    # A developer's own .env must not supply what the test takes away.
    clean.update(PARLEY_ENV_FILE="/nonexistent/.env", **env)
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "check"], env=clean, capture_output=True, text=True, cwd="/tmp"
    )


def test_a_missing_secret_key_stops_start_up_outside_debug() -> None:
    result = manage_check(PARLEY_ENCRYPTION_KEYS=TEST_KEY)
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_a_missing_encryption_key_stops_start_up() -> None:
    result = manage_check(SECRET_KEY="x", PARLEY_ENCRYPTION_KEYS="")
    assert result.returncode != 0
    assert "PARLEY_ENCRYPTION_KEYS is not set" in result.stderr


def test_a_malformed_encryption_key_stops_start_up_without_echoing_it() -> None:
    result = manage_check(SECRET_KEY="x", PARLEY_ENCRYPTION_KEYS="not-a-fernet-key-secret123")
    assert result.returncode != 0
    assert "malformed" in result.stderr and "secret123" not in result.stderr


def test_debug_mode_starts_without_a_secret_key() -> None:
    result = manage_check(DEBUG="1", PARLEY_ENCRYPTION_KEYS=TEST_KEY)
    assert result.returncode == 0, result.stderr
