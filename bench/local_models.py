"""SmolLM2 in the browser (wllama), single- vs multi-threaded, in real headless Chromium.

Both runs use the real chat page of a real Parley (cross-origin isolated, so SharedArrayBuffer
exists) and the engine module the page uses; only `threads` differs. The weights are fetched
once, then both runs load them from the browser's cache, so "load" is WebAssembly + model load
time, not network time. Prompt and settings match docs/in-browser.md's reference table.
"""

from __future__ import annotations

from typing import Any

from tests.chromium import CHROMIUM
from tests.chromium import CHROMIUM_ARGS as ARGS
from tests.live import LiveServer

PROMPT = "Write a long story about a robot who learns to paint."
TOKENS = 100

MEASURE = """
async ([threads, prompt, tokens]) => {
  const data = JSON.parse(document.getElementById("parley-data").textContent);
  const model = data.browser_models.find((m) => m.engine === "wllama");
  const { load } = await import("/static/parley/engines/wllama.js");
  const t0 = performance.now();
  const loaded = await load(model, threads ? { threads } : {});
  const t1 = performance.now();
  let first = null, count = 0;
  const turns = [{ role: "user", content: prompt }];
  for await (const e of loaded.generate(turns, { temperature: 0, max_tokens: tokens }, new AbortController().signal)) {
    if (e.type === "delta" && first === null) first = performance.now();
    if (e.type === "end") count = e.usage?.output_tokens ?? 0;
  }
  const t2 = performance.now();
  await loaded.unload();
  return { threads: loaded.threads, load_s: (t1 - t0) / 1000, first_token_s: (first - t1) / 1000,
           tokens: count, tokens_per_s: count / ((t2 - first) / 1000), isolated: crossOriginIsolated,
           cores: navigator.hardwareConcurrency };
}
"""


def run() -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    server = LiveServer().start()
    server.create_user("bench", "bench-password-1")
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_context().new_page()
            page.goto(server.url + "/accounts/login/")
            page.fill("input[name=username]", "bench")
            page.fill("input[name=password]", "bench-password-1")
            page.click("button[type=submit], input[type=submit]")
            page.wait_for_url("**/chat/**")
            first_visit = page.evaluate(MEASURE, [1, "Hi", 4])  # downloads the weights into the cache
            single = page.evaluate(MEASURE, [1, PROMPT, TOKENS])
            multi = page.evaluate(MEASURE, [0, PROMPT, TOKENS])  # 0: all cores, as the page does
            browser.close()
    finally:
        server.stop()
    cores = multi["cores"]
    multi_threads = multi["threads"]
    return {
        "first_visit_download_and_load_s": first_visit["load_s"],
        "page_cross_origin_isolated": multi["isolated"],
        "single_thread_load_s": single["load_s"],
        "single_thread_first_token_s": single["first_token_s"],
        "single_thread_tokens_per_s": single["tokens_per_s"],
        f"multi_thread_{multi_threads}_of_{cores}_load_s": multi["load_s"],
        f"multi_thread_{multi_threads}_of_{cores}_first_token_s": multi["first_token_s"],
        f"multi_thread_{multi_threads}_of_{cores}_tokens_per_s": multi["tokens_per_s"],
        "speed_up": multi["tokens_per_s"] / single["tokens_per_s"],
    }


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key}: {value:.2f}" if isinstance(value, float) else f"{key}: {value}")
