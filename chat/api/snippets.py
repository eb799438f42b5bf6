"""The chat page's "Use from code" panel: ready-to-run snippets for one model.

Each snippet is filled in with this server's API address and the model's API id, and reads
the user's token from the PARLEY_API_TOKEN environment variable (the guide's advice: keys
live in the environment, never in code). tests/test_api_snippets.py runs every one whose
runtime is on the machine, exactly as the panel shows it.
"""

from __future__ import annotations

import json
import shlex
import uuid
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from chat import catalog_cache
from chat.access import access_model

TOKEN_VARIABLE = "PARLEY_API_TOKEN"

CURL = """curl -X POST {url_sh}/chat/completions \\
  -H "Content-Type: application/json" \\
  -H "Authorization: Bearer ${var}" \\
  -d '{{
        "model": {model},
        "messages": [{{"role": "user", "content": "Hello!"}}]
      }}'
"""

PYTHON = """import os

from openai import OpenAI

client = OpenAI(base_url={url}, api_key=os.environ["{var}"])

response = client.chat.completions.create(
    model={model},
    messages=[{{"role": "user", "content": "Hello!"}}],
)
print(response.choices[0].message.content)
"""

JS_FETCH = """// Node 18+ (save as hello.mjs). Never put a token in a web page's code.
const response = await fetch({url_chat}, {{
  method: "POST",
  headers: {{
    "Content-Type": "application/json",
    Authorization: `Bearer ${{process.env.{var}}}`,
  }},
  body: JSON.stringify({{
    model: {model},
    messages: [{{ role: "user", content: "Hello!" }}],
  }}),
}});
if (!response.ok) throw new Error(`${{response.status}}: ${{await response.text()}}`);
const data = await response.json();
console.log(data.choices[0].message.content);
"""

JS_OPENAI = """// npm install openai, then run as an ES module (hello.mjs).
import OpenAI from "openai";

const client = new OpenAI({{ baseURL: {url}, apiKey: process.env.{var} }});

const response = await client.chat.completions.create({{
  model: {model},
  messages: [{{ role: "user", content: "Hello!" }}],
}});
console.log(response.choices[0].message.content);
"""

GO = """package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
)

func main() {{
	body, _ := json.Marshal(map[string]any{{
		"model":    {model},
		"messages": []map[string]string{{{{"role": "user", "content": "Hello!"}}}},
	}})
	req, err := http.NewRequest("POST", {url_chat}, bytes.NewReader(body))
	if err != nil {{
		panic(err)
	}}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+os.Getenv("{var}"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {{
		panic(err)
	}}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {{
		detail, _ := io.ReadAll(resp.Body)
		panic(fmt.Sprintf("%d: %s", resp.StatusCode, detail))
	}}
	var out struct {{
		Choices []struct {{
			Message struct {{
				Content string `json:"content"`
			}} `json:"message"`
		}} `json:"choices"`
	}}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {{
		panic(err)
	}}
	fmt.Println(out.Choices[0].Message.Content)
}}
"""

# (id, label, language, template)
KINDS = [
    ("curl", "curl", "bash", CURL),
    ("python", "Python (openai package)", "python", PYTHON),
    ("js-fetch", "JavaScript (fetch)", "javascript", JS_FETCH),
    ("js-openai", "JavaScript (openai package)", "javascript", JS_OPENAI),
    ("go", "Go (net/http)", "go", GO),
]


def snippets(base_url: str, model: str) -> list[dict[str, str]]:
    """Every snippet for `model` at `base_url` (".../v1"). Strings are JSON literals, which are
    also valid string literals in Python, JavaScript and Go."""
    values = {
        "url": json.dumps(base_url),
        "url_chat": json.dumps(base_url + "/chat/completions"),
        "url_sh": shlex.quote(base_url),
        "model": json.dumps(model),
        "var": TOKEN_VARIABLE,
    }
    return [
        {"id": key, "label": label, "language": language, "code": template.format(**values)}
        for key, label, language, template in KINDS
    ]


@require_GET
@login_required
def model_snippets(request: HttpRequest, model_id: uuid.UUID) -> JsonResponse:
    model = access_model(request.user, model_id)
    base_url = request.build_absolute_uri("/v1")
    name = catalog_cache.api_id(model.id)
    body: dict[str, Any] = {
        "model": name,
        "base_url": base_url,
        "token_variable": TOKEN_VARIABLE,
        "snippets": snippets(base_url, name),
    }
    return JsonResponse(body)
