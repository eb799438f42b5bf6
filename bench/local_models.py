"""SmolLM2 in the browser (wllama) in real headless Chromium: 1 vs 2 threads, what the thread
probe picks, the first token a user waits for, and whether the sampling defaults stop loops.

Every run uses the real chat page of a real Parley (cross-origin isolated, so SharedArrayBuffer
exists) and the engine module the page uses. The weights are fetched once, then every run loads
them from the browser's cache, so "load" is WebAssembly + model load time, not network time.
The machine's load average is printed beside each figure: on 2 shared cores it decides them.
"""

from __future__ import annotations

import os
import re
from typing import Any

from tests.chromium import CHROMIUM
from tests.chromium import CHROMIUM_ARGS as ARGS
from tests.live import LiveServer

PROMPT = "Write a long story about a robot who learns to paint."
TOKENS = 100
LOOP_TOKENS = 200

MEASURE = """
async ([threads, prompt, tokens, sampling, warm]) => {
  const data = JSON.parse(document.getElementById("parley-data").textContent);
  const model = data.browser_models.find((m) => m.engine === "wllama");
  const { load } = await import("/static/parley/engines/wllama.js");
  const { SAMPLING } = await import("/static/parley/engines/index.js");
  const t0 = performance.now();
  const loaded = await load(model, threads ? { threads } : {});
  if (warm) await loaded.warm();
  const t1 = performance.now();
  let first = null, count = 0, text = "";
  const turns = [{ role: "user", content: prompt }];
  const options = sampling ? { ...SAMPLING, max_tokens: tokens } : { temperature: 0, max_tokens: tokens };
  for await (const e of loaded.generate(turns, options, new AbortController().signal)) {
    if (e.type === "delta") { if (first === null) first = performance.now(); text += e.text; }
    if (e.type === "end") count = e.usage?.output_tokens ?? 0;
  }
  const t2 = performance.now();
  await loaded.unload();
  return { threads: loaded.threads, load_s: (t1 - t0) / 1000, first_token_s: (first - t1) / 1000,
           load_and_first_token_s: (first - t0) / 1000, tokens: count,
           tokens_per_s: count / ((t2 - first) / 1000), text, isolated: crossOriginIsolated,
           cores: navigator.hardwareConcurrency };
}
"""

PROBE = "async () => (await import('/static/parley/engines/threads.js')).probe(2)"


def load_average() -> str:
    return f"{os.getloadavg()[0]:.1f}"


def repeated_share(text: str, n: int = 4) -> float:
    """Share of word n-grams that already appeared earlier: 0 for fresh text, near 1 for a loop."""
    words = re.findall(r"\w+", text.lower())
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return 1 - len(set(grams)) / len(grams) if grams else 0.0


def run() -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    server = LiveServer().start()
    server.create_user("bench", "bench-password-1")
    results: dict[str, Any] = {}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_context().new_page()
            page.goto(server.url + "/accounts/login/")
            page.fill("input[name=username]", "bench")
            page.fill("input[name=password]", "bench-password-1")
            page.click("button[type=submit], input[type=submit]")
            page.wait_for_url("**/chat/**")
            # The first visit downloads the weights into the browser's cache.
            first_visit = page.evaluate(MEASURE, [1, "Hi", 4, False, False])
            results["first_visit_download_and_load_s"] = first_visit["load_s"]
            results["page_cross_origin_isolated"] = first_visit["isolated"]
            for i, threads in enumerate((1, 2, 1, 2)):  # interleaved: a change in the load hits both
                avg = load_average()
                r = page.evaluate(MEASURE, [threads, PROMPT, TOKENS, False, False])
                run_no = i // 2 + 1
                for key in ("load_s", "first_token_s", "tokens_per_s"):
                    results[f"run {run_no}: {threads} thread(s) {key} (load avg {avg})"] = r[key]
            avg = load_average()
            probe = page.evaluate(PROBE)
            results[f"probe: threads chosen (load avg {avg})"] = probe["threads"]
            results[f"probe: 2-worker efficiency (load avg {avg})"] = probe["efficiency"]
            # What a user waits for once the weights are cached: load + first token, page defaults.
            avg = load_average()
            default = page.evaluate(MEASURE, [0, "What is the capital of France?", 16, True, False])
            results[f"cached load + first token, probe's {default['threads']} thread(s) (load avg {avg})"] = default[
                "load_and_first_token_s"
            ]
            results[f"first token right after the load (load avg {avg})"] = default["first_token_s"]
            # The page loads and warms a model the user already agreed to while they type
            # (local.js), so after Send they wait only for this:
            avg = load_average()
            warmed = page.evaluate(MEASURE, [0, "What is the capital of France?", 16, True, True])
            key = f"first token after Send, model preloaded and warmed (load avg {avg})"
            results[key] = warmed["first_token_s"]
            greedy = page.evaluate(MEASURE, [0, PROMPT, LOOP_TOKENS, False, False])
            sampled = page.evaluate(MEASURE, [0, PROMPT, LOOP_TOKENS, True, False])
            results[f"repeated 4-grams in {LOOP_TOKENS} tokens, temperature 0"] = repeated_share(greedy["text"])
            results[f"repeated 4-grams in {LOOP_TOKENS} tokens, page defaults"] = repeated_share(sampled["text"])
            browser.close()
    finally:
        server.stop()
    return results


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key}: {value:.2f}" if isinstance(value, float) else f"{key}: {value}")
