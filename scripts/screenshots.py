"""Take the README's screenshots of the chat page, light and dark, from a real Parley.

    .venv/bin/python -m scripts.screenshots      (writes docs/img/chat-light.png, chat-dark.png, code-panel.png)

A throwaway server and the fake provider, a few conversations spread over the date groups
(one pinned), and one answer with a list, a table and code, so the pictures show what
the page really draws.
"""

from __future__ import annotations

from pathlib import Path

from tests.chromium import launch, log_in
from tests.fakeprovider import FakeProvider, Script
from tests.live import ROOT, LiveServer

ANSWER = """Here is a small plan:

1. **Measure** the current latency.
2. Pick the *slowest* endpoint.
3. Add an index.

| Endpoint | p95 (ms) |
|---|---|
| /search | 420 |
| /list | 35 |

```python
def p95(samples: list[float]) -> float:
    return sorted(samples)[int(len(samples) * 0.95)]
```
"""

SEED = """
from django.contrib.auth.models import User
from django.utils import timezone
from datetime import timedelta
from chat.models import Conversation
alice = User.objects.get(username='alice')
for title, days, pinned in [('Team offsite agenda', 20, True), ('Regex for ISO dates', 1, False),
                            ('Postgres vacuum settings', 3, False), ('Birthday poem for Sam', 5, False),
                            ('Explain CRDTs simply', 30, False)]:
    c = Conversation.objects.create(owner=alice, title=title, pinned=pinned)
    Conversation.objects.filter(id=c.id).update(updated=timezone.now() - timedelta(days=days))
"""


def main() -> None:
    out = ROOT / "docs" / "img"
    out.mkdir(parents=True, exist_ok=True)
    fake = FakeProvider().start()
    server = LiveServer(extra_env={"PARLEY_AUTO_TITLES": "0"}).start()  # keep the typed title
    try:
        server.create_user("alice", "alice-password-1")
        server.manage(
            "provider", "add", "fake", "--kind", "openai", "--base-url", fake.url + "/v1",
            "--label", "Fake Lab", "--model", "fake-model=Fake Model", "--default", "fake-model",
        )
        server.manage("shell", "-c", SEED)
        fake.enqueue(Script(tokens=[ANSWER[i : i + 12] for i in range(0, len(ANSWER), 12)]))
        with launch() as browser:
            page = browser.new_context(viewport={"width": 1280, "height": 760}).new_page()
            log_in(page, server)
            page.fill("#prompt", "How do I find our slowest endpoint?")
            page.keyboard.press("Enter")
            page.wait_for_selector('.message[data-role="assistant"][data-status="complete"]')
            for scheme in ("light", "dark"):
                page.evaluate("(t) => { document.documentElement.dataset.theme = t }", scheme)
                page.mouse.move(0, 0)
                path: Path = out / f"chat-{scheme}.png"
                page.screenshot(path=str(path))
                print(f"wrote {path.relative_to(ROOT)}")
            # The "Use from code" panel for the picked model (docs/api.md).
            page.evaluate("() => { document.documentElement.dataset.theme = 'light' }")
            page.click("#code-panel-open")
            page.wait_for_selector("#code-panel[open] #code-panel-body pre")
            path = out / "code-panel.png"
            page.screenshot(path=str(path))
            print(f"wrote {path.relative_to(ROOT)}")
    finally:
        server.stop()
        fake.stop()


if __name__ == "__main__":
    main()
