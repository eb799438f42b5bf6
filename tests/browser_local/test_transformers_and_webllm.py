"""Transformers.js and WebLLM in real Chromium, through the chat page.

Transformers.js runs its real engine (onnxruntime-web) on an ONNX SmolLM2 made from the bundled
GGUF (onnx_model.py, cached), served by a separate loopback host the admin allowed through
PARLEY_BROWSER_MODEL_HOSTS, as Hugging Face would be: on WebAssembly in a browser without a GPU,
and on WebGPU through SwiftShader. WebLLM needs MLC-compiled model libraries nothing here can
build, so it is tested up to its model-loading step: on a WebGPU adapter it starts loading and
fails with a clear message when the weights are not there; without an adapter it says so
before any download.
"""

from __future__ import annotations

import functools
import http.server
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser_local import onnx_model
from tests.browser_local.pages import ANSWER, Traffic, ask, consent_given, finished, set_max_tokens
from tests.chromium import CHROMIUM, WEBGPU_ARGS, log_in
from tests.live import LiveServer

TRANSFORMERS = "SmolLM2 135M (Transformers.js, local)"
WEBLLM = "SmolLM2 360M (WebLLM, local)"
# A model WebLLM lists (so it has a compiled library), whose weights this host does not have.
WEBLLM_ID = "SmolLM2-360M-Instruct-q4f16_1-MLC"


class CorsHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with the headers a cross-origin isolated page needs from another host."""

    def end_headers(self) -> None:
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Cross-Origin-Resource-Policy", "cross-origin")
        super().end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def weights_host() -> Iterator[str]:
    root = Path(tempfile.mkdtemp(prefix="parley-weights-"))
    for kind in ("smollm2", "tiny"):  # built once, then cached under ~/.cache/parley/onnx-fixture/
        model = onnx_model.ensure(kind)
        (root / model.name).symlink_to(model)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(CorsHandler, directory=str(root)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def server(weights_host: str) -> Iterator[LiveServer]:
    live = LiveServer({"PARLEY_BROWSER_MODEL_HOSTS": weights_host}).start()
    live.create_user("alice", "alice-password-1")
    size = sum(f.stat().st_size for f in onnx_model.MODEL.rglob("*") if f.is_file())
    live.manage(
        "shell",
        "-c",
        (
            "from chat.models import BrowserModel\n"
            f"BrowserModel.objects.create(engine='transformers', display_name={TRANSFORMERS!r}, size_bytes={size},"
            f" weights_url={weights_host + '/' + onnx_model.NAME!r}, licence='Apache-2.0')\n"
            f"BrowserModel.objects.create(engine='webllm', display_name={WEBLLM!r}, size_bytes=376000000,"
            f" weights_url={weights_host + '/mlc-ai/' + WEBLLM_ID!r}, licence='Apache-2.0')\n"
        ),
    )
    yield live
    live.stop()


@pytest.fixture(scope="module")
def gpu_context(chromium: Any) -> Iterator[Any]:
    # A second browser from the same Playwright: one sync Playwright per thread is all there is.
    browser = chromium.browser_type.launch(executable_path=CHROMIUM, args=WEBGPU_ARGS)
    context = browser.new_context()
    yield context
    context.close()
    browser.close()


def signed_in(context: Any, server: LiveServer) -> Any:
    page = context.new_page()
    page.goto(server.url + "/chat/")
    if "/accounts/login/" in page.url:
        log_in(page, server)
    consent_given(page)
    return page


WATCH_STREAM = """() => {
  window.parleyLengths = new Set();
  new MutationObserver(() => {
    const answer = [...document.querySelectorAll('.message[data-role=assistant]')].pop();
    if (answer?.dataset.status === 'streaming') window.parleyLengths.add(answer.innerText.length);
  }).observe(document.getElementById('messages'), {subtree: true, childList: true, characterData: true, attributes: true});
}"""


def answer_with_transformers(page: Any, weights_host: str) -> tuple[str, str, Traffic]:
    traffic = Traffic(page)
    page.select_option("#model", label=TRANSFORMERS)
    assert "unavailable" not in page.inner_text("#local-status")
    set_max_tokens(page, 16)
    page.evaluate(WATCH_STREAM)
    ask(page, "What is the capital of France?")
    finished(page, 1, timeout=300_000)
    answer = page.locator(ANSWER).first
    assert answer.get_attribute("data-status") in ("complete", "incomplete"), answer.inner_text()
    text = answer.locator(".message-body").inner_text()
    assert text.strip(), "the model said nothing"
    # Streamed: the answer was drawn at several lengths before it finished.
    assert page.evaluate("window.parleyLengths.size") >= 3
    assert any(u.startswith(weights_host) and u.endswith("onnx/model_q4.onnx") for _, u, _ in traffic.requests)
    return text, page.inner_text("#local-status"), traffic


def test_transformers_js_answers_through_its_real_engine_on_webassembly(
    context: Any, server: LiveServer, weights_host: str
) -> None:
    page = signed_in(context, server)
    text, status, traffic = answer_with_transformers(page, weights_host)
    assert "on WebAssembly" in status, status
    assert "Paris" in text, text
    assert len(traffic.posts("/api/browser-models/exchanges/")) == 1
    page.close()


ON_WEBGPU = """async (url) => {
  const { load } = await import('/static/parley/engines/transformers.js');
  const model = {id: 'browser:tiny', name: 'tiny', engine: 'transformers', url, size: 1, licence: '', internet: true};
  const loaded = await load(model);  // picks WebGPU when there is an adapter
  const events = [];
  for await (const e of loaded.generate([{role: 'user', content: 'Hello'}], {max_tokens: 4, temperature: 1},
                                        new AbortController().signal)) events.push(e);
  await loaded.unload();
  return {device: loaded.device, events};
}"""


def test_transformers_js_runs_on_webgpu_through_swiftshader(
    gpu_context: Any, server: LiveServer, weights_host: str
) -> None:
    # The real model needs ~30 s a token on SwiftShader; the tiny one in the same layout checks
    # the same WebGPU path (onnxruntime's WebGPU backend, Parley's worker) in well under a minute.
    page = signed_in(gpu_context, server)
    assert page.evaluate("(async () => Boolean(await navigator.gpu?.requestAdapter()))()") is True
    result = page.evaluate(ON_WEBGPU, f"{weights_host}/{onnx_model.TINY_NAME}")
    assert result["device"] == "webgpu"
    end = result["events"][-1]
    assert (end["type"], end["status"], end["reason"]) == ("end", "complete", "length"), end
    assert end["usage"]["output_tokens"] == 4
    assert any(e["type"] == "delta" and e["text"] for e in result["events"])
    page.close()


def test_webllm_on_a_webgpu_adapter_starts_loading_and_fails_clearly_without_weights(
    gpu_context: Any, server: LiveServer, weights_host: str
) -> None:
    page = signed_in(gpu_context, server)
    traffic = Traffic(page)
    page.select_option("#model", label=WEBLLM)
    # Agreed to before (consent_given), so the page starts loading it at once, and says why it failed.
    page.wait_for_function(
        "() => document.getElementById('local-status').innerText.includes('could not be downloaded')", timeout=60_000
    )
    assert "unavailable here" not in page.inner_text("#local-status")  # the adapter is there
    ask(page, "Hello?")
    page.wait_for_selector(f'{ANSWER}[data-status="error"]', timeout=120_000)
    message = page.locator(f"{ANSWER} .message-meta").inner_text()
    assert "could not be downloaded from 127.0.0.1" in message and "files are missing" in message, message
    # It reached WebLLM's loading step: the library was loaded and the model's files were asked for.
    assert any("/vendor/web-llm-0.2.86/index.js" in u for _, u, _ in traffic.requests)
    assert any(u.startswith(f"{weights_host}/mlc-ai/{WEBLLM_ID}/") for _, u, _ in traffic.requests), traffic.requests
    assert traffic.posts("/api/browser-models/exchanges/") == []  # a failure is not saved as an answer
    page.close()


def test_webllm_without_webgpu_says_so_before_anything_is_downloaded(
    context: Any, server: LiveServer, weights_host: str
) -> None:
    page = signed_in(context, server)
    traffic = Traffic(page)
    page.select_option("#model", label=WEBLLM)
    page.wait_for_function("() => document.getElementById('local-status').dataset.state === 'unavailable'")
    status = page.inner_text("#local-status")
    assert "unavailable here" in status and "WebGPU" in status and "Nothing was downloaded" in status
    ask(page, "Hello?")
    page.wait_for_selector(f'{ANSWER}[data-status="error"]', timeout=30_000)
    assert "unavailable here" in page.locator(f"{ANSWER} .message-meta").inner_text()
    # (The Transformers.js model picked in an earlier test may be preloading; WebLLM fetched nothing.)
    assert not [u for _, u, _ in traffic.requests if "/mlc-ai/" in u or "web-llm" in u]
    assert page.locator("#local-consent").count() == 0
    page.close()
