"""Seed the in-browser catalogue: the bundled SmolLM2 (no internet needed) and a few
well-known WebLLM and Transformers.js models by URL, which download from Hugging Face."""

from django.db import migrations

SEED = [
    ("wllama", "SmolLM2 135M Instruct", "bundled:SmolLM2-135M-Instruct.Q4_1.gguf", 98_362_432, "Apache-2.0"),
    ("webllm", "SmolLM2 360M Instruct (WebLLM)",
     "https://huggingface.co/mlc-ai/SmolLM2-360M-Instruct-q4f16_1-MLC", 376_000_000, "Apache-2.0"),
    ("webllm", "Llama 3.2 1B Instruct (WebLLM)",
     "https://huggingface.co/mlc-ai/Llama-3.2-1B-Instruct-q4f16_1-MLC", 879_000_000, "Llama 3.2 Community"),
    ("transformers", "SmolLM2 135M Instruct (Transformers.js)",
     "https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct", 118_000_000, "Apache-2.0"),
    ("transformers", "Qwen2.5 0.5B Instruct (Transformers.js)",
     "https://huggingface.co/onnx-community/Qwen2.5-0.5B-Instruct", 483_000_000, "Apache-2.0"),
]


def seed(apps, schema_editor):
    BrowserModel = apps.get_model("chat", "BrowserModel")
    for engine, name, url, size, licence in SEED:
        BrowserModel.objects.get_or_create(
            weights_url=url, defaults={"engine": engine, "display_name": name, "size_bytes": size, "licence": licence}
        )


def unseed(apps, schema_editor):
    BrowserModel = apps.get_model("chat", "BrowserModel")
    BrowserModel.objects.filter(weights_url__in=[row[2] for row in SEED]).delete()


class Migration(migrations.Migration):
    dependencies = [("chat", "0002_browser_models")]
    operations = [migrations.RunPython(seed, unseed)]
