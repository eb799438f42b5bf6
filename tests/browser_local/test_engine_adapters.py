"""The WebLLM and Transformers.js adapters, unit-tested inside Chromium with fake engines.

What we check here is the mapping from each engine's own stream to Parley's AnswerEvents, Stop,
the WebGPU-missing path and the pure helpers; the real engines run in
test_transformers_and_webllm.py. The modules are served as plain static files: no bundler.
"""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

STATIC = Path(__file__).resolve().parents[2] / "static"


@pytest.fixture(scope="module")
def static_url() -> Iterator[str]:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(STATIC))
    handler.log_message = lambda *a: None  # type: ignore[method-assign]
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()


@pytest.fixture
def js(chromium: Any, static_url: str) -> Iterator[Any]:
    page = chromium.new_page()
    page.goto(static_url + "/parley/")
    yield page.evaluate
    page.close()


FAKE_WEBLLM = """
const chunks = (parts, finish, abortAt) => {
 const engine = {
  interrupted: false,
  interruptGenerate() { engine.interrupted = true; },
  chat: { completions: { create: async () => (async function* () {
    for (const [i, p] of parts.entries()) {
      if (engine.interrupted) { yield {choices: [{delta: {}, finish_reason: "abort"}]}; return; }
      yield {choices: [{delta: {content: p}, finish_reason: null}]};
      if (i === abortAt) engine.controller.abort();
    }
    yield {choices: [{delta: {}, finish_reason: finish}]};
    yield {choices: [], usage: {prompt_tokens: 7, completion_tokens: parts.length}};
  })() } },
 };
 return engine;
};
const collect = async (gen) => { const out = []; for await (const e of gen) out.push(e); return out; };
"""


def test_webllm_chunks_become_deltas_then_an_end_with_usage(js: Any) -> None:
    events = js(
        FAKE_WEBLLM
        + """
      (async () => {
        const { generate } = await import("/parley/engines/webllm.js");
        const engine = chunks(["Par", "is", "."], "stop", -1);
        engine.controller = new AbortController();
        return collect(generate(engine, [{role: "user", content: "hi"}], {}, engine.controller.signal));
      })()"""
    )
    assert [e["text"] for e in events if e["type"] == "delta"] == ["Par", "is", "."]
    assert events[-1] == {
        "type": "end",
        "status": "complete",
        "reason": "stop",
        "usage": {"input_tokens": 7, "output_tokens": 3},
        "error": None,
    }


def test_webllm_length_and_stop_map_to_protocol_reasons(js: Any) -> None:
    ends = js(
        FAKE_WEBLLM
        + """
      (async () => {
        const { generate } = await import("/parley/engines/webllm.js");
        const long = chunks(["a", "b"], "length", -1); long.controller = new AbortController();
        const stopped = chunks(["a", "b", "c", "d"], "stop", 1); stopped.controller = new AbortController();
        const a = await collect(generate(long, [], {}, long.controller.signal));
        const b = await collect(generate(stopped, [], {}, stopped.controller.signal));
        return [a.at(-1), b.at(-1), stopped.interrupted, b.filter(e => e.type === "delta").length];
      })()"""
    )
    assert (ends[0]["status"], ends[0]["reason"]) == ("complete", "length")
    assert (ends[1]["status"], ends[1]["reason"]) == ("incomplete", "stopped")
    assert ends[2] is True and ends[3] == 2  # interrupted, and the text before Stop was kept


def test_webllm_failure_before_any_text_is_an_error_end(js: Any) -> None:
    end = js("""
      (async () => {
        const { generate } = await import("/parley/engines/webllm.js");
        const engine = { interruptGenerate() {}, chat: { completions: { create: async () => { throw new Error("device lost"); } } } };
        const out = []; for await (const e of generate(engine, [], {}, new AbortController().signal)) out.push(e);
        return out.at(-1);
      })()""")
    assert end["status"] == "error" and "device lost" in end["error"]["message"]


def test_webgpu_engines_are_unavailable_without_an_adapter_with_the_reason(js: Any) -> None:
    result = js("""
      (async () => {
        const engines = await import("/parley/engines/index.js");
        const webllm = await import("/parley/engines/webllm.js");
        const model = {id: "browser:x", name: "Llama", engine: "webllm", url: "https://huggingface.co/mlc-ai/Llama-3.2-1B-Instruct-q4f16_1-MLC", size: 1, licence: "", internet: true};
        const noGpu = await engines.webgpu({});
        const noAdapter = await engines.webgpu({gpu: {requestAdapter: async () => null}});
        const here = await engines.availability(model);
        let thrown = null;
        try { await webllm.load(model, {nav: {}}); } catch (e) { thrown = [e.constructor.name, e.message]; }
        const wllama = await engines.availability({...model, engine: "wllama"});
        return {noGpu, noAdapter, here, thrown, wllama, id: webllm.modelId(model.url)};
      })()""")
    assert result["noGpu"] == {"ok": False, "reason": "this browser has no WebGPU"}
    assert result["noAdapter"]["ok"] is False and "adapter" in result["noAdapter"]["reason"]
    assert result["here"]["ok"] is False  # headless Chromium here has no WebGPU adapter
    assert result["thrown"][0] == "Unavailable" and "needs WebGPU" in result["thrown"][1]
    assert result["wllama"] == {"ok": True}
    assert result["id"] == "Llama-3.2-1B-Instruct-q4f16_1-MLC"


FAKE_WORKER = """
class FakeWorker extends EventTarget {
  constructor(script) { super(); this.script = script; this.posted = []; }
  postMessage(m) {
    this.posted.push(m);
    const step = this.script[m.type];
    if (step) step(this, m);
  }
  emit(data) { setTimeout(() => this.dispatchEvent(new MessageEvent("message", {data})), 0); }
}
const collect = async (gen) => { const out = []; for await (const e of gen) out.push(e); return out; };
"""


def test_transformers_worker_messages_become_answer_events(js: Any) -> None:
    result = js(
        FAKE_WORKER
        + """
      (async () => {
        const { generate, repoId } = await import("/parley/engines/transformers.js");
        const worker = new FakeWorker({generate: (w) => {
          w.emit({type: "delta", text: "Paris"}); w.emit({type: "delta", text: " is."});
          w.emit({type: "done", output_tokens: 2, stopped: false, length: false});
        }});
        const events = await collect(generate(worker, [{role: "user", content: "hi"}], {temperature: 0}, new AbortController().signal));
        return {events, posted: worker.posted, repo: repoId("https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct")};
      })()"""
    )
    assert [e["text"] for e in result["events"] if e["type"] == "delta"] == ["Paris", " is."]
    assert result["events"][-1] == {
        "type": "end",
        "status": "complete",
        "reason": "stop",
        "usage": {"output_tokens": 2},
        "error": None,
    }
    assert result["posted"][0]["type"] == "generate" and result["posted"][0]["temperature"] == 0
    assert result["repo"] == "HuggingFaceTB/SmolLM2-135M-Instruct"


def test_transformers_stop_interrupts_the_worker_and_keeps_the_text(js: Any) -> None:
    result = js(
        FAKE_WORKER
        + """
      (async () => {
        const { generate } = await import("/parley/engines/transformers.js");
        const worker = new FakeWorker({
          generate: (w) => w.emit({type: "delta", text: "Once upon"}),
          interrupt: (w) => w.emit({type: "done", output_tokens: 2, stopped: true, length: false}),
        });
        const stop = new AbortController();
        const out = [];
        for await (const e of generate(worker, [], {}, stop.signal)) { out.push(e); if (e.type === "delta") stop.abort(); }
        return {out, posted: worker.posted.map(m => m.type)};
      })()"""
    )
    assert result["posted"] == ["generate", "interrupt"]
    assert result["out"][0]["text"] == "Once upon"
    assert (result["out"][-1]["status"], result["out"][-1]["reason"]) == ("incomplete", "stopped")


def test_transformers_worker_error_ends_with_a_plain_message(js: Any) -> None:
    end = js(
        FAKE_WORKER
        + """
      (async () => {
        const { generate } = await import("/parley/engines/transformers.js");
        const worker = new FakeWorker({generate: (w) => w.emit({type: "error", message: "no wasm backend"})});
        return (await collect(generate(worker, [], {}, new AbortController().signal))).at(-1);
      })()"""
    )
    assert end["status"] == "error" and "no wasm backend" in end["error"]["message"]


def test_the_model_reads_the_stored_markdown_of_the_branch_not_the_rendered_page(js: Any) -> None:
    turns = js("""
      (async () => {
        const { turnsFrom } = await import("/parley/local.js");
        return turnsFrom([
          {id: "1", role: "user", content: "Show **bold** and `code`", status: "complete"},
          {id: "2", role: "assistant", content: "```js\\nlet x = 1;\\n```", status: "complete"},
          {id: "3", role: "assistant", content: "", status: "error"},
          {id: "4", role: "user", content: "Again", status: "complete"},
        ], "Be brief.");
      })()""")
    assert turns == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Show **bold** and `code`"},
        {"role": "assistant", "content": "```js\nlet x = 1;\n```"},
        {"role": "user", "content": "Again"},
    ]


def test_transformers_finds_hub_repos_and_plain_folders(js: Any) -> None:
    found = js("""
      (async () => {
        const { source } = await import("/parley/engines/transformers.js");
        return [source("HuggingFaceTB/SmolLM2-135M-Instruct"),
                source("https://huggingface.co/onnx-community/Qwen2.5-0.5B-Instruct/"),
                source("http://127.0.0.1:9000/models/SmolLM2-ONNX"),
                source("/browser-models/SmolLM2-ONNX/", "http://parley.example/chat/")];
      })()""")
    assert found == [
        {"host": "https://huggingface.co/", "model": "HuggingFaceTB/SmolLM2-135M-Instruct", "hub": True},
        {"host": "https://huggingface.co/", "model": "onnx-community/Qwen2.5-0.5B-Instruct", "hub": True},
        {"host": "http://127.0.0.1:9000/", "model": "models/SmolLM2-ONNX", "hub": False},
        {"host": "http://parley.example/", "model": "browser-models/SmolLM2-ONNX", "hub": False},
    ]


def test_a_webllm_model_without_a_compiled_library_is_refused_with_the_reason(js: Any) -> None:
    result = js("""
      (async () => {
        const { record } = await import("/parley/engines/webllm.js");
        const lib = {prebuiltAppConfig: {model_list: [{model_id: "Known-MLC", model: "https://huggingface.co/mlc-ai/Known-MLC", model_lib: "lib.wasm"}]}};
        const mine = record(lib, {name: "Known", url: "http://127.0.0.1:9/mlc-ai/Known-MLC"});
        let refused = null;
        try { record(lib, {name: "Mystery", url: "https://huggingface.co/me/Mystery-MLC"}); }
        catch (e) { refused = [e.constructor.name, e.message]; }
        return {mine, refused};
      })()""")
    assert result["mine"] == {
        "model_id": "Known-MLC",
        "model": "http://127.0.0.1:9/mlc-ai/Known-MLC",
        "model_lib": "lib.wasm",
    }
    assert result["refused"][0] == "Unavailable" and "no compiled model library" in result["refused"][1]


def test_the_thread_probe_measures_how_many_cores_are_free(js: Any) -> None:
    result = js("""
      (async () => (await import("/parley/engines/threads.js")).probe(2))()""")
    assert result["threads"] in (1, 2) and 0 < result["efficiency"] <= 1.5
    assert (result["threads"] == 2) == (result["efficiency"] >= 0.85)


def test_device_only_chats_kept_by_the_first_version_become_conversations(js: Any) -> None:
    kept = js("""
      (async () => {
        await new Promise((resolve) => { const r = indexedDB.deleteDatabase("parley-local"); r.onsuccess = r.onerror = resolve; });
        await new Promise((resolve, reject) => {
          const r = indexedDB.open("parley-local", 1);
          r.onupgradeneeded = () => r.result.createObjectStore("exchanges", { keyPath: "client_id" })
            .put({client_id: "00000000-0000-4000-8000-000000000001", model: "browser:x", prompt: "Old question",
                  answer: "Old answer", reason: "stop"});
          r.onsuccess = () => { r.result.close(); resolve(); };
          r.onerror = () => reject(r.error);
        });
        const { DeviceStore } = await import("/parley/devicestore.js");
        const store = new DeviceStore();
        const [conversation] = await store.list();
        const { messages } = await store.get(conversation.id);
        return {conversation, messages: messages.map((m) => [m.role, m.content, m.parent === null])};
      })()""")
    assert kept["conversation"]["title"] == "Old question" and kept["conversation"]["device"] is True
    assert kept["conversation"]["id"] == "device-00000000-0000-4000-8000-000000000001"
    assert kept["messages"] == [["user", "Old question", True], ["assistant", "Old answer", False]]
