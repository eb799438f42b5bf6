"""Invite links, over Django's test client: made in admin or on the command line, spent once each."""

from __future__ import annotations

import datetime
import io
import re

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from chat import invites
from chat.models import Invite

pytestmark = pytest.mark.django_db(transaction=True)
NEW = {"username": "carol", "password1": "a-long-pass-phrase", "password2": "a-long-pass-phrase"}


def test_an_invite_link_lets_one_person_sign_up_and_join_its_groups() -> None:
    lab = Group.objects.create(name="lab")
    _, token = invites.do_create_invite(groups=[lab])
    link = invites.link_path(token)
    assert "You were invited" in Client().get(link).content.decode()
    client = Client()
    assert client.post(link, NEW)["Location"] == "/chat/"
    assert list(User.objects.get(username="carol").groups.all()) == [lab]
    second = Client().post(link, {**NEW, "username": "dave"})
    assert second.status_code == 404 and "cannot be used" in second.content.decode()
    assert not User.objects.filter(username="dave").exists()


def test_an_invalid_form_does_not_spend_the_invite() -> None:
    invite, token = invites.do_create_invite()
    Client().post(invites.link_path(token), {**NEW, "password2": "something-else"})
    invite.refresh_from_db()
    assert invite.uses == 0 and invite.usable


def test_only_a_hash_of_the_link_is_stored() -> None:
    invite, token = invites.do_create_invite()
    assert token not in invite.token_hash and len(invite.token_hash) == 64


def test_an_expired_invite_makes_no_account() -> None:
    invite, token = invites.do_create_invite()
    Invite.objects.filter(pk=invite.pk).update(expires=timezone.now() - datetime.timedelta(seconds=1))
    assert Client().post(invites.link_path(token), NEW).status_code == 404
    assert not User.objects.filter(username="carol").exists()


def test_an_admin_makes_an_invite_and_sees_its_link_once() -> None:
    root = User.objects.create_superuser("root", password="root-password-1")
    client = Client()
    client.force_login(root)
    expires = (timezone.now() + datetime.timedelta(days=2)).strftime("%Y-%m-%d %H:%M:%S")
    added = client.post(
        "/admin/chat/invite/add/",
        {"note": "for the lab", "max_uses": "3", "expires_0": expires[:10], "expires_1": expires[11:]},
        follow=True,
    )
    shown = "\n".join(str(m) for m in added.context["messages"])
    link = re.search(r"http://testserver(/accounts/invite/[^/]+/)", shown)
    assert link, shown
    invite = Invite.objects.get()
    assert (invite.max_uses, invite.created_by) == (3, root)
    assert link.group(1) not in client.get(f"/admin/chat/invite/{invite.pk}/change/").content.decode()
    assert Client().get(link.group(1)).status_code == 200


def test_the_command_prints_a_link_for_a_few_people() -> None:
    Group.objects.create(name="lab")
    out = io.StringIO()
    call_command("invite", "--uses", "2", "--days", "1", "--group", "lab", stdout=out, stderr=io.StringIO())
    link = out.getvalue().strip()
    assert link.startswith("/accounts/invite/")
    assert Client().post(link, NEW).status_code == 302
    assert Client().post(link, {**NEW, "username": "dave"}).status_code == 302
    assert Client().post(link, {**NEW, "username": "erin"}).status_code == 404
    with pytest.raises(CommandError, match="No group named nosuch"):
        call_command("invite", "--group", "nosuch", stdout=io.StringIO())
