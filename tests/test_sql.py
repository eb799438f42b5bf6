"""chat.sql writes exactly the rows the ORM would (on whichever database the suite runs)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.utils import timezone

from chat import sql
from chat.models import ChatModel, Conversation, Message, Provider, Status, UsageRecord

pytestmark = pytest.mark.django_db


def raw(model: type[Any], pk: object) -> tuple[Any, ...]:
    """The row as the database holds it, every column in field order, bypassing the ORM's conversions."""
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in model._meta.concrete_fields)
    table, key = quote(model._meta.db_table), quote(model._meta.pk.column)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {columns} FROM {table} WHERE {key} = %s", [model._meta.pk.get_db_prep_value(pk, connection)]
        )
        row = cursor.fetchone()
    assert row is not None
    return tuple(row)


def pair(make: Any) -> tuple[Any, Any]:
    """Two objects alike but for their ids: one for the ORM, one for chat.sql."""
    return make(), make()


def test_messages_and_conversations_are_written_as_save_would_write_them() -> None:
    owner = User.objects.create_user("sql")
    model = ChatModel.objects.create(provider=Provider.objects.create(name="p", base_url="http://x/v1"), model_id="m")
    now = timezone.now()

    def conversation() -> Conversation:
        return Conversation(
            id=uuid.uuid4(),
            owner=owner,
            title="T ✓",
            model=model,
            temperature=0.5,
            max_tokens=7,
            client_id=uuid.uuid4(),
            pinned=True,
        )

    by_orm, by_sql = pair(conversation)
    by_orm.save(force_insert=True)
    sql.insert([by_sql])
    a, b = raw(Conversation, by_orm.id), raw(Conversation, by_sql.id)
    columns = [f.column for f in Conversation._meta.concrete_fields]
    differ = [
        c
        for c, x, y in zip(columns, a, b, strict=True)
        if x != y and c not in ("id", "client_id", "created", "updated")
    ]
    assert not differ

    def message() -> Message:
        return Message(
            id=uuid.uuid4(),
            conversation=by_orm,
            role="assistant",
            content="héllo",
            status=Status.STREAMING,
            model=model,
            model_name="m",
            client_id=None,
            input_tokens=3,
            usage_estimated=True,
            worker="w-1",
        )

    m_orm, m_sql = pair(message)
    m_orm.save(force_insert=True)
    sql.insert([m_sql])
    a, b = raw(Message, m_orm.id), raw(Message, m_sql.id)
    columns = [f.column for f in Message._meta.concrete_fields]
    assert [c for c, x, y in zip(columns, a, b, strict=True) if x != y and c not in ("id", "created", "updated")] == []
    # An update through chat.sql reads back through the ORM as the values given.
    sql.update(Message, {"id": m_sql.id}, status=Status.COMPLETE, output_tokens=9, updated=now, worker="")
    again = Message.objects.get(id=m_sql.id)
    assert (again.status, again.output_tokens, again.worker, again.updated) == (Status.COMPLETE, 9, "", now)


def test_usage_records_keep_their_cost_to_the_digit() -> None:
    owner = User.objects.create_user("sql2")
    record = UsageRecord(
        user=owner,
        username="sql2",
        source="chat",
        status="complete",
        input_tokens=5,
        output_tokens=6,
        cost=Decimal("0.00012345"),
        currency="USD",
        created=timezone.now(),
    )
    sql.insert([record])
    saved = UsageRecord.objects.get(username="sql2")
    assert (saved.cost, saved.currency, saved.tokens) == (Decimal("0.00012345"), "USD", 11)
