"""A .gguf file -> our checkpoint: hyper-parameters from its metadata, tensors dequantised one at a time with
the `gguf` package, llama.cpp's RoPE row order undone, and the embedded vocabulary rebuilt as tokenizer.json.

llama.cpp's converter permutes the rows of attn_q / attn_k for the `llama` architecture so that each head's
rotary pairs sit side by side (its "normal" RoPE); we rotate halves (as HF does), so the rows go back.
`qwen2`, `qwen3` (NEOX RoPE) and `gpt2` (no RoPE) keep HF's order.
"""

from __future__ import annotations

import numbers
import os

import numpy as np
import torch

from core.config import ModelConfig
from core.errors import UsageError, quote
from core.import_config import GGUF_ARCHITECTURES, explicit_head_dim, model_config, positive_int
from core.interop import layouts, require
from core.interop.gguf_vocab import tokenizer_json_from_gguf

TENSOR_TYPES = ("F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K")


def unpermute_rope_rows(w: torch.Tensor, n_head: int) -> torch.Tensor:
    """Inverse of llama.cpp's permute(): per head, rows (pair j, member a) at j*2+a go back to a*hs/2+j."""
    hs = w.shape[0] // n_head
    return w.reshape(n_head, hs // 2, 2, *w.shape[1:]).transpose(1, 2).reshape(w.shape)


def permute_rope_rows(w: torch.Tensor, n_head: int) -> torch.Tensor:
    """llama.cpp's permute() (convert_hf_to_gguf.py, LlamaModel): HF's half-rotation rows -> pairs."""
    hs = w.shape[0] // n_head
    return w.reshape(n_head, 2, hs // 2, *w.shape[1:]).transpose(1, 2).reshape(w.shape)


class GGUFSource:
    """One .gguf file opened for import: `cfg`, `produce(our_name)`, `dtype_of(our_name)`, tokenizer, meta."""

    def __init__(self, path: str, block_size: int | None = None):
        gguf = require("gguf", "importing a .gguf file")
        self.gguf, self.path = gguf, path
        try:
            self.reader = gguf.GGUFReader(path)
        except Exception as exc:  # a damaged or non-GGUF file: the reader raises assorted errors
            raise UsageError(f"cannot read {path} as GGUF: {exc}") from None
        self.fields = {k: self._value(f) for k, f in self.reader.fields.items()}
        self.arch = self.fields.get("general.architecture")
        if self.arch not in GGUF_ARCHITECTURES:  # GGUF arch -> layout family, the Import dialog's too
            raise UsageError(f"{path}: GGUF architecture {self.arch!r} is not supported; supported: "
                             f"{', '.join(GGUF_ARCHITECTURES)}", "general.architecture")
        self.family = GGUF_ARCHITECTURES[self.arch]
        self.tensors = {t.name: t for t in self.reader.tensors}
        for t in self.tensors.values():
            if t.tensor_type.name not in TENSOR_TYPES:
                raise UsageError(f"{path}: tensor {t.name} has type {t.tensor_type.name}, which is not supported; "
                                 f"supported: {', '.join(TENSOR_TYPES)}", "tensor_type")
        self.cfg = self._config(block_size)

    def _value(self, field):
        try:
            return field.contents()
        except Exception:  # a value type this gguf version cannot decode: not one we read
            return None

    def _hp(self, key: str, default=None):
        return self.fields.get(f"{self.arch}.{key}", default)

    def _int(self, key: str, default=None) -> int:
        return positive_int(self._hp(key), f"{self.path}: metadata {self.arch}.{key}", default)

    def _float(self, key: str, default: float) -> float:
        value = self._hp(key, default)
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
            raise UsageError(f"{self.path}: metadata {self.arch}.{key} must be a positive number, got {quote(value)}",
                             key)
        return float(value)

    def _config(self, block_size: int | None) -> ModelConfig:
        d, nh = self._int("embedding_length"), self._int("attention.head_count")
        nkv = self._int("attention.head_count_kv", nh)
        ctx = self._int("context_length", 2048)
        if "token_embd.weight" not in self.tensors:
            raise UsageError(f"{self.path}: no tensor 'token_embd.weight' (the token embedding)")
        vocab = int(self.tensors["token_embd.weight"].shape[1])  # GGUF shapes are (in, out): ne order
        has = self.tensors.__contains__
        tied = not has("output.weight") or self._same_data("output.weight", "token_embd.weight")
        common = dict(n_layer=self._int("block_count"), n_head=nh, n_embd=d, vocab_size=vocab,
                      block_size=min(ctx, block_size or ctx), intermediate_size=self._int("feed_forward_length"),
                      tie_embeddings=tied)
        if self.family == "gpt2":
            return model_config(dict(**common, bias=True, pos_encoding="learned", norm="layernorm",
                                     activation="gelu", norm_eps=self._float("attention.layer_norm_epsilon", 1e-5)),
                                self.path)
        hs = self._int("attention.key_length", d // nh)  # llama.cpp's n_embd_head_k (Qwen3: not d / nh)
        if self._int("attention.value_length", hs) != hs:
            raise UsageError(f"{self.path}: keys and values of different widths ({self.arch}.attention."
                             f"value_length) are not supported", "attention.value_length")
        rope_dims = self._hp("rope.dimension_count")
        if rope_dims is not None and int(rope_dims) != hs:
            raise UsageError(f"{self.path}: partial RoPE ({self.arch}.rope.dimension_count={rope_dims}, head size "
                             f"{hs}) is not supported", "rope.dimension_count")
        bias, qk_norm = has("blk.0.attn_output.bias"), has("blk.0.attn_q_norm.weight")
        return model_config(dict(**common, n_kv_head=nkv if nkv != nh else None, bias=bias,
                                 qkv_bias=has("blk.0.attn_q.bias") and not bias, pos_encoding="rope", norm="rmsnorm",
                                 activation="swiglu", rope_theta=self._float("rope.freq_base", 10000.0),
                                 norm_eps=self._float("attention.layer_norm_rms_epsilon", 1e-5),
                                 head_dim=explicit_head_dim(hs, d, nh), qk_norm=qk_norm,
                                 qk_norm_weight=qk_norm), self.path)

    def _same_data(self, a: str, b: str) -> bool:
        ta, tb = self.tensors[a], self.tensors[b]
        return ta.tensor_type == tb.tensor_type and np.array_equal(ta.data, tb.data)

    def _load(self, name: str) -> torch.Tensor:
        """One tensor, dequantised to float32 (or kept as F16/BF16/F32), in torch's (out, in) layout."""
        if name not in self.tensors:
            raise UsageError(f"{self.path}: no tensor {name!r} (needed for this architecture)")
        t = self.tensors[name]
        arr = self.gguf.quants.dequantize(t.data, t.tensor_type)
        out = torch.from_numpy(np.array(arr, dtype=np.float32))  # a writable copy of the mapped data
        cfg = self.cfg
        if self.arch == "llama" and name.endswith(("attn_q.weight", "attn_q.bias")):
            out = unpermute_rope_rows(out, cfg.n_head)
        elif self.arch == "llama" and name.endswith(("attn_k.weight", "attn_k.bias")):
            out = unpermute_rope_rows(out, cfg.n_kv_head or cfg.n_head)
        return out

    def _source(self, ours: str):
        if ours == "lm_head.weight" and self.cfg.tie_embeddings:
            ours = "tok_emb.weight"
        return layouts.other_name(layouts.GGUF_LAYOUTS, self.family, ours)

    def produce(self, ours: str) -> torch.Tensor:
        spec = self._source(ours)
        if isinstance(spec, tuple):
            return torch.cat([self._load(s) for s in spec], dim=0)
        return self._load(spec)

    def dtype_of(self, ours: str) -> torch.dtype:
        spec = self._source(ours)
        kinds = {self.tensors[s].tensor_type.name for s in (spec if isinstance(spec, tuple) else (spec,))
                 if s in self.tensors}
        if len(kinds) == 1 and kinds <= {"F16", "BF16"}:
            return torch.float16 if kinds == {"F16"} else torch.bfloat16
        return torch.float32  # F32, and every dequantised type

    def tokenizer_json(self) -> str:
        return tokenizer_json_from_gguf(self.fields)

    def token_info(self) -> dict:
        f = self.fields
        tokens = f.get("tokenizer.ggml.tokens") or []
        info = {"chat_template": f.get("tokenizer.chat_template"), "context_length": self._hp("context_length"),
                "add_bos_token": bool(f.get("tokenizer.ggml.add_bos_token", False)),
                "imported_from": {"format": "gguf", "path": os.path.abspath(self.path), "architecture": self.arch,
                                  "file_type": f.get("general.file_type"), "name": f.get("general.name")}}
        for role, key in (("bos", "bos_token_id"), ("eos", "eos_token_id"), ("pad", "padding_token_id")):
            tid = f.get(f"tokenizer.ggml.{key}")
            info[f"{role}_token_id"] = int(tid) if tid is not None else None
            info[f"{role}_token"] = tokens[int(tid)] if tid is not None and int(tid) < len(tokens) else None
        return info
