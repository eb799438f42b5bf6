"""The OpenAI-compatible API, driven by the official `openai` package and by curl, against a
real Daphne process and the fake provider over real HTTP."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.fakeprovider import FakeProvider, Script
from tests.live import LiveServer

SLOW = Script(tokens=[f"s{i} " for i in range(60)], tokens_per_second=10)  # 6 s


def shell(live: LiveServer, code: str) -> str:
    return live.manage(
        "shell",
        "-c",
        "from django.contrib.auth.models import User, Group\n"
        "from chat.models import ApiToken, Budget, ChatModel, UsageRecord, Conversation\n"
        "from chat.api.tokens import do_create_token, do_revoke_token\n" + code,
    )


def make_user(live: LiveServer, groups: tuple[str, ...] = ()) -> str:
    name = f"u{uuid.uuid4().hex[:8]}"
    shell(
        live,
        f"u = User.objects.create_user({name!r}, password='pw-{name}-1')\n"
        f"for g in {list(groups)!r}: u.groups.add(Group.objects.get_or_create(name=g)[0])",
    )
    return name


def make_token(
    live: LiveServer,
    username: str,
    *,
    models: tuple[str, ...] = (),
    save_history: bool = False,
    expires_in: int | None = None,
) -> str:
    out = shell(
        live,
        (
            "import datetime\nfrom django.utils import timezone\n"
            f"u = User.objects.get(username={username!r})\n"
            f"ms = list(ChatModel.objects.filter(model_id__in={list(models)!r}))\n"
            f"exp = timezone.now() + datetime.timedelta(seconds={expires_in or 0}) "
            f"if {expires_in!r} is not None else None\n"
            f"t, secret = do_create_token(u, 'test', ms, exp, {save_history!r})\nprint('SECRET', secret)"
        ),
    )
    return next(line.split()[1] for line in out.splitlines() if line.startswith("SECRET "))


@pytest.fixture(scope="module")
def server(fake_server: FakeProvider) -> Iterator[LiveServer]:
    live = LiveServer({"PARLEY_AUTO_TITLES": "0", "PARLEY_USER_MESSAGES_PER_MINUTE": "0"}).start()
    live.add_fake_provider(fake_server.url, default="fake-model", also=("staff-model", "cached-model"))
    shell(
        live,
        "m = ChatModel.objects.get(model_id='staff-model')\n"
        "m.groups.add(Group.objects.create(name='staff'))\n"
        "ChatModel.objects.filter(model_id='cached-model').update(cache_ttl=60, cache_max_temperature=0.5)",
    )
    yield live
    live.stop()


@pytest.fixture
def fake(fake_server: FakeProvider) -> FakeProvider:
    fake_server.reset()
    return fake_server


def client(live: LiveServer, token: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=live.url + "/v1", api_key=token, max_retries=0, timeout=20)


def usage_rows(live: LiveServer, username: str) -> list[tuple[Any, ...]]:
    return live.sql(
        "select source, status, input_tokens, output_tokens, cached, cost, message_id from chat_usagerecord "
        "where username = ? order by id",
        username,
    )


HELLO = [{"role": "user", "content": "Hello!"}]


# ---- answers ------------------------------------------------------------------------------------


def test_a_script_written_for_the_openai_sdk_gets_an_answer_and_the_providers_usage(
    server: LiveServer, fake: FakeProvider
) -> None:
    user = make_user(server)
    fake.set_default(Script(tokens=["Hel", "lo ", "there"], usage=(17, 3)))
    answer = client(server, make_token(server, user)).chat.completions.create(
        model="fake-model",
        messages=[{"role": "system", "content": "Be brief."}, *HELLO],
        temperature=0.2,
        max_tokens=50,
        stop=["END"],
    )
    assert answer.choices[0].message.content == "Hello there"
    assert answer.choices[0].finish_reason == "stop" and answer.object == "chat.completion"
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens, answer.usage.total_tokens) == (
        17,
        3,
        20,
    )
    sent = fake.requests[-1].body
    assert sent["model"] == "fake-model" and sent["temperature"] == 0.2 and sent["stop"] == ["END"]
    assert [m["role"] for m in sent["messages"]] == ["system", "user"]
    # Metered as API traffic for the token's user, and not kept as a conversation.
    assert usage_rows(server, user) == [("api", "complete", 17, 3, 0, None, None)]
    assert server.sql(
        "select count(*) from chat_conversation c join auth_user u on u.id = c.owner_id where u.username = ?",
        user,
    ) == [(0,)]


def test_streaming_comes_in_openai_chunks_with_a_usage_chunk_at_the_end(
    server: LiveServer, fake: FakeProvider
) -> None:
    user = make_user(server)
    fake.set_default(Script(tokens=["one ", "two ", "three"], usage=(5, 3)))
    stream = client(server, make_token(server, user)).chat.completions.create(
        model="fake-model",
        messages=HELLO,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert (
        chunks[-1].choices == []
        and chunks[-1].usage.prompt_tokens == 5
        and chunks[-1].usage.completion_tokens == 3
    )
    assert all(c.usage is None for c in chunks[:-1])


def test_the_stream_is_framed_exactly_as_openai_frames_it(server: LiveServer, fake: FakeProvider) -> None:
    user = make_user(server)
    fake.set_default(Script(tokens=["a", "b"]))
    body = {"model": "fake-model", "messages": HELLO, "stream": True}
    with httpx.stream(
        "POST",
        server.url + "/v1/chat/completions",
        json=body,
        timeout=10,
        headers={"Authorization": f"Bearer {make_token(server, user)}"},
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = response.read().decode()
    events = raw.split("\n\n")
    assert events[-1] == "" and events[-2] == "data: [DONE]"
    assert all(e.startswith("data: ") for e in events[:-1])
    first = json.loads(events[0][6:])
    assert first["object"] == "chat.completion.chunk" and first["choices"][0]["delta"] == {
        "role": "assistant",
        "content": "",
    }
    assert "usage" not in first  # only with stream_options.include_usage


def test_content_part_arrays_reach_the_provider_as_text(server: LiveServer, fake: FakeProvider) -> None:
    user = make_user(server)
    client(server, make_token(server, user)).chat.completions.create(
        model="fake-model",
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "Say hi"}]},
            {"role": "assistant", "content": "hi"},
            {"role": "user", "content": [{"type": "text", "text": "again"}]},
        ],
    )
    sent = fake.requests[-1].body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert "Say hi" in json.dumps(sent[0]) and "again" in json.dumps(sent[2])


def test_curl_exactly_as_in_the_guide_pointed_at_parley_gets_an_answer(
    server: LiveServer, fake: FakeProvider
) -> None:
    user = make_user(server)
    fake.set_default(Script(tokens=["Hi ", "from ", "curl"]))
    token = make_token(server, user)
    out = subprocess.run(
        [
            "curl",
            "-sS",
            "-X",
            "POST",
            f"{server.url}/v1/chat/completions",
            "-H",
            "Content-Type: application/json",
            "-H",
            f"Authorization: Bearer {token}",
            "-d",
            # The guide's body, as it is laid out there.
            '{\n        "model": "fake-model",\n'
            '        "messages": [{"role": "user", "content": "Hello!"}]\n      }',
        ],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    ).stdout
    assert json.loads(out)["choices"][0]["message"]["content"] == "Hi from curl"


def test_models_lists_only_what_the_user_may_use_by_ids_a_person_can_type(server: LiveServer) -> None:
    plain, staff = make_user(server), make_user(server, ("staff",))
    listed = {m.id for m in client(server, make_token(server, plain)).models.list()}
    assert listed == {"fake-model", "cached-model"}
    staff_client = client(server, make_token(server, staff))
    assert {m.id for m in staff_client.models.list()} == {"fake-model", "cached-model", "staff-model"}
    assert staff_client.models.retrieve("staff-model").owned_by == "fake"
    # A token limited to one model lists only that one.
    assert {
        m.id for m in client(server, make_token(server, staff, models=("staff-model",))).models.list()
    } == {"staff-model"}


# ---- errors -----------------------------------------------------------------------------------------


def test_a_bad_or_missing_token_is_a_401_in_openais_shape(server: LiveServer, fake: FakeProvider) -> None:
    with pytest.raises(openai.AuthenticationError) as bad:
        client(server, "parley-not-a-real-token").chat.completions.create(model="fake-model", messages=HELLO)
    assert bad.value.status_code == 401 and bad.value.code == "invalid_api_key"
    missing = httpx.post(server.url + "/v1/chat/completions", json={"model": "fake-model", "messages": HELLO})
    assert missing.status_code == 401 and missing.json()["error"]["type"] == "invalid_request_error"
    assert fake.requests == []


def test_a_model_the_user_may_not_use_is_403_and_an_unknown_one_404_and_nothing_goes_upstream(
    server: LiveServer, fake: FakeProvider
) -> None:
    user = make_user(server)
    api = client(server, make_token(server, user))
    with pytest.raises(openai.PermissionDeniedError) as denied:
        api.chat.completions.create(model="staff-model", messages=HELLO)
    assert denied.value.status_code == 403 and denied.value.body["param"] == "model"
    with pytest.raises(openai.NotFoundError) as unknown:
        api.chat.completions.create(model="gpt-9", messages=HELLO)
    assert unknown.value.code == "model_not_found"
    with pytest.raises(openai.PermissionDeniedError):
        client(server, make_token(server, user, models=("cached-model",))).chat.completions.create(
            model="fake-model", messages=HELLO
        )
    assert fake.requests == []


def test_a_revoked_or_expired_token_and_a_deactivated_users_tokens_stop_working_at_once(
    server: LiveServer, fake: FakeProvider
) -> None:
    user = make_user(server)
    kept, revoked, expiring = (
        make_token(server, user),
        make_token(server, user),
        make_token(server, user, expires_in=2),
    )
    for token in (kept, revoked, expiring):
        client(server, token).models.list()
    shell(server, f"do_revoke_token(ApiToken.objects.get(prefix={revoked[:12]!r}))")
    time.sleep(2.1)
    for token in (revoked, expiring):
        with pytest.raises(openai.AuthenticationError):
            client(server, token).models.list()
    client(server, kept).models.list()
    shell(server, f"User.objects.filter(username={user!r}).update(is_active=False)")
    with pytest.raises(openai.AuthenticationError):
        client(server, kept).chat.completions.create(model="fake-model", messages=HELLO)
    assert fake.requests == []


def test_over_budget_is_a_429_with_retry_after_and_nothing_goes_upstream(
    server: LiveServer, fake: FakeProvider
) -> None:
    user = make_user(server)
    shell(
        server, f"Budget.objects.create(user=User.objects.get(username={user!r}), period='day', max_tokens=5)"
    )
    api = client(server, make_token(server, user))
    api.chat.completions.create(model="fake-model", messages=HELLO)  # 12 tokens: crosses the budget, finishes
    time.sleep(2.2)  # budgets are read per process for up to PARLEY_CATALOG_CACHE_SECONDS
    with pytest.raises(openai.RateLimitError) as refused:
        api.chat.completions.create(model="fake-model", messages=HELLO)
    assert refused.value.code == "insufficient_quota" and "budget" in refused.value.message
    assert int(refused.value.response.headers["Retry-After"]) > 0
    assert len(fake.requests) == 1


def test_bad_fields_are_a_400_naming_the_field(server: LiveServer, fake: FakeProvider) -> None:
    api = client(server, make_token(server, make_user(server)))
    cases: list[tuple[dict[str, Any], str]] = [
        ({"temperature": 5}, "temperature"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].role"),
        ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
        ({"n": 2}, "n"),
        ({"stream_options": {"include_usage": True}}, "stream_options"),
    ]
    for change, param in cases:
        body = {"model": "fake-model", "messages": HELLO, **change}
        with pytest.raises(openai.BadRequestError) as bad:
            api.chat.completions.create(**body)
        assert bad.value.body["param"] == param, (change, bad.value.body)
    with pytest.raises(openai.BadRequestError) as unknown:
        api.chat.completions.create(model="fake-model", messages=HELLO, extra_body={"bogus": 1})
    assert "bogus" in unknown.value.message
    # Fields that do not change a text answer are taken and ignored, as many OpenAI servers do.
    api.chat.completions.create(
        model="fake-model", messages=HELLO, seed=1, presence_penalty=0.5, user="script-7"
    )
    assert len(fake.requests) == 1


def test_an_upstream_failure_is_a_502_in_parleys_words_with_a_reference_never_the_upstream_body(
    server: LiveServer, fake: FakeProvider
) -> None:
    api = client(server, make_token(server, make_user(server)))
    fake.set_default(
        Script(status=401, error_body={"error": {"message": "sk-upstream-secret-detail is invalid"}})
    )
    with pytest.raises(openai.APIStatusError) as failed:
        api.chat.completions.create(model="fake-model", messages=HELLO)
    assert failed.value.status_code == 502
    assert "sk-upstream-secret-detail" not in failed.value.response.text
    ref = failed.value.body["ref"]
    assert ref in failed.value.message and ref in server.log()
    with pytest.raises(openai.APIStatusError) as streamed:
        api.chat.completions.create(model="fake-model", messages=HELLO, stream=True)
    assert streamed.value.status_code == 502  # decided before the stream began


def test_a_client_that_hangs_up_mid_stream_stops_the_upstream_call_within_a_second(
    server: LiveServer, fake: FakeProvider
) -> None:
    user = make_user(server)
    fake.set_default(SLOW)
    stream = client(server, make_token(server, user)).chat.completions.create(
        model="fake-model", messages=HELLO, stream=True
    )
    got = [c.choices[0].delta.content for c, _ in zip(stream, range(3), strict=False)]
    assert got[1:] == ["s0 ", "s1 "]
    stream.close()
    hung_up = time.monotonic()
    assert fake.requests[-1].client_disconnected.wait(1.0), "the provider was still streaming a second later"
    assert time.monotonic() - hung_up < 1.0
    # Metered with what it used, as a stopped answer.
    deadline = time.monotonic() + 5
    while not usage_rows(server, user) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert usage_rows(server, user)[0][:2] == ("api", "incomplete")


def test_a_client_that_hangs_up_before_a_whole_answer_stops_the_upstream_call(
    server: LiveServer, fake: FakeProvider
) -> None:
    fake.set_default(SLOW)
    token = make_token(server, make_user(server))
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            server.url + "/v1/chat/completions",
            json={"model": "fake-model", "messages": HELLO},
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(10, read=1.0),
        )
    assert fake.requests[-1].client_disconnected.wait(1.5)


# ---- history, tokens in logs --------------------------------------------------------------------------


def test_a_token_that_saves_history_keeps_each_call_as_a_conversation(
    server: LiveServer, fake: FakeProvider
) -> None:
    user = make_user(server)
    fake.set_default(Script(tokens=["Saved ", "answer"]))
    client(server, make_token(server, user, save_history=True)).chat.completions.create(
        model="fake-model", messages=[{"role": "system", "content": "Terse."}, *HELLO]
    )
    rows = server.sql(
        "select c.system_prompt, m.role, m.content, m.status from chat_conversation c join auth_user u on "
        "u.id = c.owner_id join chat_message m on m.conversation_id = c.id where u.username = ? "
        "order by m.created",
        user,
    )
    assert rows == [
        ("Terse.", "user", "Hello!", "complete"),
        ("Terse.", "assistant", "Saved answer", "complete"),
    ]
    assert usage_rows(server, user)[0][6] is not None  # the usage record points at the saved answer


def test_the_token_never_appears_in_the_server_log(server: LiveServer, fake: FakeProvider) -> None:
    token = make_token(server, make_user(server))
    api = client(server, token)
    api.chat.completions.create(model="fake-model", messages=HELLO)
    with pytest.raises(openai.NotFoundError):
        api.chat.completions.create(model="nope", messages=HELLO)
    with pytest.raises(openai.BadRequestError):
        api.chat.completions.create(model="fake-model", messages=HELLO, temperature=9)
    httpx.get(server.url + f"/v1/models?token={token[:5]}", headers={"Authorization": f"Bearer {token}x"})
    log = server.log()
    assert "/v1/chat/completions" in log  # the access log is there; the token is not
    assert token not in log and token[12:] not in log


# ---- the response cache ---------------------------------------------------------------------------


def _ask(api: openai.OpenAI, content: str, **kw: Any) -> Any:
    return api.chat.completions.with_raw_response.create(
        model="cached-model", messages=[{"role": "user", "content": content}], temperature=0, **kw
    )


def test_an_exact_repeat_is_answered_from_the_cache_with_no_upstream_call_at_no_cost(
    server: LiveServer, fake: FakeProvider
) -> None:
    user = make_user(server)
    shell(
        server,
        "ChatModel.objects.filter(model_id='cached-model').update(price_input_per_mtok=1, "
        "price_output_per_mtok=2)",
    )
    api = client(server, make_token(server, user))
    question = f"What is {uuid.uuid4().hex}?"
    fake.set_default(Script(tokens=["Forty", "-two"], usage=(9, 2)))
    first = _ask(api, question)
    assert first.headers["X-Parley-Cache"] == "miss" and first.parse().cached is False  # type: ignore[attr-defined]
    time.sleep(0.3)  # the answer is kept after it is saved, off the event loop
    again = _ask(api, question)
    assert again.headers["X-Parley-Cache"] == "hit"
    answer = again.parse()
    assert answer.choices[0].message.content == "Forty-two" and answer.cached is True  # type: ignore[attr-defined]
    assert answer.usage.prompt_tokens_details.cached_tokens == 9
    assert len(fake.requests) == 1
    (_, _, _, _, fresh_cached, fresh_cost, _), (_, _, _, _, hit_cached, hit_cost, _) = usage_rows(
        server, user
    )
    assert (fresh_cached, hit_cached) == (0, 1) and float(fresh_cost) > 0 and float(hit_cost) == 0
    # Streamed, a hit comes whole in the first chunk.
    chunks = list(
        api.chat.completions.create(
            model="cached-model", messages=[{"role": "user", "content": question}], temperature=0, stream=True
        )
    )
    assert [c.choices[0].delta.content for c in chunks if c.choices[0].delta.content] == ["Forty-two"]
    assert len(fake.requests) == 1


def test_the_cache_is_bypassed_by_a_header_and_never_used_above_the_admins_temperature(
    server: LiveServer, fake: FakeProvider
) -> None:
    api = client(server, make_token(server, make_user(server)))
    question = f"Again {uuid.uuid4().hex}"
    _ask(api, question)
    time.sleep(0.3)
    assert (
        _ask(api, question, extra_headers={"Cache-Control": "no-cache"}).headers["X-Parley-Cache"] == "bypass"
    )
    assert _ask(api, question, extra_headers={"X-Parley-Cache": "no"}).headers["X-Parley-Cache"] == "bypass"
    assert len(fake.requests) == 3
    for _ in range(2):
        warm = api.chat.completions.with_raw_response.create(
            model="cached-model", messages=[{"role": "user", "content": question}], temperature=0.9
        )
        assert warm.headers["X-Parley-Cache"] == "off"
    assert len(fake.requests) == 5
    assert _ask(api, question).headers["X-Parley-Cache"] == "hit"


def test_the_cache_is_each_users_own_unless_the_admin_shares_it_per_group(
    server: LiveServer, fake: FakeProvider
) -> None:
    alice, bob = make_user(server, ("team",)), make_user(server, ("team",))
    question = f"Shared {uuid.uuid4().hex}"
    _ask(client(server, make_token(server, alice)), question)
    time.sleep(0.3)
    bobs = client(server, make_token(server, bob))
    assert _ask(bobs, question).headers["X-Parley-Cache"] == "miss"
    shell(server, "ChatModel.objects.filter(model_id='cached-model').update(cache_shared=True)")
    try:
        time.sleep(2.2)  # the catalogue is kept per process for PARLEY_CATALOG_CACHE_SECONDS
        shared = f"Shared {uuid.uuid4().hex}"
        _ask(client(server, make_token(server, alice)), shared)
        time.sleep(0.3)
        assert _ask(bobs, shared).headers["X-Parley-Cache"] == "hit"
        outsider = client(server, make_token(server, make_user(server)))
        assert _ask(outsider, shared).headers["X-Parley-Cache"] == "miss"
    finally:
        shell(server, "ChatModel.objects.filter(model_id='cached-model').update(cache_shared=False)")
        time.sleep(2.2)


# ---- more error paths a script can reach ----------------------------------------------------------


def test_an_overloaded_provider_is_a_503_with_retry_after(server: LiveServer, fake: FakeProvider) -> None:
    api = client(server, make_token(server, make_user(server)))
    fake.set_default(Script(status=429, error_body={"error": {"message": "slow down, upstream detail"}}))
    with pytest.raises(openai.InternalServerError) as busy:
        api.chat.completions.create(model="fake-model", messages=HELLO)
    assert busy.value.status_code == 503 and busy.value.response.headers["Retry-After"] == "5"
    assert "upstream detail" not in busy.value.response.text and busy.value.body["ref"]


def test_an_answer_cut_short_after_some_text_ends_the_stream_with_an_error_the_sdk_raises(
    server: LiveServer, fake: FakeProvider
) -> None:
    api = client(server, make_token(server, make_user(server)))
    fake.set_default(Script(tokens=[f"w{i} " for i in range(6)], drop_after=3))
    stream = api.chat.completions.create(model="fake-model", messages=HELLO, stream=True)
    got: list[str] = []
    with pytest.raises(openai.APIError) as cut:
        for chunk in stream:
            got.append(chunk.choices[0].delta.content or "")
    assert "".join(got).startswith("w0 ") and "ref" in cut.value.message
    # Whole, the same failure is an error status, not a partial answer that looks complete.
    fake.set_default(Script(tokens=[f"w{i} " for i in range(6)], drop_after=3))
    with pytest.raises(openai.APIStatusError) as whole:
        api.chat.completions.create(model="fake-model", messages=HELLO)
    assert whole.value.status_code == 502


def test_the_wrong_method_and_an_oversized_body_are_refused_in_openais_shape(server: LiveServer) -> None:
    token = make_token(server, make_user(server))
    auth = {"Authorization": f"Bearer {token}"}
    wrong = httpx.get(server.url + "/v1/chat/completions", headers=auth)
    assert wrong.status_code == 405 and "POST" in wrong.json()["error"]["message"]
    huge = {"model": "fake-model", "messages": [{"role": "user", "content": "x" * 6_000_000}]}
    too_big = httpx.post(server.url + "/v1/chat/completions", json=huge, headers=auth, timeout=30)
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "request_too_large"
    bad_json = httpx.post(server.url + "/v1/chat/completions", content=b"{not json", headers=auth)
    assert bad_json.status_code == 400 and bad_json.json()["error"]["type"] == "invalid_request_error"


def test_too_many_answers_at_once_is_a_429_and_nothing_more_goes_upstream(
    server: LiveServer, fake: FakeProvider
) -> None:
    import threading

    user = make_user(server)
    token = make_token(server, user)
    fake.set_default(SLOW)
    streams = [client(server, token).chat.completions.create(model="fake-model", messages=HELLO, stream=True)
               for _ in range(3)]  # PARLEY_USER_MAX_ACTIVE_GENERATIONS: 3 by default
    for stream in streams:
        next(iter(stream))
    try:
        with pytest.raises(openai.RateLimitError) as refused:
            client(server, token).chat.completions.create(model="fake-model", messages=HELLO)
        assert refused.value.code == "rate_limit_exceeded" and refused.value.response.headers["Retry-After"]
        assert len(fake.requests) == 3
    finally:
        threads = [threading.Thread(target=s.close) for s in streams]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
