"""The audit log: what administrators and the system did, recorded from signals.

Recorded: sign-ins and failed sign-ins; providers created, changed (which fields; a key
change as "key changed", never the key) and deleted; models enabled, disabled, priced or
opened to other groups; budgets set, changed or removed; users created, deactivated,
reactivated, given or stripped of admin rights or permissions, and deleted; group
memberships; permissions given to or taken from groups. The actor is the signed-in
user of the request that made the change (AuditMiddleware), or "system" (a management
command, a shell).
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save
from django.http import HttpRequest, HttpResponse

from chat.models import AuditEvent, Budget, ChatModel, Provider

log = logging.getLogger(__name__)

_actor: contextvars.ContextVar[tuple[Any, str | None] | None] = contextvars.ContextVar("audit_actor", default=None)

# Fields whose change is worth a line; secrets appear only as "changed".
_PROVIDER_FIELDS = ("name", "label", "family", "preset", "base_url", "api_key_env", "connect_timeout",
                    "read_timeout", "first_token_timeout", "enabled")
_PROVIDER_SECRETS = {"api_key_encrypted": "key changed", "extra_headers_encrypted": "headers changed"}
_MODEL_FIELDS = ("model_id", "display_name", "enabled", "is_default", "price_input_per_mtok",
                 "price_output_per_mtok", "price_currency")
_USER_FIELDS = ("is_active", "is_staff", "is_superuser")
_BUDGET_FIELDS = ("user_id", "group_id", "period", "max_tokens", "max_cost", "currency")


def client_address(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


class AuditMiddleware:
    """Remember who is acting, for the signals a request's changes fire."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = _actor.set((request.user if getattr(request, "user", None) else None, client_address(request)))
        try:
            return self.get_response(request)
        finally:
            _actor.reset(token)


def record(action: str, target: str = "", detail: dict[str, Any] | None = None, *,
           actor: Any = None, address: str | None = None) -> None:
    """Write one event. Never raises: an audit failure must not undo what it describes."""
    current = _actor.get()
    if actor is None and current is not None:
        actor = current[0]
    if address is None and current is not None:
        address = current[1]
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    try:
        AuditEvent.objects.create(
            actor=actor, actor_name=actor.get_username() if actor is not None else "system",
            action=action, target=target[:200], detail=detail or {}, address=address,
        )
    except Exception:
        log.exception("could not write the audit event %s %s", action, target)


# ---- what changed ---------------------------------------------------------------------------

def _before(sender: Any, instance: Any, fields: tuple[str, ...]) -> None:
    if instance.pk is None or instance._state.adding:
        instance._audit_before = None
        return
    instance._audit_before = sender.objects.filter(pk=instance.pk).values(*fields).first()


def _changes(instance: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    before = getattr(instance, "_audit_before", None) or {}
    return {f: {"from": _plain(before.get(f)), "to": _plain(getattr(instance, f))}
            for f in fields if f in before and before[f] != getattr(instance, f)}


def _plain(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool)) or value is None else str(value)


def _provider_pre_save(sender: Any, instance: Provider, **_: Any) -> None:
    _before(sender, instance, _PROVIDER_FIELDS + tuple(_PROVIDER_SECRETS))


def _provider_saved(sender: Any, instance: Provider, created: bool, **_: Any) -> None:
    if created:
        key = "set" if instance.api_key_encrypted else "none"
        record("provider.created", f"provider {instance.name}",
               {"family": instance.family, "base_url": instance.base_url, "key": key})
        return
    before = getattr(instance, "_audit_before", None) or {}
    detail: dict[str, Any] = _changes(instance, _PROVIDER_FIELDS)
    for field, words in _PROVIDER_SECRETS.items():
        if field in before and before[field] != getattr(instance, field):
            detail[field.removesuffix("_encrypted")] = words
    if detail:
        record("provider.changed", f"provider {instance.name}", detail)


def _model_pre_save(sender: Any, instance: ChatModel, **_: Any) -> None:
    _before(sender, instance, _MODEL_FIELDS)


def _model_saved(sender: Any, instance: ChatModel, created: bool, **_: Any) -> None:
    if created:
        record("model.created", f"model {instance.name}", {"provider": instance.provider.name})
    elif detail := _changes(instance, _MODEL_FIELDS):
        record("model.changed", f"model {instance.name}", detail)


def _model_groups(sender: Any, instance: Any, action: str, pk_set: set[int] | None, **_: Any) -> None:
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    from django.contrib.auth.models import Group

    names = sorted(Group.objects.filter(pk__in=pk_set or ()).values_list("name", flat=True))
    verb = {"post_add": "opened to", "post_remove": "closed to", "post_clear": "open to everyone again"}[action]
    if isinstance(instance, ChatModel):
        record("model.groups", f"model {instance.name}", {verb: names})


def _user_pre_save(sender: Any, instance: Any, **_: Any) -> None:
    _before(sender, instance, _USER_FIELDS)


def _user_saved(sender: Any, instance: Any, created: bool, **_: Any) -> None:
    if created:
        record("user.created", f"user {instance.get_username()}", {"staff": instance.is_staff})
        return
    detail = _changes(instance, _USER_FIELDS)
    if "is_active" in detail:
        record("user.deactivated" if not instance.is_active else "user.reactivated", f"user {instance.get_username()}")
        detail.pop("is_active")
    if detail:
        record("user.changed", f"user {instance.get_username()}", detail)


def _user_groups(sender: Any, instance: Any, action: str, pk_set: set[int] | None, **_: Any) -> None:
    if action not in ("post_add", "post_remove") or not hasattr(instance, "get_username"):
        return
    from django.contrib.auth.models import Group

    names = sorted(Group.objects.filter(pk__in=pk_set or ()).values_list("name", flat=True))
    record("user.groups", f"user {instance.get_username()}", {"added" if action == "post_add" else "removed": names})


def _permissions(sender: Any, instance: Any, action: str, pk_set: set[int] | None, **_: Any) -> None:
    """Admin rights given or taken away, from a user or a group (e.g. who may see usage)."""
    if action not in ("post_add", "post_remove"):
        return
    from django.contrib.auth.models import Group, Permission

    perms = Permission.objects.filter(pk__in=pk_set or ()).select_related("content_type")
    names = sorted(f"{p.content_type.app_label}.{p.codename}" for p in perms)
    detail = {"added" if action == "post_add" else "removed": names}
    if isinstance(instance, Group):
        record("group.permissions", f"group {instance.name}", detail)
    elif hasattr(instance, "get_username"):
        record("user.permissions", f"user {instance.get_username()}", detail)


def _budget_pre_save(sender: Any, instance: Budget, **_: Any) -> None:
    _before(sender, instance, _BUDGET_FIELDS)


def _budget_saved(sender: Any, instance: Budget, created: bool, **_: Any) -> None:
    if created:
        record("budget.set", f"budget {instance}", {
            "max_tokens": instance.max_tokens, "max_cost": _plain(instance.max_cost), "currency": instance.currency,
        })
    elif detail := _changes(instance, _BUDGET_FIELDS):
        # An admin saving the form unchanged is not a change worth a line.
        record("budget.set", f"budget {instance}", detail)


def _signed_in(sender: Any, request: HttpRequest, user: Any, **_: Any) -> None:
    record("login", f"user {user.get_username()}", actor=user, address=client_address(request) if request else None)


def _sign_in_failed(sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **_: Any) -> None:
    # The name tried, never the password (Django already masks it in `credentials`).
    tried = str(credentials.get("username", ""))[:150]
    record("login.failed", f"user {tried}", address=client_address(request) if request else None)


def connect_signals() -> None:
    from django.contrib.auth.models import Group

    user_model = get_user_model()
    pairs: list[tuple[Any, Callable[..., None], Any, str]] = [
        (pre_save, _provider_pre_save, Provider, "provider-pre"),
        (post_save, _provider_saved, Provider, "provider-saved"),
        (post_delete, lambda instance, **_: record("provider.deleted", f"provider {instance.name}"),
         Provider, "provider-deleted"),
        (pre_save, _model_pre_save, ChatModel, "model-pre"),
        (post_save, _model_saved, ChatModel, "model-saved"),
        (post_delete, lambda instance, **_: record("model.deleted", f"model {instance.name}"),
         ChatModel, "model-deleted"),
        (m2m_changed, _model_groups, ChatModel.groups.through, "model-groups"),
        (pre_save, _user_pre_save, user_model, "user-pre"),
        (post_save, _user_saved, user_model, "user-saved"),
        (post_delete, lambda instance, **_: record("user.deleted", f"user {instance.get_username()}"),
         user_model, "user-deleted"),
        (m2m_changed, _user_groups, user_model.groups.through, "user-groups"),
        (m2m_changed, _permissions, user_model.user_permissions.through, "user-permissions"),
        (m2m_changed, _permissions, Group.permissions.through, "group-permissions"),
        (pre_save, _budget_pre_save, Budget, "budget-pre"),
        (post_save, _budget_saved, Budget, "budget-saved"),
        (post_delete, lambda instance, **_: record("budget.removed", f"budget {instance}"), Budget, "budget-deleted"),
    ]
    for signal, receiver, sender, uid in pairs:
        signal.connect(receiver, sender=sender, weak=False, dispatch_uid=f"audit-{uid}")
    user_logged_in.connect(_signed_in, dispatch_uid="audit-login")
    user_login_failed.connect(_sign_in_failed, dispatch_uid="audit-login-failed")
