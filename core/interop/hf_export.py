"""Our checkpoint -> a Hugging Face folder that `AutoModelForCausalLM` and `AutoTokenizer` load.

learned positions + LayerNorm + GELU  -> GPT2LMHeadModel (missing biases written as zeros: exact)
RoPE + RMSNorm + SwiGLU              -> LlamaForCausalLM, or Qwen2ForCausalLM when only q/k/v have biases
the same with QK-norm                -> Qwen3ForCausalLM (a parameter-free QK-norm as weights of one: exact)
Anything else has no HF architecture and is refused, naming the field (core.export_families). The folder
is written under a temporary name and renamed into place.
"""

from __future__ import annotations

import json
import os
import shutil

import torch

from core.config import head_size
from core.errors import UsageError
from core.export_families import check_exportable
from core.interop import layouts
from core.layout import TOKENIZER, atomic_write, atomic_write_json, give_default_mode

DTYPES = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}


def load_for_export(path: str):
    """(model in eval mode, meta, tokenizer.json as a dict) of a checkpoint. A checkpoint naming no EOS whose
    tokenizer has `<|endoftext|>` (our BPE) gets it as its EOS: its data ends every document with it, the
    studio's generation stops there, and GPT-2's files name it so (transformers would otherwise never stop,
    and llama.cpp would stop at its own default, id 11, an ordinary token here)."""
    from core.generate import load_model

    model, meta = load_model(path, "cpu")
    meta, spec = checkpoint_tokenizer(path, meta)
    return model, meta, spec


def checkpoint_tokenizer(path: str, meta: dict) -> tuple[dict, dict]:
    """(meta with the EOS that load_for_export describes, the checkpoint's tokenizer.json as a dict)."""
    from core.tokenizer import EOT

    tok_path = os.path.join(path, TOKENIZER)
    if not os.path.isfile(tok_path):
        raise UsageError(f"checkpoint has no {TOKENIZER}: {path}")
    with open(tok_path, encoding="utf-8") as fh:
        spec = json.load(fh)
    eot = next((a["id"] for a in spec.get("added_tokens") or [] if a.get("content") == EOT and a.get("special")),
               None)
    if meta.get("eos_token_id") is None and eot is not None:
        meta = {**meta, "eos_token_id": eot}
    return meta, spec


def hf_config(cfg, meta: dict, family: str, dtype: str) -> dict:
    # written even when unknown (null): transformers would otherwise take its class's defaults, GPT-2's
    # 50256 (outside a small vocabulary) or Llama's eos 2, where generate() would stop at whatever our id 2 is
    ids = {k: meta.get(k) for k in ("bos_token_id", "eos_token_id", "pad_token_id")}
    common = {"vocab_size": cfg.vocab_size, "tie_word_embeddings": cfg.tie_embeddings, "use_cache": True,
              "torch_dtype": {"f32": "float32", "f16": "float16", "bf16": "bfloat16"}[dtype], **ids}
    from core.model import mlp_width

    if family == "gpt2":
        return {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_layer": cfg.n_layer,
                "n_head": cfg.n_head, "n_embd": cfg.n_embd, "n_positions": cfg.block_size, "n_ctx": cfg.block_size,
                "n_inner": mlp_width(cfg), "activation_function": "gelu_new", "layer_norm_epsilon": cfg.norm_eps,
                "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0, **common}
    kind = llama_kind(cfg)
    out = {"architectures": [{"qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM"}.get(kind, "LlamaForCausalLM")],
           "model_type": kind, "hidden_size": cfg.n_embd,
           "intermediate_size": mlp_width(cfg), "num_hidden_layers": cfg.n_layer,
           "num_attention_heads": cfg.n_head, "num_key_value_heads": cfg.n_kv_head or cfg.n_head,
           "head_dim": head_size(cfg), "max_position_embeddings": cfg.block_size,
           "rms_norm_eps": cfg.norm_eps, "hidden_act": "silu", "rope_theta": cfg.rope_theta,
           "rope_parameters": {"rope_type": "default", "rope_theta": cfg.rope_theta}, "attention_dropout": 0.0,
           **common}
    if kind in ("qwen2", "qwen3"):
        out.update(use_sliding_window=False, sliding_window=None, max_window_layers=cfg.n_layer)
    if kind == "qwen3":
        out.update(attention_bias=False)
    elif kind == "llama":
        out.update(attention_bias=cfg.bias, mlp_bias=cfg.bias)
    return out


def llama_kind(cfg) -> str:
    """The architecture of a model of the Llama layout family: qwen3 (QK-norm), qwen2 (q/k/v bias only) or
    llama; the same words as model_type in config.json and general.architecture in GGUF."""
    if cfg.qk_norm:
        return "qwen3"
    return "qwen2" if cfg.qkv_bias and not cfg.bias else "llama"


def split_qkv(cfg, t: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Our fused q/k/v rows (weight or bias) as the three of Llama's layout."""
    hs = head_size(cfg)
    kv = (cfg.n_kv_head or cfg.n_head) * hs
    return torch.split(t, [cfg.n_head * hs, kv, kv], dim=0)


def qk_norm_ones(model) -> dict[str, torch.Tensor]:
    """Our names and weights of one for a parameter-free QK-norm (Qwen3's norms have weights): exact; {} for
    a model without QK-norm or with learned weights (then in its state dict)."""
    cfg = model.cfg
    if not cfg.qk_norm or cfg.qk_norm_weight:
        return {}
    return {f"blocks.{i}.attn.{n}.weight": torch.ones(head_size(cfg)) for i in range(cfg.n_layer)
            for n in ("q_norm", "k_norm")}


def hf_state_dict(model, family: str, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    cfg, state, out = model.cfg, {**model.state_dict(), **qk_norm_ones(model)}, {}
    prefix = "transformer." if family == "gpt2" else ""
    for ours, t in state.items():
        if ours == "lm_head.weight":
            if not cfg.tie_embeddings:
                out["lm_head.weight"] = t
            continue
        spec = layouts.other_name(layouts.HF_LAYOUTS, family, ours)
        if isinstance(spec, tuple):
            for name, part in zip(spec, split_qkv(cfg, t), strict=True):
                out[name] = part
        elif spec.endswith(":T"):
            out[prefix + spec[:-2]] = t.t()
        else:
            out[prefix + spec] = t
    if family == "gpt2":  # GPT-2 has a bias everywhere: a missing one is zero
        for name, t in list(out.items()):
            bias = name[: -len("weight")] + "bias"
            if name.endswith(".weight") and "wte" not in name and "wpe" not in name and bias not in out:
                width = t.shape[1] if name.endswith(("c_attn.weight", "c_fc.weight", "c_proj.weight")) else t.shape[0]
                out[bias] = torch.zeros(width)
    # A tensor is copied only where it must be: converted to another dtype (a new tensor anyway), transposed
    # (GPT-2's Conv1D layout), or sharing its storage with one already taken (the k and v parts of our fused
    # q/k/v matrix): safetensors refuses non-contiguous and shared tensors. An fp32 export of a Llama-shaped
    # model thus holds the model once, not twice (review finding 19).
    result, storages = {}, set()
    for k, v in out.items():
        v = v.detach().to(dtype)
        ptr = v.untyped_storage().data_ptr()
        if not v.is_contiguous() or ptr in storages:
            v = v.contiguous().clone()
            ptr = v.untyped_storage().data_ptr()
        storages.add(ptr)
        result[k] = v
    return result


def tokenizer_config(meta: dict, cfg, tok_spec: dict) -> dict:
    names = {a["id"]: a["content"] for a in tok_spec.get("added_tokens") or []}
    vocab = (tok_spec.get("model") or {}).get("vocab") or {}
    by_id = {i: t for t, i in vocab.items()} if isinstance(vocab, dict) else {}
    out = {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": cfg.block_size,
           "add_bos_token": bool(meta.get("add_bos_token", False)), "clean_up_tokenization_spaces": False}
    for role in ("bos", "eos", "pad"):
        tid = meta.get(f"{role}_token_id")
        text = meta.get(f"{role}_token")
        if text is None and isinstance(tid, int):
            text = names.get(tid, by_id.get(tid))
        if text is not None:
            out[f"{role}_token"] = text
    if meta.get("chat_template"):
        out["chat_template"] = meta["chat_template"]
    return out


def export_hf(path: str, out: str, dtype: str) -> None:
    from safetensors.torch import save_file

    model, meta, tok_spec = load_for_export(path)
    cfg = model.cfg
    family = check_exportable(cfg)
    if dtype not in DTYPES:
        raise UsageError(f"--dtype {dtype}: an HF export is f32, f16 or bf16")
    out = os.path.abspath(out)
    tmp = os.path.join(os.path.dirname(out), f".{os.path.basename(out)}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        config = hf_config(cfg, meta, family, dtype)
        atomic_write_json(os.path.join(tmp, "config.json"), config)
        gen = {k: config[k] for k in ("bos_token_id", "eos_token_id", "pad_token_id") if config.get(k) is not None}
        atomic_write_json(os.path.join(tmp, "generation_config.json"), gen)
        save_file(hf_state_dict(model, family, DTYPES[dtype]), os.path.join(tmp, "model.safetensors"),
                  metadata={"format": "pt"})
        give_default_mode(os.path.join(tmp, "model.safetensors"))
        shutil.copyfile(os.path.join(path, TOKENIZER), os.path.join(tmp, TOKENIZER))
        atomic_write_json(os.path.join(tmp, "tokenizer_config.json"), tokenizer_config(meta, cfg, tok_spec))
        if meta.get("chat_template"):
            atomic_write(os.path.join(tmp, "chat_template.jinja"), meta["chat_template"])
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
