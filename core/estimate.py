"""Analytic sizes of a run config: parameter count, FLOPs per token, memory by component.

Torch-free like core.config (the studio's estimates panel calls it on every edit); `core.config`
re-exports these names. The parameter count is exact for core.model.GPT (a test checks it).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from core.layout import DATA_META, read_json
from core.precision import explain, likely_device

if TYPE_CHECKING:  # core.config imports this module at its end: no import back at run time
    from core.config import Config, ModelConfig


def data_vocab_size(data_dir: str) -> int | None:
    """The vocab size recorded by `prepare` in data_dir/meta.json, or None when it is not there."""
    try:
        return int(read_json(os.path.join(data_dir, DATA_META))["vocab_size"])
    except (ValueError, KeyError, TypeError):
        return None


def ffn_hidden(m: ModelConfig) -> int:
    """Feed-forward hidden width; swiglu keeps the parameter count of a 2-matrix MLP (x 2/3)."""
    hidden = int(m.mlp_ratio * m.n_embd)
    if m.activation == "swiglu":
        hidden = int(2 * hidden / 3)
        hidden = max(8, (hidden + 7) // 8 * 8)  # a multiple of 8 keeps matmuls aligned
    return hidden


def param_count(m: ModelConfig, vocab_size: int, include_embeddings: bool = True) -> int:
    """Exact number of trainable parameters of core.model.GPT for this shape."""
    d, h = m.n_embd, ffn_hidden(m)
    b = 1 if m.bias else 0
    norm = d * (1 + b) if m.norm == "layernorm" else d
    attn = d * 3 * d + 3 * d * b + d * d + d * b
    mlp = (d * h * (3 if m.activation == "swiglu" else 2)) + b * (h * (2 if m.activation == "swiglu" else 1) + d)
    block = 2 * norm + attn + mlp
    total = m.n_layer * block + norm  # + final norm
    emb = vocab_size * d
    pos = m.block_size * d if m.pos_encoding == "learned" else 0
    head = 0 if m.tie_embeddings else vocab_size * d
    if include_embeddings:
        total += emb + pos + head
    else:
        total += head if not m.tie_embeddings else 0
    return total


def flops_per_token(m: ModelConfig, vocab_size: int) -> float:
    """Training FLOPs per token (forward + backward), PaLM appendix B: 6N + 12 L T d."""
    n = param_count(m, vocab_size, include_embeddings=False) + vocab_size * m.n_embd  # lm head matmul counts
    return 6.0 * n + 12.0 * m.n_layer * m.block_size * m.n_embd


def estimate(cfg: Config, vocab_size: int | None = None, world_size: int = 1) -> dict:
    """Analytic sizes for the GUI: parameters, tokens per step, FLOPs, memory (bytes) by component."""
    m, t = cfg.model, cfg.train
    vocab = vocab_size or m.vocab_size or data_vocab_size(cfg.data.dir) or 50304
    n_params = param_count(m, vocab)
    device = likely_device(t.device)
    precision, precision_reason = explain(t.precision, device, m.n_embd)
    act_bytes = 4 if precision == "fp32" else 2
    weights = 4 * n_params                       # master weights stay fp32
    grads = 4 * n_params
    optimizer = 8 * n_params                     # AdamW exp_avg + exp_avg_sq, fp32
    bt = t.batch_size * m.block_size
    # Activations kept for backward, per layer: ~ (34 d + 5 h T) bytes-units per token (Korthikanti et al.
    # 2022, no recomputation); with SDPA the T x T attention scores are not materialised, so we keep
    # the linear terms plus the logits.
    per_layer = bt * m.n_embd * 34 * act_bytes / 2
    if device == "cpu" and precision == "fp32":
        per_layer += bt * m.n_head * m.block_size * 4  # CPU math attention keeps the probabilities
    activations = m.n_layer * per_layer + bt * vocab * (4 + act_bytes)
    return {
        "vocab_size": vocab,
        "params": n_params,
        "params_non_embedding": param_count(m, vocab, include_embeddings=False),
        "tokens_per_step": bt * t.grad_accum_steps * world_size,
        "flops_per_token": flops_per_token(m, vocab),
        "flops_per_step": flops_per_token(m, vocab) * bt * t.grad_accum_steps * world_size,
        "device": device,
        "precision": precision,
        "precision_reason": precision_reason,
        "memory": {"weights": weights, "grads": grads, "optimizer": optimizer,
                   "activations": int(activations),
                   "total": int(weights + grads + optimizer + activations)},
    }


def human_count(n: float) -> str:
    for unit, size in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.1f}{unit}"
    return str(int(n))


def human_bytes(n: float) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n) >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"
