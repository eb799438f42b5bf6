"""Attacks and abuse over the real chat socket (Daphne on loopback, real TCP, real sessions).

Several of these only show over a real socket: the in-process communicator hides the
handshake (an HTTP 403 and a 4401 close look alike there) and Daphne's frame-size limit.
One server per module; each test uses its own users.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets

from bench.relay import Tab, make_sessions, model_id
from tests.fakeprovider import FakeProvider, Script
from tests.live import LiveServer

CLOSED_WITHIN = 10.0  # generous: the watch checks every second; the point is that it closes at all
SESSION_CHANGED = 4001  # "reconnect to find out": a reconnect with an ended session gets 4401


@pytest.fixture(scope="module")
def server(fake_server: FakeProvider) -> Iterator[LiveServer]:
    live = LiveServer({"PARLEY_SESSION_CHECK_SECONDS": "0.5"}).start()
    live.add_fake_provider(fake_server.url, default="fake-model")
    live.model = model_id(live)  # type: ignore[attr-defined]
    yield live
    live.stop()


@pytest.fixture
def fake(fake_server: FakeProvider) -> FakeProvider:
    fake_server.reset()
    return fake_server


def users(server: LiveServer, count: int = 1) -> list[str]:
    """Fresh users (names unique per call), each with a signed-in session cookie."""
    prefix = f"u{uuid.uuid4().hex[:8]}_"
    script = (
        "from django.contrib.auth.models import User\n"
        "from django.contrib.auth import SESSION_KEY, BACKEND_SESSION_KEY, HASH_SESSION_KEY\n"
        "from django.contrib.sessions.backends.db import SessionStore\n"
        f"for i in range({count}):\n"
        f"    u = User.objects.create_user('{prefix}' + str(i), password='pw-' + str(i) + '-long-enough')\n"
        "    s = SessionStore()\n"
        "    s[SESSION_KEY] = str(u.pk); s[BACKEND_SESSION_KEY] = 'django.contrib.auth.backends.ModelBackend'\n"
        "    s[HASH_SESSION_KEY] = u.get_session_auth_hash(); s.create(); print('KEY', u.username, s.session_key)\n"
    )
    out = server.manage("shell", "-c", script)
    return [f"sessionid={line.split()[2]}" for line in out.splitlines() if line.startswith("KEY ")]


def username_of(server: LiveServer, cookie: str) -> str:
    key = cookie.split("=", 1)[1]
    return (
        server.manage(
            "shell",
            "-c",
            (
                "from django.contrib.sessions.models import Session; from django.contrib.auth.models import User\n"
                f"print(User.objects.get(pk=Session.objects.get(session_key='{key}').get_decoded()['_auth_user_id']).username)"
            ),
        )
        .strip()
        .splitlines()[-1]
    )


async def closed_with(ws: Any, timeout: float = CLOSED_WITHIN) -> int | None:
    """Read until the server closes the socket; its close code (None if it stayed open)."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                await ws.recv()
    except websockets.ConnectionClosed:
        return ws.close_code  # type: ignore[no-any-return]
    except TimeoutError:
        return None


async def frame_of(ws: Any, kind: str, timeout: float = 10) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            frame = json.loads(await ws.recv())
            if frame["type"] == kind:
                return frame  # type: ignore[no-any-return]


async def still_answers(ws: Any) -> bool:
    await ws.send('{"type": "ping"}')
    return (await frame_of(ws, "pong"))["type"] == "pong"


def csrf_post(server: LiveServer, cookie: str, path: str, **kwargs: Any) -> httpx.Response:
    """A POST as the page makes it: session cookie, CSRF cookie and header."""
    with httpx.Client(base_url=server.url, headers={"Cookie": cookie}, timeout=60) as client:
        client.get("/settings/")  # a form page: it sets the CSRF cookie
        token = client.cookies.get("csrftoken") or ""
        headers = {"X-CSRFToken": token, "Cookie": f"{cookie}; csrftoken={token}", "Referer": server.url + "/"}
        return client.post(path, headers=headers, **kwargs)


# ---- sessions ------------------------------------------------------------------------------


async def test_a_socket_without_a_session_is_closed_with_4401_so_the_page_stops_retrying(server: LiveServer) -> None:
    async with websockets.connect(
        server.url.replace("http", "ws") + "/ws/chat/", additional_headers={"Origin": server.url}
    ) as ws:
        assert await closed_with(ws) == 4401


async def signed_out(server: LiveServer, cookie: str) -> bool:
    """A new socket with this cookie is closed with 4401 (the page then says "signed out")."""
    async with websockets.connect(
        server.url.replace("http", "ws") + "/ws/chat/", additional_headers={"Cookie": cookie, "Origin": server.url}
    ) as ws:
        return await closed_with(ws) == 4401


async def test_logging_out_in_the_browser_closes_that_sessions_open_socket(server: LiveServer) -> None:
    (cookie,) = users(server)
    tab = await Tab.open(server, cookie)
    response = await asyncio.to_thread(csrf_post, server, cookie, "/accounts/logout/")
    assert response.status_code in (200, 302)
    assert await closed_with(tab.ws) == SESSION_CHANGED
    assert await signed_out(server, cookie)


@pytest.mark.parametrize(
    "change",
    [
        "u.set_password('a-new-password-77'); u.save()",
        "u.is_active = False; u.save()",
        "u.delete()",
    ],
)
async def test_an_account_changed_elsewhere_loses_its_open_sockets(server: LiveServer, change: str) -> None:
    # Made by another process (a shell here, an admin on another server in production).
    (cookie,) = users(server)
    name = username_of(server, cookie)
    tab, second = await Tab.open(server, cookie), await Tab.open(server, cookie)
    server.manage(
        "shell", "-c", f"from django.contrib.auth.models import User; u = User.objects.get(username='{name}'); {change}"
    )
    assert await closed_with(tab.ws) == SESSION_CHANGED
    assert await closed_with(second.ws) == SESSION_CHANGED
    assert await signed_out(server, cookie)


async def test_changing_your_own_password_keeps_this_session_and_ends_the_others(server: LiveServer) -> None:
    (here,) = users(server)
    name = username_of(server, here)
    password = "pw-0-long-enough"
    elsewhere = await asyncio.to_thread(_sign_in, server, name, password)
    kept, ended = await Tab.open(server, here), await Tab.open(server, elsewhere)
    assert await still_answers(kept.ws)
    response = await asyncio.to_thread(
        csrf_post,
        server,
        here,
        "/accounts/password/",
        data={
            "old_password": password,
            "new_password1": "brand-new-pass-93",
            "new_password2": "brand-new-pass-93",
        },
    )
    assert response.status_code == 302, response.text[:300]
    # Django gave the changing browser a new session key: its sockets reconnect with it.
    renewed = f"sessionid={response.cookies['sessionid']}"
    assert await closed_with(ended.ws) == SESSION_CHANGED
    assert await closed_with(kept.ws) == SESSION_CHANGED
    assert await signed_out(server, elsewhere)
    again = await Tab.open(server, renewed)
    assert await still_answers(again.ws)


def _sign_in(server: LiveServer, username: str, password: str) -> str:
    with httpx.Client(base_url=server.url, timeout=60) as client:
        page = client.get("/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert token
        client.post(
            "/accounts/login/", data={"username": username, "password": password, "csrfmiddlewaretoken": token.group(1)}
        )
        return f"sessionid={client.cookies['sessionid']}"


async def test_a_send_on_a_socket_whose_session_ended_is_refused_before_any_upstream_call(
    fake_server: FakeProvider,
) -> None:
    # The watch is slowed to an hour here: only the per-command check can catch this.
    live = LiveServer({"PARLEY_SESSION_CHECK_SECONDS": "3600"}).start()
    try:
        live.add_fake_provider(fake_server.url)
        fake_server.reset()
        (cookie,) = make_sessions(live, 1)
        tab = await Tab.open(live, cookie)
        live.sql("delete from django_session")
        await tab.ws.send(
            json.dumps(
                {
                    "type": "send",
                    "client_id": str(uuid.uuid4()),
                    "conversation": None,
                    "model": model_id(live),
                    "content": "still there?",
                }
            )
        )
        assert await closed_with(tab.ws) == SESSION_CHANGED
        assert fake_server.requests == []
    finally:
        live.stop()


# ---- input that must get a clear error, not a crash ----------------------------------------


async def test_deeply_nested_json_on_the_socket_is_a_bad_frame_and_the_socket_lives(server: LiveServer) -> None:
    (cookie,) = users(server)
    tab = await Tab.open(server, cookie)
    await tab.ws.send("[" * 100_000)
    error = await frame_of(tab.ws, "error")
    assert error["code"] == "bad_frame" and "nested" in error["message"]
    assert await still_answers(tab.ws)


async def test_a_frame_over_a_mebibyte_gets_too_large_naming_its_message(
    server: LiveServer, fake: FakeProvider
) -> None:
    (cookie,) = users(server)
    tab = await Tab.open(server, cookie)
    client_id = str(uuid.uuid4())
    await tab.ws.send(
        json.dumps(
            {
                "type": "send",
                "client_id": client_id,
                "conversation": None,
                "model": server.model,
                "content": "x" * 2_000_000,
            }
        )
    )  # type: ignore[attr-defined]
    error = await frame_of(tab.ws, "error")
    assert (error["code"], error["client_id"]) == ("too_large", client_id)
    assert await still_answers(tab.ws)
    assert fake.requests == []


async def test_a_huge_system_prompt_on_the_socket_is_refused_and_nothing_is_stored(
    server: LiveServer, fake: FakeProvider
) -> None:
    (cookie,) = users(server)
    tab = await Tab.open(server, cookie)
    await tab.ws.send(
        json.dumps(
            {
                "type": "send",
                "client_id": str(uuid.uuid4()),
                "conversation": None,
                "model": server.model,  # type: ignore[attr-defined]
                "content": "hi",
                "options": {"system": "s" * 900_000},
            }
        )
    )
    error = await frame_of(tab.ws, "error")
    assert error["code"] == "too_large"
    assert fake.requests == []
    assert server.sql("select count(*) from chat_conversation where length(system_prompt) > 20000") == [(0,)]


async def test_a_model_id_that_is_not_a_uuid_is_an_unavailable_model(server: LiveServer) -> None:
    (cookie,) = users(server)
    tab = await Tab.open(server, cookie)
    await tab.ws.send(
        json.dumps(
            {"type": "send", "client_id": str(uuid.uuid4()), "conversation": None, "model": "gpt-4o", "content": "hi"}
        )
    )
    assert (await frame_of(tab.ws, "error"))["code"] == "model_unavailable"


@pytest.mark.parametrize(
    "path, body",
    [
        ("/api/conversations/import/", "[" * 100_000),
        ("/settings/theme/", "[" * 100_000),
        ("/api/browser-models/exchanges/", "[" * 100_000),
    ],
)
def test_deeply_nested_json_over_http_is_a_json_400(server: LiveServer, path: str, body: str) -> None:
    (cookie,) = users(server)
    response = _post_json(server, cookie, path, body)
    assert response.status_code == 400
    assert "error" in response.json()


def _post_json(server: LiveServer, cookie: str, path: str, body: str) -> httpx.Response:
    with httpx.Client(base_url=server.url, headers={"Cookie": cookie}, timeout=120) as client:
        client.get("/settings/")  # a form page: it sets the CSRF cookie
        token = client.cookies.get("csrftoken") or ""
        return client.post(
            path,
            content=body.encode(),
            headers={
                "X-CSRFToken": token,
                "Cookie": f"{cookie}; csrftoken={token}",
                "Content-Type": "application/json",
            },
        )


def test_a_title_with_a_lone_surrogate_is_refused_not_a_500(server: LiveServer) -> None:
    (cookie,) = users(server)
    doc = {
        "format": "parley.conversation",
        "version": 1,
        "conversation": {"title": "ok"},
        "messages": [{"role": "user", "content": "hi"}],
    }
    made = _post_json(server, cookie, "/api/conversations/import/", json.dumps(doc))
    assert made.status_code == 201
    conversation = made.json()["conversation"]["id"]
    renamed = _post_json(server, cookie, f"/api/conversations/{conversation}/edit/", '{"title": "bad \\ud800 title"}')
    assert renamed.status_code == 400 and "Unicode" in renamed.json()["error"]
    imported = _post_json(server, cookie, "/api/conversations/import/", json.dumps(doc).replace('"ok"', '"\\udfff"'))
    assert imported.status_code == 400 and "Unicode" in imported.json()["error"]


def test_an_import_between_django_and_parley_limits_is_read_not_an_html_400(server: LiveServer) -> None:
    # 3 MB: over Django's default 2.5 MB body limit, under Parley's 5 MB import limit.
    (cookie,) = users(server)
    doc = {
        "format": "parley.conversation",
        "version": 1,
        "conversation": {"title": "big"},
        "messages": [{"role": "user", "content": "x" * 100_000} for _ in range(30)],
    }
    response = _post_json(server, cookie, "/api/conversations/import/", json.dumps(doc))
    assert response.status_code == 201, response.text[:200]
    too_big = _post_json(
        server, cookie, "/api/conversations/import/", json.dumps({**doc, "messages": doc["messages"] * 2})
    )
    assert too_big.status_code == 400 and "larger than" in too_big.json()["error"]


async def test_a_big_import_does_not_hold_up_another_users_send(server: LiveServer, fake: FakeProvider) -> None:
    importer, other = users(server, 2)
    doc = {
        "format": "parley.conversation",
        "version": 1,
        "conversation": {"title": "ten thousand"},
        "messages": [{"role": "user" if i % 2 == 0 else "assistant", "content": f"m{i}"} for i in range(10_000)],
    }
    tab = await Tab.open(server, other)
    importing = asyncio.create_task(
        asyncio.to_thread(_post_json, server, importer, "/api/conversations/import/", json.dumps(doc))
    )
    await asyncio.sleep(0.3)  # the import is under way
    fake.enqueue(Script(tokens=["quick"]))
    answer = await tab.ask(server.model, "meanwhile")  # type: ignore[attr-defined]
    import_done_before_answer = importing.done()
    response = await importing
    assert response.status_code == 201
    assert answer["end"]["status"] == "complete"
    assert not import_done_before_answer, "the send waited for the whole import"


# ---- correctness defects on the same pass ------------------------------------------------------


async def test_resume_at_the_latest_seq_still_gets_one_replace(server: LiveServer, fake: FakeProvider) -> None:
    (cookie,) = users(server)
    tab = await Tab.open(server, cookie)
    fake.enqueue(Script(tokens=[f"t{i} " for i in range(40)], tokens_per_second=8))
    await tab.ws.send(
        json.dumps(
            {
                "type": "send",
                "client_id": str(uuid.uuid4()),
                "conversation": None,
                "model": server.model,
                "content": "slowly",
            }
        )
    )  # type: ignore[attr-defined]
    first = await frame_of(tab.ws, "delta")
    # Nothing missed: the tab is up to date, and asks anyway (as after a reconnect).
    await tab.ws.send(json.dumps({"type": "resume", "message": first["message"], "after_seq": first["seq"]}))
    async with asyncio.timeout(10):
        while True:
            frame = json.loads(await tab.ws.recv())
            if frame["type"] == "delta" and frame.get("replace"):
                break
    assert frame["text"].startswith("t0 ") and frame["seq"] >= first["seq"]
    await tab.ws.send(json.dumps({"type": "stop", "conversation": first["conversation"]}))


async def test_two_tabs_sending_the_same_new_message_at_once_make_one_upstream_call(
    server: LiveServer, fake: FakeProvider
) -> None:
    (cookie,) = users(server)
    for _ in range(4):
        fake.reset()
        fake.set_default(Script(tokens=["once"], first_token_delay=0.2))
        first, second = await Tab.open(server, cookie), await Tab.open(server, cookie)
        frame = json.dumps(
            {
                "type": "send",
                "client_id": str(uuid.uuid4()),
                "conversation": None,
                "model": server.model,
                "content": "only once",
            }
        )  # type: ignore[attr-defined]
        await asyncio.gather(first.ws.send(frame), second.ws.send(frame))
        acks = await asyncio.gather(frame_of(first.ws, "ack"), frame_of(second.ws, "ack"))
        assert acks[0]["conversation"]["id"] == acks[1]["conversation"]["id"]
        await frame_of(first.ws, "end")
        assert len(fake.requests) == 1
        await first.ws.close()
        await second.ws.close()


async def test_an_unexpected_failure_starting_an_answer_is_an_error_with_a_reference(
    server: LiveServer, fake: FakeProvider
) -> None:
    # A provider secret that no longer decrypts (written by another process, say): the
    # send must be answered, not the socket dropped.
    server.manage(
        "provider", "add", "broken", "--kind", "openai", "--base-url", fake.url + "/v1", "--model", "broken-model"
    )
    server.sql("update chat_provider set extra_headers_encrypted = 'not-a-fernet-token' where name = 'broken'")
    broken = server.sql(
        "select m.id from chat_chatmodel m join chat_provider p on m.provider_id = p.id where p.name = 'broken'"
    )[0][0]
    (cookie,) = users(server)
    tab = await Tab.open(server, cookie)
    await tab.ws.send(
        json.dumps(
            {
                "type": "send",
                "client_id": str(uuid.uuid4()),
                "conversation": None,
                "model": str(uuid.UUID(str(broken))),
                "content": "hi",
            }
        )
    )
    error = await frame_of(tab.ws, "error")
    assert error["code"] == "unavailable" and error["ref"] in error["message"]
    assert await still_answers(tab.ws)
    assert fake.requests == []
