"""Known services as data: a new OpenAI-compatible service is a preset here, not a module.

An admin picks a preset; it fills in the family, a default base URL and the quirks
that family's module reads (``Target.quirks``). Base URLs follow the providers'
documentation as summarised in shared/reference/wire-formats.md.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType


@dataclasses.dataclass(frozen=True, slots=True)
class Preset:
    key: str
    label: str
    family: str  # a key of providers.registry.FAMILIES
    base_url: str  # empty when the admin must supply one
    key_required: bool = True
    supports_model_list: bool = True
    quirks: Mapping[str, object] = dataclasses.field(default_factory=lambda: MappingProxyType({}))
    custom_headers: bool = False  # the form offers extra headers (gateways, OpenRouter attribution)
    # Models of this service take images unless the catalogue says otherwise (ChatModel.vision):
    # true where every current chat model does; self-hosted servers depend on the model loaded.
    vision: bool = False


def _q(**quirks: object) -> Mapping[str, object]:
    return MappingProxyType(quirks)


_ALL = [
    Preset(
        "openai",
        "OpenAI",
        "openai",
        "https://api.openai.com/v1",
        # Reasoning models reject max_tokens; every current OpenAI model takes this name.
        quirks=_q(max_tokens_field="max_completion_tokens", reasoning_effort=True), vision=True,
    ),
    # reasoning_effort: the server takes OpenAI's field (gpt-oss, Qwen3 and other thinking models).
    Preset("groq", "Groq", "openai", "https://api.groq.com/openai/v1", quirks=_q(reasoning_effort=True)),
    Preset(
        "together", "Together AI", "openai", "https://api.together.xyz/v1", quirks=_q(reasoning_effort=True)
    ),
    Preset(
        "fireworks", "Fireworks AI", "openai", "https://api.fireworks.ai/inference/v1",
        quirks=_q(reasoning_effort=True),
    ),
    # Mistral answers 422 to stream_options and max_completion_tokens; it sends usage anyway.
    Preset(
        "mistral",
        "Mistral",
        "openai",
        "https://api.mistral.ai/v1",
        quirks=_q(no_stream_options=True, strict_schema=True),
    ),
    Preset("deepseek", "DeepSeek", "openai", "https://api.deepseek.com/v1"),
    Preset(
        "openrouter", "OpenRouter", "openai", "https://openrouter.ai/api/v1", custom_headers=True,
        quirks=_q(reasoning_effort=True),
    ),
    Preset(
        "qwen_intl",
        "Qwen (Alibaba Cloud, international)",
        "openai",
        "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
        quirks=_q(reasoning_switch="enable_thinking"),  # Qwen3 thinks only when asked, this way
    ),
    Preset(
        "qwen_cn",
        "Qwen (Alibaba Cloud, China)",
        "openai",
        "https://dashscope.aliyuncs.com/compatible-mode/v1",
        quirks=_q(reasoning_switch="enable_thinking"),
    ),
    Preset("huggingface", "Hugging Face router", "openai", "https://router.huggingface.co/v1"),
    # Local and self-hosted servers: usually no key, and the admin's own address.
    Preset("tgi", "Text Generation Inference", "openai", "http://localhost:8080/v1", key_required=False),
    Preset(
        "vllm", "vLLM", "openai", "http://localhost:8000/v1", key_required=False,
        quirks=_q(reasoning_effort=True),
    ),
    Preset(
        "lmstudio", "LM Studio", "openai", "http://localhost:1234/v1", key_required=False,
        quirks=_q(reasoning_effort=True),
    ),
    Preset(
        "ollama_v1",
        "Ollama (OpenAI-compatible /v1)",
        "openai",
        "http://localhost:11434/v1",
        key_required=False,
        quirks=_q(reasoning_effort=True),
    ),
    Preset("llamacpp", "llama.cpp server", "openai", "http://localhost:8080/v1", key_required=False),
    # text-generation-webui lists only the loaded model and ignores the requested one.
    Preset(
        "textgen_webui", "text-generation-webui", "openai", "http://127.0.0.1:5000/v1", key_required=False
    ),
    Preset(
        "gateway", "Custom OpenAI-compatible gateway", "openai", "", key_required=False, custom_headers=True,
        quirks=_q(reasoning_effort=True),  # LiteLLM and most gateways translate it per upstream
    ),
    Preset("anthropic", "Anthropic", "anthropic", "https://api.anthropic.com", vision=True),
    Preset("gemini", "Google Gemini", "gemini", "https://generativelanguage.googleapis.com", vision=True),
    Preset("ollama", "Ollama (native)", "ollama", "http://localhost:11434", key_required=False),
]

PRESETS: Mapping[str, Preset] = MappingProxyType({p.key: p for p in _ALL})


def choices() -> list[tuple[str, str]]:
    """(key, label) pairs for a form's select, in the order above."""
    return [(p.key, p.label) for p in _ALL]


# Without a preset, the family's own API decides: every current Claude and Gemini model sees.
_FAMILY_VISION = {"anthropic": True, "gemini": True}


def vision_default(preset: str, family: str) -> bool:
    """Whether a model takes images when nobody has said: the preset's default, else the family's."""
    found = PRESETS.get(preset)
    return found.vision if found is not None else _FAMILY_VISION.get(family, False)
