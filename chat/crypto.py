"""Encryption at rest for provider secrets.

MultiFernet over PARLEY_ENCRYPTION_KEYS: the first key encrypts, every key decrypts, so
rotating is "prepend a new key, run `manage.py provider rotate-keys`, drop the old key".
There is deliberately no plaintext fallback: without a valid key Parley refuses to start.
"""

from __future__ import annotations

import functools

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

KEY_HELP = (
    "PARLEY_ENCRYPTION_KEYS must hold one or more Fernet keys (comma-separated, newest first). "
    "Make one with: python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
)


def check_keys(keys: list[str]) -> MultiFernet:
    """Build the cipher or raise ImproperlyConfigured saying exactly what is wrong."""
    if not keys:
        raise ImproperlyConfigured("PARLEY_ENCRYPTION_KEYS is not set. " + KEY_HELP)
    fernets = []
    for position, key in enumerate(keys, start=1):
        try:
            fernets.append(Fernet(key.strip().encode()))
        except (ValueError, TypeError):
            # The key itself is never echoed: it is a secret even when malformed.
            raise ImproperlyConfigured(f"Key {position} in PARLEY_ENCRYPTION_KEYS is malformed. " + KEY_HELP) from None
    return MultiFernet(fernets)


@functools.cache
def _cipher() -> MultiFernet:
    return check_keys(list(settings.PARLEY_ENCRYPTION_KEYS))


def encrypt(plaintext: str) -> str:
    return _cipher().encrypt(plaintext.encode()).decode()


class UndecryptableSecret(ImproperlyConfigured):
    """A stored secret none of PARLEY_ENCRYPTION_KEYS opens: a key was dropped too early.

    Callers that can carry on (the admin pages, health checks, start-up's own check) catch
    this one error and say which provider needs its secrets restored or re-entered.
    """


def decrypt(token: str) -> str:
    try:
        return _cipher().decrypt(token.encode()).decode()
    except InvalidToken:
        raise UndecryptableSecret(
            "A stored provider secret cannot be decrypted with PARLEY_ENCRYPTION_KEYS "
            "(was a key removed before `manage.py provider rotate-keys` ran?)."
        ) from None


def readable(token: str) -> bool:
    """Whether the current keys decrypt ``token`` (an empty token holds nothing to lose)."""
    if not token:
        return True
    try:
        decrypt(token)
    except UndecryptableSecret:
        return False
    return True


def rotate(token: str) -> str:
    """Re-encrypt a token under the newest key."""
    try:
        return _cipher().rotate(token.encode()).decode()
    except InvalidToken:
        raise UndecryptableSecret("A stored provider secret cannot be decrypted to re-encrypt it.") from None


def stale_secrets_help(broken: dict[str, list[str]]) -> str:
    """What to tell an admin whose providers hold secrets no current key opens.

    ``broken`` maps provider names to what cannot be read ("API key", "extra headers").
    """
    names = "; ".join(f"{name} ({', '.join(what)})" for name, what in sorted(broken.items()))
    return (
        f"These providers' stored secrets cannot be decrypted with PARLEY_ENCRYPTION_KEYS: {names}. "
        "A key was probably removed before `manage.py provider rotate-keys` ran. Either put that key "
        "back in PARLEY_ENCRYPTION_KEYS (after the newest one) and run `manage.py provider rotate-keys`, "
        "or re-enter each provider's secrets: "
        "printf %s \"$KEY\" | manage.py provider add NAME --api-key-stdin "
        "(with --clear-headers, or --header-stdin, when its extra headers are listed), "
        "or on its page in Django admin, or remove it: manage.py provider remove NAME."
    )


def reset_cache() -> None:
    """For tests that change the keys."""
    _cipher.cache_clear()
