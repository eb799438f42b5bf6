"""The security suite: each test tries one attack on a real Parley (Daphne in a subprocess).

A server costs 8-12 s to start, so each module shares one (module-scoped fixtures) and
sets it up through `manage.py` as an administrator would. A `Visitor` is a browser
without a browser: it keeps cookies, fetches CSRF tokens from forms and posts them.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import uuid
from typing import Any

import httpx
import websockets

from tests.live import ROOT, LiveServer

_CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


class Visitor:
    """One person (or attacker) with their own cookie jar, talking HTTP to the server."""

    def __init__(self, server: LiveServer, origin: str | None = None, **headers: str) -> None:
        self.server = server
        self.http = httpx.Client(base_url=server.url, follow_redirects=False, timeout=20, headers=headers)
        self.origin = origin or server.url  # browsers send it with every form post
        self.token = ""  # the last CSRF token seen; valid until a sign-in rotates it

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(path, **kwargs)

    def form(
        self, path: str, data: dict[str, Any], page: str | None = None, again: bool = False, **kwargs: Any
    ) -> httpx.Response:
        """Post ``data`` to ``path`` the way a browser would: CSRF token from the form page first.

        ``again`` reuses the token of the last form instead, as a script resubmitting does.
        """
        if not (again and self.token):
            shown = self.http.get(page or path)
            found = _CSRF.search(shown.text)
            assert found, f"no CSRF token on {page or path} ({shown.status_code})"
            self.token = found.group(1)
        headers = {"Origin": self.origin, **kwargs.pop("headers", {})}
        data = {**data, "csrfmiddlewaretoken": self.token}
        return self.http.post(path, data=data, headers=headers, **kwargs)

    def sign_in(
        self, username: str, password: str, path: str = "/accounts/login/", again: bool = False
    ) -> httpx.Response:
        response = self.form(path, {"username": username, "password": password}, again=again)
        if response.status_code == 302:
            self.token = ""  # signing in rotates the CSRF secret
        return response

    def cookie_header(self) -> str:
        return "; ".join(f"{name}={value}" for name, value in self.http.cookies.items())

    def close(self) -> None:
        self.http.close()


def manage(
    server: LiveServer, *args: str, stdin: str | None = None, timeout: float = 120, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run manage.py against ``server``'s database with extra environment; the result, not an error."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**server.env, **env},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def shell(server: LiveServer, script: str, **env: str) -> str:
    """Run Python inside the project (users, models, state) as an administrator's script would."""
    result = manage(server, "shell", "--no-imports", "-c", script, **env)
    assert result.returncode == 0, result.stderr
    return result.stdout


async def open_socket(server: LiveServer, cookie: str = "", origin: str | None = None, **headers: str) -> Any:
    """A real WebSocket to /ws/chat/; raises websockets' InvalidStatus when the handshake is refused."""
    extra = {"Cookie": cookie, **headers} if cookie else dict(headers)
    return await websockets.connect(
        server.url.replace("http://", "ws://") + "/ws/chat/",
        origin=origin if origin is not None else server.url,  # type: ignore[arg-type]
        additional_headers=extra,
        open_timeout=10,
    )


def env_without_secrets() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "PARLEY_ENCRYPTION_KEYS", "DEBUG"}}


async def ask(server: LiveServer, visitor: Visitor, model_id: str, content: str = "Hello") -> list[dict[str, Any]]:
    """Send one message over a real socket as ``visitor``; every frame up to its ``end``."""
    ws = await open_socket(server, visitor.cookie_header())
    try:
        assert json.loads(await ws.recv())["type"] == "hello"
        await ws.send(
            json.dumps(
                {
                    "type": "send",
                    "client_id": str(uuid.uuid4()),
                    "conversation": None,
                    "model": model_id,
                    "content": content,
                }
            )
        )
        frames = []
        while True:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 20))
            frames.append(frame)
            if frame["type"] in ("end", "error"):
                return frames
    finally:
        await ws.close()


def model_id(server: LiveServer, provider: str, model: str) -> str:
    """The public id of a provider's model, as the chat page would list it."""
    script = (
        "from chat.models import ChatModel\n"
        f"print(ChatModel.objects.get(provider__name={provider!r}, model_id={model!r}).id)"
    )
    return shell(server, script).strip()
