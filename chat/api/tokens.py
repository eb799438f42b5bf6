"""API tokens: made, found, revoked. The one place a token's secret exists in the clear.

A token is `parley-` and 43 URL-safe characters (32 random bytes). It is shown once, when it
is made; the database keeps its SHA-256. Finding one is a single query that also checks
its user is still active, so a deactivated user's tokens stop working at the next request,
in every process.
"""

from __future__ import annotations

import datetime
import hashlib
import secrets
from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.utils import timezone

from chat import audit
from chat.access import NotFound
from chat.models import ApiToken, ChatModel

PREFIX = "parley-"
SHOWN_CHARS = 12  # "parley-AbCdE": enough to tell tokens apart, far too little to use one
LAST_USED_EVERY = datetime.timedelta(minutes=1)  # `last_used` is written at most this often


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def do_create_token(
    user: Any,
    name: str,
    models: Iterable[ChatModel] = (),
    expires_at: datetime.datetime | None = None,
    save_history: bool = False,
) -> tuple[ApiToken, str]:
    """A new token for `user`; returns the row and the secret (never stored, never shown again)."""
    secret = PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user,
            name=name,
            digest=digest(secret),
            prefix=secret[:SHOWN_CHARS],
            expires_at=expires_at,
            save_history=save_history,
        )
        chosen = list(models)
        if chosen:
            token.scope.set(chosen)
    audit.record(
        "api_token.created",
        f"{user.get_username()}: {name}",
        {
            "prefix": token.prefix,
            "models": [m.name for m in chosen] or "all",
            "expires": expires_at.isoformat() if expires_at else None,
            "save_history": save_history,
        },
    )
    return token, secret


def do_revoke_token(token: ApiToken) -> None:
    if token.revoked_at is not None:
        return
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    audit.record("api_token.revoked", f"{token.user.get_username()}: {token.name}", {"prefix": token.prefix})


def access_token(user: Any, token_id: object) -> ApiToken:
    """One of this user's own tokens (anyone else's is "not found", like a missing one)."""
    try:
        return ApiToken.objects.select_related("user").get(id=token_id, user=user)  # type: ignore[misc]
    except (ApiToken.DoesNotExist, ValueError, TypeError):
        raise NotFound("No such token.") from None


def authenticate(secret: str) -> ApiToken | None:
    """The live token with this secret, with its active user; None for anything else."""
    if not secret.startswith(PREFIX) or len(secret) > 200:
        return None
    token = (
        ApiToken.objects.select_related("user")
        .filter(digest=digest(secret), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if token is None or (token.expires_at is not None and token.expires_at <= timezone.now()):
        return None
    now = timezone.now()
    if token.last_used is None or now - token.last_used > LAST_USED_EVERY:
        ApiToken.objects.filter(id=token.id).update(last_used=now)
        token.last_used = now
    return token


def scope_ids(token: ApiToken) -> frozenset[str]:
    """The model ids a token is limited to; empty: every model its user may use."""
    return frozenset(str(pk) for pk in token.scope.values_list("id", flat=True))
