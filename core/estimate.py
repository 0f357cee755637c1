"""Analytic sizes of a run config: parameter count, FLOPs per token, memory by component.

Torch-free like core.config (the studio's estimates panel calls it on every edit); `core.config`
re-exports these names. The parameter count is exact for core.model.GPT (a test checks it).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from core.export_families import export_formats
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


def mlp_hidden(m: ModelConfig) -> int:
    """The feed-forward width core.model uses: an imported model's explicit intermediate_size, else
    ffn_hidden's rule."""
    return m.intermediate_size or ffn_hidden(m)


def head_size(m: ModelConfig) -> int:
    """The width of one attention head: model.head_dim where set (Qwen3), else n_embd / n_head."""
    return m.head_dim or m.n_embd // m.n_head


def linear_shapes(m: ModelConfig) -> dict[str, list[tuple[int, int]]]:
    """(in, out) features of each block's projections, by train.lora_targets name (core.lora's mapping)."""
    d, h, hs = m.n_embd, mlp_hidden(m), head_size(m)
    q, kv = m.n_head * hs, (m.n_kv_head or m.n_head) * hs  # grouped-query attention: fewer key/value heads
    gated = m.activation == "swiglu"
    return {"attn_qkv": [(d, q + 2 * kv)], "attn_out": [(q, d)],
            "mlp_in": [(d, h)] * (2 if gated else 1), "mlp_out": [(h, d)]}


def param_count(m: ModelConfig, vocab_size: int, include_embeddings: bool = True) -> int:
    """Exact number of parameters of core.model.GPT for this shape (GQA, q/k/v bias and an explicit
    feed-forward width included, so imported models count right)."""
    d = m.n_embd
    b = 1 if m.bias else 0
    norm = d * (1 + b) if m.norm == "layernorm" else d
    shapes = linear_shapes(m)
    block = 2 * norm + sum(i * o + o * (1 if (b or (name == "attn_qkv" and m.qkv_bias)) else 0)
                           for name, pairs in shapes.items() for i, o in pairs)
    if m.qk_norm and m.qk_norm_weight:
        block += 2 * head_size(m)  # one weight for the queries, one for the keys, shared by the heads
    total = m.n_layer * block + norm  # + final norm
    emb = vocab_size * d
    pos = m.block_size * d if m.pos_encoding == "learned" else 0
    head = 0 if m.tie_embeddings else vocab_size * d
    if include_embeddings:
        total += emb + pos + head
    else:
        total += head if not m.tie_embeddings else 0
    return total


def lora_params(m: ModelConfig, rank: int, targets: list[str]) -> int:
    """Parameters of the LoRA adapters (A: r x in, B: out x r on every targeted projection of every block)."""
    shapes = linear_shapes(m)
    return m.n_layer * sum(rank * (i + o) for name in targets for i, o in shapes.get(name, []))


def flops_per_token(m: ModelConfig, vocab_size: int) -> float:
    """Training FLOPs per token (forward + backward), PaLM appendix B: 6N + 12 L T d."""
    n = param_count(m, vocab_size, include_embeddings=False) + vocab_size * m.n_embd  # lm head matmul counts
    return 6.0 * n + 12.0 * m.n_layer * m.block_size * m.n_head * head_size(m)  # n_head x head size: d, or not


# The chunked LM loss's rule (core/losses.py imports it from here, so that this torch-free estimate follows it):
LM_LOSS_MIN_LOGITS = 1 << 24  # tokens x vocabulary from which the loss walks the tokens in chunks
CHUNK_LOGITS = 1 << 24        # logits per chunk: rows = CHUNK_LOGITS // V, at least MIN_CHUNK_ROWS
MIN_CHUNK_ROWS = 64


def chunked_loss_rows(tokens: int, vocab: int, precision: str) -> int | None:
    """Rows per chunk of the LM loss for a micro-batch of `tokens`, or None when it takes the whole logits
    (small tokens x vocabulary, or fp16: see core/losses.py)."""
    if tokens * vocab < LM_LOSS_MIN_LOGITS or precision == "fp16":
        return None
    return min(tokens, max(MIN_CHUNK_ROWS, CHUNK_LOGITS // vocab))


def logits_memory(tokens: int, vocab: int, d: int, precision: str, act_bytes: int) -> int:
    """Bytes the loss needs around the head: the whole logits and their fp32 copy, or one chunk's fp32 logits
    (with its log-softmax in place) plus the input gradient kept for the backward pass."""
    rows = chunked_loss_rows(tokens, vocab, precision)
    if rows is None:
        return tokens * vocab * (4 + act_bytes)
    return rows * vocab * (4 + act_bytes) + tokens * d * 4


def estimate(cfg: Config, vocab_size: int | None = None, world_size: int = 1) -> dict:
    """Analytic sizes for the GUI: parameters, tokens per step, FLOPs, memory (bytes) by component."""
    m, t = cfg.model, cfg.train
    vocab = vocab_size or m.vocab_size or data_vocab_size(cfg.data.dir) or 50304
    n_params = param_count(m, vocab)
    lora = lora_params(m, t.lora_rank, t.lora_targets) if t.finetune == "lora" else 0
    trainable = lora or n_params  # LoRA: the base is frozen; only the adapters get gradients and state
    device = likely_device(t.device)
    precision, precision_reason = explain(t.precision, device, m.n_embd)
    act_bytes = 4 if precision == "fp32" else 2
    matrices = m.n_layer * sum(i * o for pairs in linear_shapes(m).values() for i, o in pairs)  # the blocks'
    weights = 4 * (n_params + lora)              # master weights stay fp32
    if lora and precision in ("bf16", "fp16"):  # a LoRA run keeps the frozen projections in 2 bytes (core.lora)
        weights -= 2 * matrices
    grads = 4 * trainable
    optimizer = 8 * trainable                    # AdamW exp_avg + exp_avg_sq, fp32
    muon = t.optimizer == "muon" and not lora
    if muon:  # Muon keeps one momentum buffer for the blocks' matrices (core.optim.muon_adamw)
        optimizer -= 4 * matrices
    bt = t.batch_size * m.block_size
    # Activations kept for backward, per layer: ~ (34 d + 5 h T) bytes-units per token (Korthikanti et al.
    # 2022, no recomputation); with SDPA the T x T attention scores are not materialised, so we keep
    # the linear terms plus what the loss holds around the head (logits_memory).
    per_layer = bt * m.n_embd * 34 * act_bytes / 2
    if device == "cpu" and precision == "fp32":
        per_layer += bt * m.n_head * m.block_size * 4  # CPU math attention keeps the probabilities
    activations = m.n_layer * per_layer + logits_memory(bt, vocab, m.n_embd, precision, act_bytes)
    exports, export_refusal = export_formats(m)
    return {
        "vocab_size": vocab,
        "params": n_params,
        "params_non_embedding": param_count(m, vocab, include_embeddings=False),
        "trainable_params": trainable,
        "tokens_per_step": bt * t.grad_accum_steps * world_size,
        "flops_per_token": flops_per_token(m, vocab),
        "flops_per_step": flops_per_token(m, vocab) * bt * t.grad_accum_steps * world_size,
        "device": device,
        "precision": precision,
        "precision_reason": precision_reason,
        "optimizer": "Muon for the block matrices, AdamW for the rest" if muon else "AdamW",
        "exports": exports,                # the formats `llm-train export` writes for this model
        "export_refusal": export_refusal,  # why not Hugging Face and GGUF ("" when it does)
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
