"""API tokens on the settings page and in the admin: made, shown once, scoped, revoked."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from chat.api import tokens
from chat.models import ApiToken, AuditEvent, ChatModel

pytestmark = pytest.mark.django_db(transaction=True)


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def create(client: Client, **fields: Any) -> Any:
    data = {
        "token-name": "nightly report",
        "token-expires": "",
        **{f"token-{k}": v for k, v in fields.items()},
    }
    return client.post("/settings/tokens/", data)


def test_a_new_token_is_shown_once_and_only_its_fingerprint_is_kept(
    alice: User, fake_model: ChatModel
) -> None:
    client = signed_in(alice)
    page = create(client)
    assert page.status_code == 200 and page["Cache-Control"] == "no-store"
    secret = re.search(r'value="(parley-[^"]+)"', page.content.decode()).group(1)  # type: ignore[union-attr]
    token = ApiToken.objects.get(user=alice)
    assert token.digest == tokens.digest(secret) and secret not in {token.digest, token.prefix, token.name}
    assert tokens.authenticate(secret) == token
    settings_page = client.get("/settings/").content.decode()
    assert "nightly report" in settings_page and token.prefix in settings_page and secret not in settings_page
    event = AuditEvent.objects.get(action="api_token.created")
    assert event.actor == alice and secret not in str(event.detail)


def test_a_token_can_be_limited_to_some_models_and_to_an_expiry(alice: User, fake_model: ChatModel) -> None:
    create(signed_in(alice), models=[str(fake_model.id)], expires="30")
    token = ApiToken.objects.get(user=alice)
    assert list(token.scope.all()) == [fake_model] and token.expires_at is not None


def test_a_token_without_a_name_is_refused_on_the_page(alice: User, fake_model: ChatModel) -> None:
    page = create(signed_in(alice), name="")
    assert page.status_code == 400 and "This field is required" in page.content.decode()
    assert not ApiToken.objects.exists()


def test_a_user_revokes_their_own_token_and_nobody_elses(alice: User, bob: User) -> None:
    token, secret = tokens.do_create_token(alice, "mine")
    assert signed_in(bob).post(f"/settings/tokens/{token.id}/revoke/").status_code == 404
    assert tokens.authenticate(secret) is not None
    assert signed_in(alice).post(f"/settings/tokens/{token.id}/revoke/").status_code == 302
    assert tokens.authenticate(secret) is None
    assert AuditEvent.objects.filter(action="api_token.revoked", target__contains="mine").exists()


def test_an_admin_sees_everyones_tokens_and_revokes_them(alice: User, bob: User) -> None:
    admin = User.objects.create_superuser("root", password="root-password-1")
    token, secret = tokens.do_create_token(bob, "bobs script")
    client = signed_in(admin)
    listing = client.get("/admin/chat/apitoken/").content.decode()
    assert "bobs script" in listing and token.prefix in listing and secret not in listing
    assert client.get("/admin/chat/apitoken/add/").status_code == 403
    client.post("/admin/chat/apitoken/", {"action": "revoke", "_selected_action": [str(token.id)]})
    assert tokens.authenticate(secret) is None
    assert AuditEvent.objects.get(action="api_token.revoked").actor == admin


def test_a_deactivated_users_token_stops_working_at_once(alice: User) -> None:
    _, secret = tokens.do_create_token(alice, "x")
    alice.is_active = False
    alice.save()
    assert tokens.authenticate(secret) is None


def test_djangos_error_reports_hide_the_authorization_header() -> None:
    from django.test import RequestFactory
    from django.views.debug import SafeExceptionReporterFilter

    request = RequestFactory().post("/v1/chat/completions", HTTP_AUTHORIZATION="Bearer parley-secret-value")
    meta = SafeExceptionReporterFilter().get_safe_request_meta(request)
    assert "parley-secret-value" not in str(meta)
