"""The chat page under a fast model and a long chat, in headless Chromium.

A 4,000-token markdown-heavy answer (headings, lists, tables, code) streams from the fake
provider at 1,000 tokens/s through a real Daphne process. The page is instrumented before
its own scripts run: a WebSocket wrapper notes when the last token's frame arrives, a
MutationObserver notes when that token reaches the DOM, a PerformanceObserver records long
tasks, and a requestAnimationFrame loop counts frames. Scripting time is Chromium's own
ScriptDuration (CDP Performance.getMetrics) before and after. Then a 500-message conversation
is opened and its load time and JS heap are taken.
"""

from __future__ import annotations

import re
import time
from typing import Any

from bench.relay import BENCH_ENV
from tests.chromium import launch, log_in
from tests.fakeprovider import FakeProvider, Script
from tests.live import LiveServer

ANSWER_TOKENS = 4_000
TOKENS_PER_SECOND = 1_000
LONG_CHAT_MESSAGES = 500
END_MARK = "ENDMARK"

_SECTION = """## Step {n}: configure the service

Some **bold** context and *emphasis*, with `inline code`, and a [link](https://example.com/{n}).

- First item of the list with a few words
- Second item, also short
  - a nested item
- Third item

| Setting | Default | Meaning |
|---|---|---|
| timeout | 30 | seconds before giving up |
| retries | 3 | attempts after a failure |

```python
def handler_{n}(request):
    items = [x * 2 for x in range(10)]
    return {{"status": "ok", "items": items}}
```

"""

INSTRUMENT = f"""
(() => {{
  const b = window.__bench = {{ longest: 0, longtasks: 0, frames: 0, firstDeltaAt: 0, lastDeltaAt: 0,
    markReceivedAt: 0, markShownAt: 0, counting: false }};
  new PerformanceObserver((list) => {{
    if (!b.counting) return;
    for (const e of list.getEntries()) {{ b.longtasks++; b.longest = Math.max(b.longest, e.duration); }}
  }}).observe({{ type: "longtask" }});
  const tick = () => {{ if (b.counting) b.frames++; requestAnimationFrame(tick); }};
  requestAnimationFrame(tick);
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {{
    constructor(...args) {{
      super(...args);
      // Registered before the page's own listener, so this is when the frame arrived.
      this.addEventListener("message", (e) => {{
        if (typeof e.data !== "string" || !e.data.includes('"type":"delta"')) return;
        const now = performance.now();
        b.firstDeltaAt ||= now;
        b.lastDeltaAt = now;
        if (e.data.includes("{END_MARK}")) b.markReceivedAt = now;
      }});
    }}
  }};
  new MutationObserver(() => {{
    if (!b.markReceivedAt || b.markShownAt) return;
    const bodies = document.querySelectorAll('.message[data-role="assistant"] .message-body');
    const last = bodies[bodies.length - 1];
    if (last && last.textContent.includes("{END_MARK}")) b.markShownAt = performance.now();
  }}).observe(document, {{ childList: true, subtree: true, characterData: true }});
}})();
"""


def answer_tokens(count: int) -> list[str]:
    """`count` word-sized tokens of markdown, whitespace and newlines kept, ending with END_MARK."""
    text = "".join(_SECTION.format(n=n) for n in range(1, count // 60 + 2))
    tokens = re.findall(r"\s*\S+", text)
    assert len(tokens) >= count - 1
    return [*tokens[:count - 1], f" {END_MARK}"]


def metrics(cdp: Any) -> dict[str, float]:
    return {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}


def long_chat(server: LiveServer, count: int) -> str:
    """A conversation of `count` messages (alternating, markdown answers); returns its id."""
    code = f"""
from django.contrib.auth.models import User
from chat.models import Conversation, Message
alice = User.objects.get(username="alice")
c = Conversation.objects.create(owner=alice, title="Long chat")
parent = None
for i in range({count}):
    user = i % 2 == 0
    text = f"Question {{i}}?" if user else {_SECTION!r}.format(n=i)
    parent = Message.objects.create(conversation=c, parent=parent, role="user" if user else "assistant",
        content=text, status="complete", reason="" if user else "stop", model_name="" if user else "Fake Model")
print(c.id)
"""
    return server.manage("shell", "-c", code).strip().splitlines()[-1]


def stream(page: Any, cdp: Any, fake: FakeProvider) -> dict[str, float]:
    fake.enqueue(
        Script(tokens=answer_tokens(ANSWER_TOKENS), tokens_per_second=TOKENS_PER_SECOND, usage=(40, ANSWER_TOKENS))
    )
    before = metrics(cdp)
    page.evaluate("window.__bench.counting = true")
    page.fill("#prompt", "Write the whole deployment guide.")
    page.keyboard.press("Enter")
    page.wait_for_selector('.message[data-role="assistant"][data-status="complete"]', timeout=60_000)
    page.wait_for_timeout(200)
    page.evaluate("window.__bench.counting = false")
    after = metrics(cdp)
    b = page.evaluate("window.__bench")
    seconds = (b["lastDeltaAt"] - b["firstDeltaAt"]) / 1000
    return {
        "answer_tokens": ANSWER_TOKENS,
        "stream_seconds": seconds,
        "last_token_received_to_shown_ms": b["markShownAt"] - b["markReceivedAt"],
        "longest_task_ms": b["longest"],
        "long_tasks": b["longtasks"],
        "scripting_ms": (after["ScriptDuration"] - before["ScriptDuration"]) * 1000,
        "layout_ms": (after["LayoutDuration"] - before["LayoutDuration"]) * 1000,
        "frames_per_second": b["frames"] / (seconds + 0.2) if seconds > 0 else 0.0,
    }


def load_long_chat(browser: Any, server: LiveServer, conversation: str) -> dict[str, float]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    log_in(page, server)
    cdp = context.new_cdp_session(page)
    cdp.send("Performance.enable")
    started = time.perf_counter()
    page.goto(f"{server.url}/chat/{conversation}/")
    page.wait_for_function(f"document.querySelectorAll('.message').length === {LONG_CHAT_MESSAGES}")
    page.wait_for_function("() => new Promise((r) => requestAnimationFrame(() => r(true)))")
    load_ms = (time.perf_counter() - started) * 1000
    ready_ms = page.evaluate("performance.now()")
    cdp.send("HeapProfiler.collectGarbage")
    m = metrics(cdp)
    context.close()
    return {
        "long_chat_messages": LONG_CHAT_MESSAGES,
        "long_chat_load_ms": load_ms,
        "long_chat_ready_after_navigation_ms": ready_ms,
        "long_chat_js_heap_mb": m["JSHeapUsedSize"] / 2**20,
        "long_chat_dom_nodes": int(m["Nodes"]),
    }


def run() -> dict[str, Any]:
    fake = FakeProvider().start()
    server = LiveServer(BENCH_ENV).start()
    try:
        server.create_user("alice", "alice-password-1")
        server.add_fake_provider(fake.url, model="fake-model=Fake Model", default="fake-model", label="Fake Lab")
        conversation = long_chat(server, LONG_CHAT_MESSAGES)
        with launch() as browser:
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            context.add_init_script(INSTRUMENT)
            page = context.new_page()
            log_in(page, server)
            cdp = context.new_cdp_session(page)
            cdp.send("Performance.enable")
            results: dict[str, Any] = stream(page, cdp, fake)
            context.close()
            results.update(load_long_chat(browser, server, conversation))
        return results
    finally:
        server.stop()
        fake.stop()


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key}: {value:.1f}" if isinstance(value, float) else f"{key}: {value}")
