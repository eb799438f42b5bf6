"""Database queries for one 2,000-token answer, counted in-process around the real consumer."""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from typing import Any

from tests.live import TEST_KEY


def run(answer_tokens: int = 2000) -> dict[str, Any]:
    directory = tempfile.mkdtemp(prefix="parley-queries-")
    os.environ.update(
        SECRET_KEY="bench",
        PARLEY_ENCRYPTION_KEYS=TEST_KEY,
        SQLITE_PATH=os.path.join(directory, "db.sqlite3"),
        PARLEY_AUTO_TITLES="0",  # count the answer's own queries, not a title request's
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return asyncio.run(_measure(answer_tokens))


async def _measure(answer_tokens: int) -> dict[str, Any]:
    from asgiref.sync import sync_to_async
    from django.contrib.auth.models import User
    from django.db.backends.signals import connection_created

    from chat.models import ChatModel, Provider
    from tests.conftest import open_socket, session_cookie
    from tests.fakeprovider import FakeProvider, Script

    fake = FakeProvider().start()
    counted: list[str] = []

    def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        counted.append(sql)
        return execute(sql, params, many, context)

    def attach(sender: Any, connection: Any, **kwargs: Any) -> None:
        if count not in connection.execute_wrappers:
            connection.execute_wrappers.append(count)

    connection_created.connect(attach)

    @sync_to_async
    def setup() -> tuple[bytes, str]:
        from django.db import connections

        for conn in connections.all():
            conn.close()  # reconnect with the counter attached
        user = User.objects.create_user("q", password="q-password-1")
        provider = Provider.objects.create(name="fake", family="openai", base_url=fake.url + "/v1")
        model = ChatModel.objects.create(provider=provider, model_id="fake-model")
        return session_cookie(user), str(model.id)

    cookie, model = await setup()
    ok, _, communicator = await open_socket(cookie)
    assert ok
    await communicator.receive_json_from()
    fake.enqueue(Script(tokens=[f"t{i} " for i in range(answer_tokens)], tokens_per_second=1000))
    counted.clear()
    await communicator.send_json_to(
        {"type": "send", "client_id": str(uuid.uuid4()), "conversation": None, "model": model, "content": "hi"}
    )
    while (await communicator.receive_json_from(timeout=30))["type"] != "end":
        pass
    writes = [q for q in counted if q.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))]
    await communicator.disconnect()
    fake.stop()
    return {
        "answer_tokens": answer_tokens,
        "queries_per_answer": len(counted),
        "writes_per_answer": len(writes),
        "answer_seconds": answer_tokens / 1000,
    }
