"""The OpenAI-compatible API beside the WebSocket, both against calling the provider directly,
and the response cache: time to first token for a hit, a miss and direct, in one run.

One Parley (a real Daphne process) and the fake provider in its own process, on loopback.
Every round asks the three paths one after another (direct, socket, API), so they share the
machine's noise; medians of BENCH_API_ROUNDS rounds (30). Then one unthrottled stream of
BENCH_API_TOKENS tokens (10,000) through each of the socket and the API, with the server
process's CPU per token. Then the cache: rounds of a miss (a new question) and a hit (the
question of the round before) through the API, beside direct, with the fake answering its
first token after BENCH_API_PROVIDER_MS (200 ms, a hosted model's typical wait): against an
instant fake a hit saves nothing worth measuring, against a real provider it saves the wait.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
import uuid
from typing import Any

import httpx

from bench.relay import BENCH_ENV, Fake, Tab, cpu_seconds, direct_stream, sign_in, tokens
from tests.live import LiveServer


async def api_stream(
    client: httpx.AsyncClient, token: str, model: str, content: str = "hi", temperature: float | None = None
) -> tuple[float, float, str, str]:
    """(seconds to first content, seconds to [DONE], text, X-Parley-Cache) over the API, streaming."""
    body: dict[str, Any] = {
        "model": model,
        "stream": True,
        "messages": [{"role": "user", "content": content}],
    }
    if temperature is not None:
        body["temperature"] = temperature
    start = time.perf_counter()
    first = 0.0
    text: list[str] = []
    async with client.stream(
        "POST", "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {token}"}
    ) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: "):
                continue
            if line == "data: [DONE]":
                break
            choices = json.loads(line[6:]).get("choices") or []
            piece = choices[0].get("delta", {}).get("content") if choices else None
            if piece:
                text.append(piece)
                if not first:
                    first = time.perf_counter() - start
        state = response.headers.get("X-Parley-Cache", "")
    return first, time.perf_counter() - start, "".join(text), state


def _token(live: LiveServer, username: str) -> str:
    out = live.manage(
        "shell",
        "-c",
        (
            "from django.contrib.auth.models import User\nfrom chat.api.tokens import do_create_token\n"
            f"print('SECRET', do_create_token(User.objects.get(username={username!r}), 'bench')[1])"
        ),
    )
    return next(line.split()[1] for line in out.splitlines() if line.startswith("SECRET "))


def ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


async def _run(rounds: int, big: int) -> dict[str, Any]:
    fake = Fake()
    live = LiveServer({**BENCH_ENV, "PARLEY_USER_MESSAGES_PER_MINUTE": "0"}).start()
    results: dict[str, Any] = {}
    try:
        live.create_user("bench", "bench-password-1")
        live.add_fake_provider(fake.url, model="fake-model=Fake", default="fake-model", also=("cached-model",))
        live.manage(
            "shell",
            "-c",
            "from chat.models import ChatModel; "
            "ChatModel.objects.filter(model_id='cached-model')"
            ".update(cache_ttl=600, cache_max_temperature=0)",
        )
        model = _uuid_of(live, "fake-model")
        assert live.process is not None
        pid = live.process.pid
        tab = await Tab.open(live, await sign_in(live, "bench", "bench-password-1"))
        token = _token(live, "bench")
        async with httpx.AsyncClient(base_url=live.url, timeout=60) as client:
            for _ in range(3):  # warm every path
                for path in ("direct", "socket", "api"):
                    await fake.enqueue(tokens=tokens(5))
                    if path == "direct":
                        await direct_stream(fake)
                    elif path == "socket":
                        await tab.ask(model)
                    else:
                        await api_stream(client, token, "fake-model")

            direct, socket, api = [], [], []
            for _ in range(rounds):
                await fake.enqueue(tokens=tokens(3))
                direct.append((await direct_stream(fake))[0])
                await fake.enqueue(tokens=tokens(3))
                socket.append((await tab.ask(model))["ttft"])
                await fake.enqueue(tokens=tokens(3))
                api.append((await api_stream(client, token, "fake-model"))[0])
            results["ttft_direct_ms"] = ms(direct)
            results["ttft_socket_added_ms"] = ms(socket) - ms(direct)
            results["ttft_api_added_ms"] = ms(api) - ms(direct)

            expected = "".join(tokens(big))
            await fake.enqueue(tokens=tokens(big))
            before = cpu_seconds(pid)
            answer = await tab.ask(model)
            results["cpu_us_per_token_socket"] = (cpu_seconds(pid) - before) / big * 1e6
            assert answer["text"] == expected, "the socket's answer differs from what the provider sent"
            await fake.enqueue(tokens=tokens(big))
            before = cpu_seconds(pid)
            _, total, text, _ = await api_stream(client, token, "fake-model")
            results["cpu_us_per_token_api"] = (cpu_seconds(pid) - before) / big * 1e6
            results["stream_api_tps"] = big / total
            assert text == expected, "the API's answer differs from what the provider sent"

            hits, misses, plain = [], [], []
            previous = None
            wait = int(os.environ.get("BENCH_API_PROVIDER_MS", "200")) / 1000
            for n in range(rounds):
                await fake.enqueue(tokens=tokens(3), first_token_delay=wait)
                plain.append((await direct_stream(fake))[0])
                question = f"bench question {n} {uuid.uuid4().hex}"
                await fake.enqueue(tokens=tokens(3), first_token_delay=wait)
                first, _, _, state = await api_stream(client, token, "cached-model", question, temperature=0)
                assert state == "miss", state
                misses.append(first)
                if previous is not None:
                    first, _, _, state = await api_stream(
                        client, token, "cached-model", previous, temperature=0
                    )
                    assert state == "hit", state
                    hits.append(first)
                previous = question
            results["cache_provider_wait_ms"] = wait * 1000
            results["cache_ttft_direct_ms"] = ms(plain)
            results["cache_ttft_miss_ms"] = ms(misses)
            results["cache_ttft_hit_ms"] = ms(hits)
        await tab.ws.close()
    finally:
        live.stop()
        await fake.close()
    return results


def _uuid_of(live: LiveServer, name: str) -> str:
    out = live.manage(
        "shell",
        "-c",
        f"from chat.models import ChatModel; print(ChatModel.objects.get(model_id={name!r}).id)",
    )
    return out.strip().splitlines()[-1]


def run() -> dict[str, Any]:
    """The figures for docs/performance.md; `python -m bench` shows them as a table."""
    rounds = int(os.environ.get("BENCH_API_ROUNDS", "30"))
    big = int(os.environ.get("BENCH_API_TOKENS", "10000"))
    return asyncio.run(_run(rounds, big))


if __name__ == "__main__":
    from bench.__main__ import section

    section("The OpenAI-compatible API beside the socket, and the response cache", run)
