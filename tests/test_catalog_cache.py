"""The per-process catalogue cache never outlives an admin's change made in this process."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group

from chat.models import ChatModel
from tests.fakeprovider import FakeProvider, Script
from tests.test_chat_socket import send_frame

pytestmark = pytest.mark.django_db(transaction=True)


async def test_disabling_a_model_applies_to_the_very_next_send(
    alice: Any, fake_model: ChatModel, fake: FakeProvider, connect: Any
) -> None:
    fake.set_default(Script(tokens=["ok"]))
    sock = await connect(alice)
    await sock.send(send_frame(fake_model))
    assert (await sock.recv_until("end"))[-1]["status"] == "complete"  # now cached
    fake_model.enabled = False
    await fake_model.asave()
    await sock.send(send_frame(fake_model))
    assert (await sock.recv())["code"] == "model_unavailable"
    assert len(fake.requests) == 1


async def test_leaving_a_models_group_applies_to_the_very_next_send(
    alice: Any, fake_model: ChatModel, fake: FakeProvider, connect: Any
) -> None:
    staff = await Group.objects.acreate(name="staff")
    await fake_model.groups.aadd(staff)
    await alice.groups.aadd(staff)
    fake.set_default(Script(tokens=["ok"]))
    sock = await connect(alice)
    await sock.send(send_frame(fake_model))
    assert (await sock.recv_until("end"))[-1]["status"] == "complete"
    await alice.groups.aremove(staff)
    await sock.send(send_frame(fake_model))
    assert (await sock.recv())["code"] == "model_unavailable"
    assert len(fake.requests) == 1
