"""Interoperability: bring Hugging Face folders and GGUF files in as our checkpoints, take ours out as an HF
folder, a GGUF file or an ONNX graph.

    hf_import.py     HF folder (config.json, *.safetensors / pytorch_model.bin, tokenizer files) -> checkpoint
    gguf_import.py   .gguf file (F32/F16/BF16 and quantised tensors, embedded vocabulary) -> checkpoint
    gguf_vocab.py    GGUF vocabulary <-> HF tokenizer.json
    layouts.py       which of our tensors is which tensor in HF and GGUF naming, per architecture
    writer.py        the checkpoint folder an import writes (streamed safetensors, meta.json, atomic)
    hf_export.py gguf_export.py onnx_export.py   checkpoint -> HF folder / GGUF file / ONNX graph
    peft_export.py gguf_lora_export.py   a LoRA checkpoint's adapters -> a PEFT adapter folder / a llama.cpp
                     LoRA adapter (.gguf)
    peft_import.py   a PEFT adapter folder -> a LoRA checkpoint on a base checkpoint
    commands.py      `llm-train import` and `llm-train export`

`transformers`, `gguf`, `onnx` and `onnxruntime` are an optional extra (`pip install -e '.[interop]'`): they
are imported inside the functions that need them, and a missing one is a usage error naming the extra.
"""

from __future__ import annotations

import importlib
import shlex

from core.errors import UsageError, missing_package_message


def require(module: str, what: str):
    """Import an optional package or raise a UsageError (exit 2) saying which extra brings it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UsageError(missing_package_message(what, [module])) from None


def run_hint(fmt: str, out: str, model: dict, base_hf: str | None = None, base_checkpoint: str = "") -> str:
    """How to run an export with the tool it is for (`export` prints it, the studio's Export shows it), from
    the checkpoint's model config (a dict: torch-free); for a LoRA adapter, on what: the HF folder its base
    came from (`base_hf`) or else the base checkpoint, to be exported first. With learned positions llama.cpp's GPT-2 graph has no
    sliding window: it stops with an assertion at the first position past the table (it pads its context
    to 256 at least, so -c does not prevent it); the prompt and the new tokens must fit the model's."""
    if fmt == "hf":
        return f"transformers: AutoModelForCausalLM.from_pretrained({out!r}) and AutoTokenizer likewise"
    if fmt == "gguf-lora":  # llama.cpp needs the base as GGUF, wherever it came from
        return (f"llama.cpp: llama-cli -m BASE.gguf --lora {shlex.quote(out)}, where BASE.gguf is the base "
                f"model ({base_checkpoint}) exported with --format gguf; Ollama: FROM BASE.gguf and ADAPTER {out} "
                f"in a Modelfile")
    if fmt == "peft":
        if not base_hf:
            return (f"peft: export the base model ({base_checkpoint}) with --format hf, then "
                    f"PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(that folder), {out!r}); "
                    f"AutoTokenizer from {out!r}")
        return (f"peft: PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained({base_hf!r}), {out!r}); "
                f"AutoTokenizer from {out!r}")
    if fmt == "onnx":
        return f"ONNX Runtime: InferenceSession({out!r}), input input_ids (batch, sequence) -> logits"
    block = int(model.get("block_size") or 0)
    if model.get("pos_encoding", "learned") == "learned":
        return (f"llama.cpp: llama-cli -m {shlex.quote(out)} -n {block // 2} (prompt and new tokens within its "
                f"{block} positions: llama.cpp has no sliding window for learned positions and stops with an "
                f"assertion past them; Ollama: PARAMETER num_predict)")
    return f"llama.cpp: llama-cli -m {shlex.quote(out)} -c {block} (the context it was trained on)"
