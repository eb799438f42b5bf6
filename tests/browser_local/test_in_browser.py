"""SmolLM2 answering inside the page: nothing of the question reaches the server until the
finished exchange is saved; Stop is prompt; a second visit loads the weights from the cache."""

from __future__ import annotations

import json
import time
from typing import Any

from tests.browser_local.pages import ANSWER, MODEL, Traffic, ask, consent_given
from tests.chromium import log_in
from tests.live import LiveServer

QUESTION = "What is the capital of France? Answer in one sentence."


def pick_model(page: Any) -> None:
    page.select_option("#model", label=MODEL)


def test_smollm2_answers_in_the_page_and_the_exchange_is_saved(context: Any, server: LiveServer) -> None:
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    log_in(page, server)
    traffic = Traffic(page)
    assert not [u for _, u, _ in traffic.requests if "/engines/" in u or "/vendor/wllama" in u]  # lazy
    pick_model(page)
    ask(page, QUESTION)
    page.click("#local-consent-accept")
    page.wait_for_selector(f'{ANSWER}[data-status="complete"]', timeout=180_000)
    answer = page.locator(f"{ANSWER} .message-body").last.inner_text()
    assert "Paris" in answer, answer

    # Generation happened in the page: the question left it only inside the final save.
    saves = [body for method, url, body in traffic.requests if method == "POST"]
    assert len(saves) == 1 and json.loads(saves[0])["prompt"] == QUESTION, traffic.requests
    assert [r for r in traffic.mentions("capital of France") if "/api/browser-models/exchanges/" not in r] == []
    assert traffic.weights_gets() >= 1
    assert page.evaluate("crossOriginIsolated") is True
    # The thread count came from the probe of free cores (engines/threads.js), remembered per tab.
    probed = page.evaluate("sessionStorage.getItem('parley.threads')")
    assert probed in ("1", "2") and f"({probed} thread" in page.inner_text("#local-status")

    page.wait_for_url("**/chat/*-*/")  # the saved conversation's address
    page.reload()
    page.locator(ANSWER).first.wait_for()
    assert "Paris" in page.locator(f"{ANSWER} .message-body").first.inner_text()
    assert "capital of France" in page.locator("#conversations").inner_text()
    assert not errors, errors

    # A second visit: the weights come from the browser's cache, not the network.
    second = context.new_page()
    again = Traffic(second)
    second.goto(server.url + "/chat/")
    pick_model(second)
    ask(second, "Say hello.")
    second.wait_for_selector(f'{ANSWER}[data-status="complete"]', timeout=120_000)
    assert again.weights_gets() == 0, again.requests
    assert second.locator("#local-consent").count() == 0  # consent is asked once
    second.close()
    page.close()


def test_stop_ends_an_in_browser_answer_within_a_second_and_keeps_the_text(context: Any, server: LiveServer) -> None:
    page = context.new_page()
    page.goto(server.url + "/chat/")
    if "/accounts/login/" in page.url:
        log_in(page, server)
    consent_given(page)
    pick_model(page)
    ask(page, "Write a long story about a robot who learns to paint.")
    answer = page.locator(ANSWER).last
    page.wait_for_function(
        "() => [...document.querySelectorAll('.message[data-role=assistant] .message-body')].pop()"
        "?.innerText.split(/\\s+/).length > 8",
        timeout=120_000,
    )
    started = time.monotonic()
    page.click("#stop")
    page.wait_for_selector(f'{ANSWER}[data-status="incomplete"]', timeout=5_000)
    assert time.monotonic() - started < 1.0
    partial = answer.locator(".message-body").inner_text()
    time.sleep(0.5)
    assert answer.locator(".message-body").inner_text() == partial and len(partial.split()) > 8
    assert "Stopped" in answer.locator(".message-meta").inner_text()
    page.close()


def test_engine_workers_start_on_the_cross_origin_isolated_chat_page(context: Any, server: LiveServer) -> None:
    # A worker script fetched directly would need its own COEP header; blob workers inherit it.
    page = context.new_page()
    page.goto(server.url + "/chat/")
    if "/accounts/login/" in page.url:
        log_in(page, server)
    outcome = page.evaluate("""async () => {
      const { moduleWorker } = await import("/static/parley/engines/index.js");
      const worker = moduleWorker(new URL("/static/parley/engines/transformers-worker.js", location.href));
      return new Promise((resolve) => {
        worker.onerror = (e) => resolve("error: " + (e.message || "load failed"));
        setTimeout(() => resolve("running"), 3000);
      });
    }""")
    assert outcome == "running"
    assert page.evaluate("crossOriginIsolated") is True
    page.close()
