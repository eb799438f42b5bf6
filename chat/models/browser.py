"""The catalogue of models that run inside the user's browser (wllama, WebLLM, Transformers.js).

No key or server secret is involved: a row only says which engine to load, where its weights
are, how big they are (for the consent prompt) and who may pick it.
"""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

from django.contrib.auth.models import Group
from django.db import models

# Weights Parley serves itself (chat.browser_models.bundled_gguf) use this URL scheme.
BUNDLED_PREFIX = "bundled:"
# Transformers.js names a model by its Hugging Face repo id ("owner/name") as often as by URL.
HUB = "https://huggingface.co"


class Engine(models.TextChoices):
    WLLAMA = "wllama", "wllama (llama.cpp in WebAssembly, CPU)"
    WEBLLM = "webllm", "WebLLM (WebGPU)"
    TRANSFORMERS = "transformers", "Transformers.js (ONNX, WebGPU or WebAssembly)"


class BrowserModel(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    engine = models.CharField(max_length=20, choices=Engine.choices)
    display_name = models.CharField(max_length=200)
    weights_url = models.CharField(
        max_length=500,
        help_text=(
            "`bundled:<file name>` for a GGUF Parley serves itself, a Hugging Face URL (wllama), "
            "an MLC model id (WebLLM) or a Hugging Face repo id (Transformers.js)."
        ),
    )
    size_bytes = models.PositiveBigIntegerField(help_text="Download size, shown before the first download.")
    licence = models.CharField(max_length=100, blank=True)
    groups = models.ManyToManyField(
        Group, blank=True, help_text="Only these groups may use the model; none means everyone."
    )
    enabled = models.BooleanField(default=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["engine", "display_name"]

    def __str__(self) -> str:
        return self.display_name

    @property
    def is_bundled(self) -> bool:
        return self.weights_url.startswith(BUNDLED_PREFIX)

    @property
    def downloads_from_internet(self) -> bool:
        """True when the browser fetches the weights from somewhere other than Parley."""
        return not self.is_bundled

    @property
    def origin(self) -> str | None:
        """Where the browser fetches the weights from (scheme://host[:port]); None for Parley itself."""
        if self.is_bundled:
            return None
        url = self.weights_url if "://" in self.weights_url else f"{HUB}/{self.weights_url}"
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}".lower()
