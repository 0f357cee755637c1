"""Our checkpoint -> a .gguf file llama.cpp runs: metadata, vocabulary and tensors named and laid out as its
converter (convert_hf_to_gguf.py) writes them. Architectures: `gpt2` (learned positions, LayerNorm, GELU),
`llama` (RoPE, RMSNorm, SwiGLU), `qwen2` (the same with q/k/v bias) and `qwen3` (with QK-norm). Number formats: F32, F16, BF16 and
Q8_0 for the matrices; norms and biases stay F32, as llama.cpp keeps them.
"""

from __future__ import annotations

import contextlib
import os

import numpy as np
import torch

from core import import_config
from core.config import head_size
from core.errors import UsageError
from core.interop import layouts, require
from core.interop.gguf_import import permute_rope_rows
from core.interop.gguf_vocab import gguf_vocab_from_tokenizer
from core.interop.hf_export import check_exportable, llama_kind, load_for_export, qk_norm_ones, split_qkv

# --dtype -> llama.cpp's LlamaFileType (general.file_type), from the one table of it (core.import_config)
FILE_TYPES = {name.lower(): code for code, name in import_config.FILE_TYPES.items()}


def gguf_arch(cfg) -> str:
    family = check_exportable(cfg)
    if family == "gpt2":
        return "gpt2"
    if cfg.bias:
        raise UsageError("model.bias: llama.cpp's llama/qwen2 graphs have no output-projection or MLP biases; "
                         "a RoPE model with bias=true cannot go into GGUF", "model.bias")
    return llama_kind(cfg)


def export_gguf(path: str, out: str, dtype: str) -> None:
    gguf = require("gguf", "exporting to GGUF")
    model, meta, tok_spec = load_for_export(path)
    cfg = model.cfg
    arch = gguf_arch(cfg)
    vocab = gguf_vocab_from_tokenizer(tok_spec, cfg.vocab_size)
    tmp = temporary_name(out)
    writer = _writer_class(gguf)(tmp, arch)
    with renamed_into_place(writer, tmp, out):
        _metadata(writer, cfg, arch, dtype, meta, len(vocab["tokens"]))
        _vocabulary(writer, vocab, meta, gguf)
        # Streamed, one converted tensor in memory at a time (review finding 19): the tensor table first
        # (names, shapes, types, sizes: a first pass converts each tensor and keeps only those), then the
        # data, converted again tensor by tensor. Peak memory: the model plus one tensor, not 2-3 models.
        for name, array, qtype in _tensors(model, arch, dtype, gguf, vocab["extra_rows"]):
            writer.add_tensor_info(name, array.shape, array.dtype, array.nbytes, raw_dtype=qtype)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for _name, array, _qtype in _tensors(model, arch, dtype, gguf, vocab["extra_rows"]):
            writer.write_tensor_data(array)


def temporary_name(out: str) -> str:
    return os.path.join(os.path.dirname(os.path.abspath(out)), f".{os.path.basename(out)}.tmp-{os.getpid()}")


@contextlib.contextmanager
def renamed_into_place(writer, tmp: str, out: str):
    """Close the GGUF writer's file `tmp` and rename it to `out` when the block ends; on any error (a kill
    included) close and remove it: nothing half-written under either name."""
    try:
        yield writer
        writer.close()
        os.replace(tmp, out)
    except BaseException:
        writer.close()
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _writer_class(gguf):
    """gguf's writer, also writing an empty array: llama.cpp requires tokenizer.ggml.merges for a "gpt2"
    vocabulary and a byte (or ASCII character) vocabulary has no merges; the gguf package refuses `[]`."""

    class Writer(gguf.GGUFWriter):
        def _pack_val(self, val, vtype, add_vtype, sub_type=None):
            if vtype == gguf.GGUFValueType.ARRAY and not len(val):
                head = self._pack("I", vtype) if add_vtype else b""
                return head + self._pack("I", sub_type or gguf.GGUFValueType.STRING) + self._pack("Q", 0)
            return super()._pack_val(val, vtype, add_vtype, sub_type)

    return Writer


def _metadata(w, cfg, arch: str, dtype: str, meta: dict, n_vocab: int) -> None:
    w.add_name(str((meta.get("imported_from") or {}).get("name") or "llm-training-studio model"))
    w.add_context_length(cfg.block_size)
    w.add_embedding_length(cfg.n_embd)
    w.add_block_count(cfg.n_layer)
    w.add_feed_forward_length(model_width(cfg))
    w.add_head_count(cfg.n_head)
    w.add_file_type(FILE_TYPES[dtype])
    if arch == "gpt2":
        w.add_layer_norm_eps(cfg.norm_eps)
        return
    w.add_head_count_kv(cfg.n_kv_head or cfg.n_head)
    w.add_rope_freq_base(cfg.rope_theta)
    w.add_layer_norm_rms_eps(cfg.norm_eps)
    w.add_rope_dimension_count(head_size(cfg))
    w.add_key_length(head_size(cfg))  # llama.cpp's n_embd_head_k / _v: n_embd / n_head when absent
    w.add_value_length(head_size(cfg))
    w.add_vocab_size(n_vocab)


def model_width(cfg) -> int:
    from core.model import mlp_width

    return mlp_width(cfg)


def _vocabulary(w, vocab: dict, meta: dict, gguf) -> None:
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(vocab["pre"])
    w.add_token_list(vocab["tokens"])
    w.add_token_types(vocab["types"])
    w.add_key_value(gguf.Keys.Tokenizer.MERGES, vocab["merges"], gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.STRING)
    for role, add in (("bos", w.add_bos_token_id), ("eos", w.add_eos_token_id), ("pad", w.add_pad_token_id)):
        tid = meta.get(f"{role}_token_id")
        if isinstance(tid, list):
            tid = tid[0] if tid else None
        if not isinstance(tid, int) and role != "pad":
            tid = vocab.get("eos")  # char / byte: not llama.cpp's default 11 (see gguf_vocab)
        if isinstance(tid, int):
            add(tid)
    if isinstance(vocab.get("unk"), int):
        w.add_unk_token_id(vocab["unk"])
    w.add_add_bos_token(bool(meta.get("add_bos_token", False)))
    if meta.get("chat_template"):
        w.add_chat_template(meta["chat_template"])


def _tensors(model, arch: str, dtype: str, gguf, extra_rows: list[int]):
    """(gguf name, numpy array, raw GGML type or None) per tensor, in llama.cpp's layout; the embedding and
    output matrices get `extra_rows` (copies of those rows) appended for the vocabulary's extra tokens."""
    cfg = model.cfg
    family = "gpt2" if arch == "gpt2" else "llama"
    state = {**model.state_dict(), **qk_norm_ones(model)}
    for ours, t in state.items():
        if ours == "lm_head.weight" and cfg.tie_embeddings and arch != "gpt2":
            continue  # llama.cpp falls back to token_embd when output.weight is absent
        spec = layouts.other_name(layouts.GGUF_LAYOUTS, family, ours)
        t = t.detach().float()
        if isinstance(spec, tuple):  # split our fused q/k/v
            for name, part in zip(spec, split_qkv(cfg, t), strict=True):
                if arch == "llama" and name.endswith(("attn_q.weight", "attn_q.bias")):
                    part = permute_rope_rows(part, cfg.n_head)
                elif arch == "llama" and name.endswith(("attn_k.weight", "attn_k.bias")):
                    part = permute_rope_rows(part, cfg.n_kv_head or cfg.n_head)
                yield encode(name, part, dtype, gguf)
        else:
            if spec in ("token_embd.weight", "output.weight") and extra_rows:
                t = torch.cat([t, t[extra_rows]])
            yield encode(spec, t, dtype, gguf)
    if arch == "gpt2":
        for ours, spec in (("attn.c_attn.bias", cfg.n_embd * 3), ("attn.c_proj.bias", cfg.n_embd),
                           ("mlp.c_fc.bias", model_width(cfg)), ("mlp.c_proj.bias", cfg.n_embd)):
            if f"blocks.0.{ours}" not in state:  # llama.cpp's gpt2 graph wants every bias: zeros are exact
                for i in range(cfg.n_layer):
                    name = layouts.other_name(layouts.GGUF_LAYOUTS, "gpt2", f"blocks.{i}.{ours}")
                    yield name, np.zeros(spec, dtype=np.float32), None
        for ours in ("ln_1.bias", "ln_2.bias"):
            if f"blocks.0.{ours}" not in state:
                for i in range(cfg.n_layer):
                    name = layouts.other_name(layouts.GGUF_LAYOUTS, "gpt2", f"blocks.{i}.{ours}")
                    yield name, np.zeros(cfg.n_embd, dtype=np.float32), None
        if "ln_f.bias" not in state:
            yield "output_norm.bias", np.zeros(cfg.n_embd, dtype=np.float32), None


def encode(name: str, t: torch.Tensor, dtype: str, gguf):
    arr = t.numpy().astype(np.float32)
    q = gguf.GGMLQuantizationType
    if arr.ndim < 2 or dtype == "f32":
        return name, arr, None
    if dtype == "f16":
        return name, arr.astype(np.float16), None
    if dtype == "bf16":
        return name, gguf.quants.quantize(arr, q.BF16), q.BF16
    if arr.shape[-1] % 32:  # Q8_0 works in blocks of 32 along a row
        return name, arr.astype(np.float16), None
    return name, gguf.quants.quantize(arr, q.Q8_0), q.Q8_0
