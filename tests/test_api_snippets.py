"""Every snippet of the "Use from code" panel runs, as the panel shows it, against a live Parley:
curl, Python with the openai package, Node with fetch and with the openai npm package; Go is
run where Go is installed and otherwise parsed by tree-sitter's Go grammar."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bench.relay import model_id
from tests.fakeprovider import FakeProvider, Script
from tests.live import ROOT, LiveServer
from tests.test_api import make_token, shell
from tests.test_fair_use import make_sessions_named

ANSWER = ["Hi ", "from ", "Parley"]


@pytest.fixture(scope="module")
def server(fake_server: FakeProvider) -> Iterator[LiveServer]:
    live = LiveServer({"PARLEY_AUTO_TITLES": "0"}).start()
    live.manage(
        "provider",
        "add",
        "local",
        "--kind",
        "openai",
        "--base-url",
        fake_server.url + "/v1",
        "--model",
        "qwen2.5-coder",
        "--default",
        "qwen2.5-coder",
    )
    yield live
    live.stop()


@pytest.fixture(scope="module")
def panel(server: LiveServer) -> dict[str, Any]:
    (cookie,) = make_sessions_named(server, 1, "snip")
    response = httpx.get(f"{server.url}/api/models/{model_id(server)}/code/", headers={"Cookie": cookie})
    response.raise_for_status()
    return response.json()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def token(server: LiveServer, panel: dict[str, Any]) -> str:
    return make_token(server, "snip0")


def code(panel: dict[str, Any], kind: str) -> str:
    return next(s["code"] for s in panel["snippets"] if s["id"] == kind)  # type: ignore[no-any-return]


def run(args: list[str], token: str, **kw: Any) -> str:
    env = {**os.environ, "PARLEY_API_TOKEN": token}
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60, check=False, **kw)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture
def answering(fake_server: FakeProvider) -> FakeProvider:
    fake_server.reset()
    fake_server.set_default(Script(tokens=ANSWER))
    return fake_server


def test_the_panel_is_filled_in_with_this_servers_address_and_the_models_id(
    server: LiveServer, panel: dict[str, Any]
) -> None:
    assert panel["model"] == "qwen2.5-coder" and panel["base_url"] == server.url + "/v1"
    assert {s["id"] for s in panel["snippets"]} == {"curl", "python", "js-fetch", "js-openai", "go"}
    for snippet in panel["snippets"]:
        assert '"qwen2.5-coder"' in snippet["code"] and server.url in snippet["code"]
        assert "PARLEY_API_TOKEN" in snippet["code"] and "parley-" not in snippet["code"]


def test_a_snippets_model_a_user_may_not_use_is_not_found(server: LiveServer) -> None:
    (cookie,) = make_sessions_named(server, 1, "nosnip")
    shell(server, "ChatModel.objects.update(enabled=False)")
    try:
        assert (
            httpx.get(
                f"{server.url}/api/models/{model_id(server)}/code/", headers={"Cookie": cookie}
            ).status_code
            == 404
        )
    finally:
        shell(server, "ChatModel.objects.update(enabled=True)")


def test_the_curl_snippet_runs(panel: dict[str, Any], token: str, answering: FakeProvider) -> None:
    import json

    assert (
        json.loads(run(["bash", "-c", code(panel, "curl")], token))["choices"][0]["message"]["content"]
        == "Hi from Parley"
    )


def test_the_python_snippet_runs(panel: dict[str, Any], token: str, answering: FakeProvider) -> None:
    assert run([sys.executable, "-c", code(panel, "python")], token) == "Hi from Parley"


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
@pytest.mark.parametrize("kind", ["js-fetch", "js-openai"])
def test_the_javascript_snippets_run(
    panel: dict[str, Any], token: str, answering: FakeProvider, kind: str
) -> None:
    if kind == "js-openai" and not (ROOT / "node_modules" / "openai").exists():
        pytest.fail("the openai npm package is missing: run `make vendor` (it is a devDependency)")
    # As an ES module evaluated in the project, so `import "openai"` finds node_modules.
    assert run(["node", "--input-type=module", "-e", code(panel, kind)], token, cwd=ROOT) == "Hi from Parley"


def test_the_go_snippet_runs_or_at_least_parses(
    panel: dict[str, Any], token: str, answering: FakeProvider
) -> None:
    source = code(panel, "go")
    if shutil.which("go"):
        with tempfile.TemporaryDirectory() as folder:
            with open(os.path.join(folder, "main.go"), "w") as f:
                f.write(source)
            assert run(["go", "run", "main.go"], token, cwd=folder) == "Hi from Parley"
        return
    problems, imports = parse_go(source)
    assert problems == [], f"the Go snippet does not parse: {problems}"
    # Go refuses to compile an unused import: each one must be used.
    for name in imports:
        assert f"{name.rsplit('/', 1)[-1]}." in source, f"import {name!r} is not used"


def parse_go(source: str) -> tuple[list[str], list[str]]:
    """(syntax errors, imported paths) from tree-sitter's Go grammar."""
    import tree_sitter
    import tree_sitter_go

    tree = tree_sitter.Parser(tree_sitter.Language(tree_sitter_go.language())).parse(source.encode())
    problems: list[str] = []
    imports: list[str] = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.type == "ERROR" or node.is_missing:
            problems.append(f"{node.type} at line {node.start_point[0] + 1}")
        if node.type == "import_spec":
            path = node.child_by_field_name("path")
            if path is not None and path.text is not None:
                imports.append(path.text.decode().strip('"'))
        stack.extend(node.children)
    return problems, imports


def test_the_go_parser_finds_a_broken_snippet() -> None:
    problems, _ = parse_go('package main\n\nfunc main() {\n\tfmt.Println("x"\n}\n')
    assert problems
