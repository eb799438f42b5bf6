"""Upload to first token with a 5 MB image, beside a text-only message (issue 16).

One real Daphne process, the fake provider in its own process, clients here. A round is
what the page does: POST the file (Parley decodes, checks and re-encodes it, stores it),
then `send` naming it, to the first delta; the model's request then carries the image as
base64. The text-only rounds are the same send with no file. Medians of a few rounds,
since each 5 MB round is heavy; the load average is printed beside them (bench/machine.py).
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import statistics
import time
import uuid
from typing import Any

import httpx
from PIL import Image

from bench import machine
from bench.relay import BENCH_ENV, Fake, Tab, model_id, sign_in
from tests.live import LiveServer

ROUNDS = int(os.environ.get("BENCH_ATTACHMENT_ROUNDS", "5"))


def five_megabyte_png() -> bytes:
    """Noise does not compress: 1,290 × 1,290 pixels are a 5 MB PNG (kept at that size)."""
    side = 1290
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(out, format="PNG")
    return out.getvalue()


def five_megabyte_photo() -> bytes:
    """A 4,000 × 3,000 JPEG of about 5 MB: the kind a phone takes, shrunk to 2,048 px when kept."""
    small = Image.frombytes("RGB", (400, 300), os.urandom(400 * 300 * 3)).resize((4000, 3000))
    out = io.BytesIO()
    small.save(out, format="JPEG", quality=97)
    return out.getvalue()


async def first_token(tab: Tab, model: str, attachments: list[str]) -> float:
    """Seconds from this send to its first delta."""
    client_id = str(uuid.uuid4())
    started = time.perf_counter()
    await tab.ws.send(
        json.dumps(
            {
                "type": "send",
                "client_id": client_id,
                "conversation": None,
                "model": model,
                "content": "What is in this picture?",
                "attachments": attachments,
            }
        )
    )
    conversation = None
    while True:
        frame = json.loads(await asyncio.wait_for(tab.ws.recv(), 60))
        if frame["type"] == "ack" and frame["client_id"] == client_id:
            conversation = frame["conversation"]["id"]
        elif frame["type"] == "error" and frame.get("client_id") == client_id:
            raise RuntimeError(frame["message"])
        elif frame["type"] == "delta" and frame.get("conversation") == conversation:
            first = time.perf_counter() - started
        elif frame["type"] == "end" and frame.get("conversation") == conversation:
            return first


async def upload(client: httpx.AsyncClient, csrf: str, name: str, data: bytes) -> tuple[str, float, int]:
    started = time.perf_counter()
    response = await client.post("/api/attachments/", files={"file": (name, data)}, headers={"X-CSRFToken": csrf})
    response.raise_for_status()
    meta = response.json()["attachment"]
    return meta["id"], time.perf_counter() - started, int(meta["size"])


async def run_async() -> dict[str, Any]:
    fake = Fake()
    live = LiveServer(BENCH_ENV).start()
    results: dict[str, Any] = {}
    try:
        live.create_user("bench", "bench-password-1")
        live.add_fake_provider(fake.url, model="fake-model=Fake", default="fake-model")
        live.manage("provider", "model", "fake", "fake-model", "--vision", "yes")
        model = model_id(live)
        cookie = await sign_in(live, "bench", "bench-password-1")
        csrf = re.search(r"csrftoken=([^;]+)", cookie)
        assert csrf, "no CSRF cookie after sign-in"
        tab = await Tab.open(live, cookie)
        async with httpx.AsyncClient(base_url=live.url, headers={"Cookie": cookie}, timeout=120) as client:
            for _ in range(2):  # warm both paths
                await fake.enqueue(tokens=["a "] * 3)
                await first_token(tab, model, [])
            text = []
            for _ in range(ROUNDS):
                await fake.enqueue(tokens=["a "] * 3)
                text.append(await first_token(tab, model, []))
            results["text only: send → first token, ms (median)"] = statistics.median(text) * 1000
            for label, data in (
                ("5 MB PNG, 1,290 px", five_megabyte_png()),
                ("5 MB JPEG, 4,000 × 3,000 px", five_megabyte_photo()),
            ):
                uploads, totals, sends = [], [], []
                kept = 0
                for _ in range(ROUNDS):
                    await fake.enqueue(tokens=["a "] * 3)
                    started = time.perf_counter()
                    attachment, took, kept = await upload(client, csrf.group(1), "picture." + label[5:8].lower(), data)
                    ttft = await first_token(tab, model, [attachment])
                    uploads.append(took)
                    sends.append(ttft)
                    totals.append(time.perf_counter() - started)
                results[f"{label} ({len(data) / 1e6:.1f} MB, kept {kept / 1e6:.1f} MB): upload, ms"] = (
                    statistics.median(uploads) * 1000
                )
                results[f"{label}: send → first token, ms"] = statistics.median(sends) * 1000
                results[f"{label}: upload → first token, ms (median)"] = statistics.median(totals) * 1000
            results["machine at the end"] = machine.brief()
        await tab.ws.close()
    finally:
        live.stop()
        await fake.close()
    return results


def run() -> dict[str, Any]:
    return asyncio.run(run_async())


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
    from bench.__main__ import section

    section("Attachments: upload to first token, a 5 MB image beside a text-only message", run)
