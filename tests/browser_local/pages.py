"""What the in-browser tests do to the chat page, and how they watch what leaves it."""

from __future__ import annotations

import json
from typing import Any

MODEL = "SmolLM2 135M Instruct"
ANSWER = '.message[data-role="assistant"]'
QUESTION = '.message[data-role="user"]'


class Traffic:
    """Every HTTP request and WebSocket frame the page sends, workers included."""

    def __init__(self, page: Any) -> None:
        self.requests: list[tuple[str, str, str]] = []
        self.frames: list[str] = []
        page.on("request", lambda r: self.requests.append((r.method, r.url, r.post_data or "")))
        page.on("websocket", lambda ws: ws.on("framesent", lambda payload: self.frames.append(str(payload))))

    def weights_gets(self) -> int:
        return sum(1 for method, url, _ in self.requests if method == "GET" and url.endswith(".gguf"))

    def mentions(self, text: str) -> list[str]:
        return [f"{m} {u}" for m, u, body in self.requests if text in body or text in u] + [
            f for f in self.frames if text in f
        ]

    def posts(self, path: str) -> list[dict[str, Any]]:
        return [json.loads(body) for method, url, body in self.requests if method == "POST" and path in url]

    def frame_types(self) -> list[str]:
        return [json.loads(f).get("type", "") for f in self.frames if f.startswith("{")]


def page_data(page: Any) -> dict[str, Any]:
    data = page.evaluate("JSON.parse(document.getElementById('parley-data').textContent)")
    return data  # type: ignore[no-any-return]


def consent_given(page: Any) -> None:
    """For tests about something else: the consent prompt has its own test."""
    page.evaluate("""() => {
      const data = JSON.parse(document.getElementById("parley-data").textContent);
      for (const m of data.browser_models) localStorage.setItem("parley.local.consent." + m.id, "1");
    }""")


def ask(page: Any, text: str) -> None:
    page.fill("#prompt", text)
    page.keyboard.press("Enter")


def finished(page: Any, count: int, timeout: float = 120_000) -> None:
    """Wait until `count` answers are on screen and none is still streaming."""
    page.wait_for_function(
        """(n) => {
          const answers = document.querySelectorAll('.message[data-role=assistant]');
          return answers.length === n && ![...answers].some((a) => a.dataset.status === 'streaming');
        }""",
        arg=count,
        timeout=timeout,
    )


def set_max_tokens(page: Any, tokens: int) -> None:
    page.click("#chat-settings-open")
    page.fill("#cs-max-tokens", str(tokens))
    page.click("#chat-settings-save")
    page.wait_for_selector("#chat-settings", state="hidden")


def saved_messages(page: Any, conversation: str) -> list[dict[str, Any]]:
    """What the server holds for the conversation (the page's own session asks)."""
    return page.evaluate(  # type: ignore[no-any-return]
        "async (id) => (await (await fetch(`/api/conversations/${id}/`)).json()).messages", conversation
    )
