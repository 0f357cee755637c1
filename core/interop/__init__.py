"""Interoperability: bring Hugging Face folders and GGUF files in as our checkpoints, take ours out as an HF
folder, a GGUF file or an ONNX graph.

    hf_import.py     HF folder (config.json, *.safetensors / pytorch_model.bin, tokenizer files) -> checkpoint
    gguf_import.py   .gguf file (F32/F16/BF16 and quantised tensors, embedded vocabulary) -> checkpoint
    gguf_vocab.py    GGUF vocabulary <-> HF tokenizer.json
    layouts.py       which of our tensors is which tensor in HF and GGUF naming, per architecture
    writer.py        the checkpoint folder an import writes (streamed safetensors, meta.json, atomic)
    hf_export.py gguf_export.py onnx_export.py   checkpoint -> HF folder / GGUF file / ONNX graph
    commands.py      `llm-train import` and `llm-train export`

`transformers`, `gguf`, `onnx` and `onnxruntime` are an optional extra (`pip install -e '.[interop]'`): they
are imported inside the functions that need them, and a missing one is a usage error naming the extra.
"""

from __future__ import annotations

import importlib

from core.errors import UsageError

EXTRA_HINT = "install the interop extra: pip install -e '.[interop]'"


def require(module: str, what: str):
    """Import an optional package or raise a UsageError (exit 2) saying which extra brings it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UsageError(f"{what} needs the Python package {module!r}, which is not installed; "
                         f"{EXTRA_HINT}") from None
