"""A local Hugging Face model folder -> our checkpoint.

config.json is read by core.import_config (torch-free: the Import dialog reads it too); this reads the weights
(model.safetensors, sharded model-0000x-of-0000y.safetensors with their index, or pytorch_model.bin through
torch.load(weights_only=True)) tensor by tensor, and the tokenizer files (tokenizer.json, else rebuilt by `transformers` from vocab/merges).
"""

from __future__ import annotations

import json
import os

import torch

from core.config import ModelConfig
from core.errors import UsageError
from core.interop import layouts, require
from core.layout import load_json


# ------------------------------------------------------------------------------------------ weights
class HFTensors:
    """Random access by name to the tensors of an HF folder, without loading them all."""

    def __init__(self, folder: str):
        from safetensors import safe_open

        self.where: dict[str, object] = {}
        index = os.path.join(folder, "model.safetensors.index.json")
        single = os.path.join(folder, "model.safetensors")
        if os.path.isfile(index) or os.path.isfile(single):
            files = sorted(set(load_json(index, "safetensors index")["weight_map"].values())) \
                if os.path.isfile(index) else ["model.safetensors"]
            for name in files:
                handle = safe_open(os.path.join(folder, name), framework="pt")
                for key in handle.keys():
                    self.where[key] = handle
            self.dtype_of = {k: h.get_slice(k).get_dtype() for k, h in self.where.items()}
            return
        binary = os.path.join(folder, "pytorch_model.bin")
        if not os.path.isfile(binary):
            raise UsageError(f"no weights in {folder}: expected model.safetensors, "
                             f"model.safetensors.index.json or pytorch_model.bin")
        try:  # weights_only: a pickle's code never runs; mmap: tensors are paged in as they are used
            self.state = torch.load(binary, map_location="cpu", weights_only=True, mmap=True)
        except Exception as exc:
            raise UsageError(f"cannot read {binary} as plain tensors (weights_only=True): {exc}") from None
        self.dtype_of = {k: str(v.dtype) for k, v in self.state.items()}

    def names(self) -> set[str]:
        return set(self.where) if self.where else set(self.state)

    def get(self, name: str) -> torch.Tensor:
        if self.where:
            return self.where[name].get_tensor(name)
        return self.state[name]


def _float_dtype(text: str) -> torch.dtype:
    text = text.lower().replace("torch.", "")
    return {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "f16": torch.float16,
            "float16": torch.float16}.get(text, torch.float32)


def hf_producer(tensors: HFTensors, cfg: ModelConfig, family: str):
    """(produce(our_name) -> tensor, dtype_of(our_name)) reading the HF tensors each of ours is made of."""
    names = tensors.names()
    prefix = ""
    if family == "gpt2" and "transformer.wte.weight" in names:
        prefix = "transformer."  # GPT2LMHeadModel; bare GPT2Model checkpoints have no prefix

    def source(ours: str):
        if ours == "lm_head.weight" and cfg.tie_embeddings:
            ours = "tok_emb.weight"
        if family == "gpt2" and ours == "lm_head.weight":
            return "lm_head.weight"
        spec = layouts.other_name(layouts.HF_LAYOUTS, family, ours)
        if isinstance(spec, tuple):
            return tuple(prefix + s for s in spec)
        return prefix + spec

    def fetch(name: str) -> torch.Tensor:
        base = name[:-2] if name.endswith(":T") else name
        if base not in names:
            raise UsageError(f"the weights have no tensor {base!r} (needed for this config)")
        t = tensors.get(base)
        return t.t() if name.endswith(":T") else t

    def produce(ours: str) -> torch.Tensor:
        spec = source(ours)
        if isinstance(spec, tuple):
            return torch.cat([fetch(s) for s in spec], dim=0)
        return fetch(spec)

    def dtype_of(ours: str) -> torch.dtype:
        spec = source(ours)
        first = spec[0] if isinstance(spec, tuple) else spec
        return _float_dtype(tensors.dtype_of.get(first.removesuffix(":T"), "F32"))

    return produce, dtype_of


# ------------------------------------------------------------------------------------------ tokenizer
def hf_tokenizer_json(folder: str) -> str:
    """tokenizer.json text: the folder's own, else built by transformers from its slow-tokenizer files."""
    path = os.path.join(folder, "tokenizer.json")
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    transformers = require("transformers", "importing a folder without tokenizer.json")
    try:
        tok = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
        return tok.backend_tokenizer.to_str()
    except Exception as exc:
        raise UsageError(f"no usable tokenizer in {folder} (tokenizer.json, or vocab/merges or "
                         f"tokenizer.model): {exc}") from None


def _token_text(value) -> str | None:
    if isinstance(value, dict):
        return value.get("content")
    return value if isinstance(value, str) else None


def hf_token_info(folder: str, raw: dict, tokenizer_json: str) -> dict:
    """BOS/EOS (text and ids), the chat template and the context length, for the checkpoint's meta."""
    from tokenizers import Tokenizer

    tok_cfg = _read_optional(os.path.join(folder, "tokenizer_config.json"))
    gen_cfg = _read_optional(os.path.join(folder, "generation_config.json"))
    template = hf_chat_template(folder, tok_cfg)
    tok = Tokenizer.from_str(tokenizer_json)
    info = {"chat_template": template, "context_length": raw.get("max_position_embeddings")
            or raw.get("n_positions") or raw.get("n_ctx"), "add_bos_token": bool(tok_cfg.get("add_bos_token",
                                                                                              False))}
    for role in ("bos", "eos", "pad"):
        text = _token_text(tok_cfg.get(f"{role}_token"))
        tid = gen_cfg.get(f"{role}_token_id", raw.get(f"{role}_token_id"))
        if tid is None and text is not None:
            tid = tok.token_to_id(text)
        if text is None and isinstance(tid, int):
            text = tok.id_to_token(tid)
        info[f"{role}_token"], info[f"{role}_token_id"] = text, tid
    return info


def hf_chat_template(folder: str, tok_cfg: dict | None = None) -> str | None:
    """The chat template a Hugging Face folder (a model's, or a PEFT adapter's) carries: tokenizer_config.json's,
    else chat_template.jinja; of named templates, the default one; None when there is none."""
    if tok_cfg is None:
        tok_cfg = _read_optional(os.path.join(folder, "tokenizer_config.json"))
    template = tok_cfg.get("chat_template")
    jinja = os.path.join(folder, "chat_template.jinja")
    if template is None and os.path.isfile(jinja):
        with open(jinja, encoding="utf-8") as fh:
            template = fh.read()
    if isinstance(template, list):  # named templates: keep the default one
        template = next((t.get("template") for t in template if t.get("name") == "default"), None)
    return template


def _read_optional(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}
