"""The GPT: a decoder-only transformer in plain PyTorch, readable top to bottom.

Shapes use B = batch, T = time (tokens), C = n_embd, nh = n_head, hs = head size (head_dim, else C // nh),
nkv = n_kv_head (key/value heads; nh with plain multi-head attention), V = vocab size.

Grouped-query attention (GQA): nkv key/value heads each serve nh / nkv query heads. The cache keeps the
nkv heads; they are repeated to nh right before the attention product, so every query head has its own
(B, T, T) map in the inspection path.

Two attention paths share the same weights:
  - the fast path, `F.scaled_dot_product_attention` (flash / memory-efficient kernels), used for training
    and generation;
  - the inspection path (`return_attention=True`), which materialises softmax(QK^T / sqrt(hs) + mask)
    and returns it per layer, for the attention views. It never runs during training.
A KV cache (`KVCache`) makes generation O(T) per token.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.nn import functional as F
from torch.utils.checkpoint import checkpoint

from core.config import ModelConfig, head_size, mlp_hidden
from core.losses import lm_loss


# ------------------------------------------------------------------------------------------ layers
class RMSNorm(nn.Module):
    """Root-mean-square norm (no mean subtraction, no bias): x / rms(x) * weight."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return rms_norm(x, self.eps, self.weight)


def rms_norm(x: torch.Tensor, eps: float, weight: torch.Tensor | None = None) -> torch.Tensor:
    """F.rms_norm over the last dimension; in elementary operations while exporting to ONNX (the TorchScript
    exporter has no aten::rms_norm: a model with QK-norm failed to export)."""
    if torch.onnx.is_in_onnx_export():
        y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
        return y if weight is None else y * weight
    return F.rms_norm(x, (x.size(-1),), weight, eps)


def make_norm(cfg: ModelConfig) -> nn.Module:
    if cfg.norm == "rmsnorm":
        return RMSNorm(cfg.n_embd, cfg.norm_eps)
    return nn.LayerNorm(cfg.n_embd, eps=cfg.norm_eps, bias=cfg.bias)


def kv_heads(cfg: ModelConfig) -> int:
    """Key/value heads: n_kv_head for grouped-query attention, else one per query head."""
    return cfg.n_kv_head or cfg.n_head


def mlp_width(cfg: ModelConfig) -> int:
    """Feed-forward hidden width: an imported model's explicit intermediate_size, else from mlp_ratio."""
    return mlp_hidden(cfg)


def sinusoidal_table(n_pos: int, dim: int) -> torch.Tensor:
    """(n_pos, dim) fixed encodings from "Attention is all you need": sin on even, cos on odd features."""
    pos = torch.arange(n_pos, dtype=torch.float32)[:, None]
    inv = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(n_pos, dim)
    table[:, 0::2] = torch.sin(pos * inv)
    table[:, 1::2] = torch.cos(pos * inv)
    return table


def rope_tables(n_pos: int, head_size: int, base: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and signed sin, each (n_pos, 1, hs), for rotary embeddings (rotate-half convention).

    The sin table's first half is negated so that `apply_rope` rotates with one roll instead of splitting,
    negating and concatenating halves; the middle axis broadcasts over heads."""
    inv = 1.0 / (base ** (torch.arange(0, head_size, 2, dtype=torch.float32) / head_size))
    angles = torch.outer(torch.arange(n_pos, dtype=torch.float32), inv)  # (n_pos, hs/2)
    angles = torch.cat([angles, angles], dim=-1)                          # (n_pos, hs)
    sign = torch.ones(head_size)
    sign[:head_size // 2] = -1.0
    return angles.cos()[:, None, :], (angles.sin() * sign)[:, None, :]


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x: (B, T, heads, hs); cos, sin: (T, 1, hs) from `rope_tables`.

    x * cos + rotate_half(x) * sin with rotate_half(x) = (-x2, x1): the roll gives (x2, x1) and the
    table's negated first half supplies the minus sign. Each product rounds as in the rotate-half form
    (transformers'), so that imported models' logits match theirs to the last bits."""
    return x * cos.to(x.dtype) + x.roll(x.size(-1) // 2, dims=-1) * sin.to(x.dtype)


@dataclass
class KVCache:
    """Keys and values of every layer for the tokens seen so far: (n_layer, B, nkv, T_max, hs) each."""

    k: torch.Tensor
    v: torch.Tensor
    pos: int = 0  # number of positions filled

    @classmethod
    def empty(cls, cfg: ModelConfig, batch: int, device, dtype, max_len: int | None = None) -> KVCache:
        shape = (cfg.n_layer, batch, kv_heads(cfg), max_len or cfg.block_size, head_size(cfg))
        return cls(torch.zeros(shape, device=device, dtype=dtype), torch.zeros(shape, device=device, dtype=dtype))


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_head, self.n_kv_head = cfg.n_head, kv_heads(cfg)
        if self.n_head % self.n_kv_head:
            raise ValueError(f"model.n_head={cfg.n_head} is not a multiple of model.n_kv_head={cfg.n_kv_head}")
        self.head_size = head_size(cfg)  # n_embd // n_head unless model.head_dim says otherwise (Qwen3)
        self.q_size = self.n_head * self.head_size  # width of q (and of the heads side by side)
        self.kv_size = self.n_kv_head * self.head_size  # width of k (and of v)
        # q, k, v in one matmul: (q_size + 2 * kv_size) outputs; q/k/v may carry a bias of their own (Qwen2)
        self.c_attn = nn.Linear(cfg.n_embd, self.q_size + 2 * self.kv_size, bias=cfg.bias or cfg.qkv_bias)
        self.c_proj = nn.Linear(self.q_size, cfg.n_embd, bias=cfg.bias)
        self.c_proj.residual_out = True  # scaled init, see GPT._init_weights
        self.dropout = cfg.dropout
        self.qk_eps = cfg.norm_eps if cfg.qk_norm else None  # QK-norm: RMS norm per head
        if cfg.qk_norm and cfg.qk_norm_weight:  # with a learned weight per feature, shared by the heads (Qwen3)
            self.q_norm, self.k_norm = RMSNorm(self.head_size, cfg.norm_eps), RMSNorm(self.head_size, cfg.norm_eps)

    def forward(self, x: torch.Tensor, rope: tuple | None, layer: int = 0, cache: KVCache | None = None,
                return_attention: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        B, T, _ = x.shape
        heads_qk = self.n_head + self.n_kv_head
        # (B, T, nh + 2 nkv, hs): the query heads, then the key heads, then the value heads
        qk, v = self.c_attn(x).view(B, T, heads_qk + self.n_kv_head, self.head_size).split(
            [heads_qk, self.n_kv_head], dim=2)
        if self.qk_eps is not None:  # before RoPE, as in modded-nanogpt and Qwen3; both attention paths see it
            qk = rms_norm(qk, self.qk_eps)
            if hasattr(self, "q_norm"):  # the query heads' weight, then the key heads'
                qk = qk * torch.cat([self.q_norm.weight.expand(self.n_head, -1),
                                     self.k_norm.weight.expand(self.n_kv_head, -1)]).to(qk.dtype)
        if rope is not None:  # queries and keys rotate together: one set of operations, not two
            qk = apply_rope(qk, *rope)
        q, k = qk.split([self.n_head, self.n_kv_head], dim=2)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # (B, heads, T, hs)

        past = 0
        if cache is not None:
            past = cache.pos
            cache.k[layer, :B, :, past:past + T] = k
            cache.v[layer, :B, :, past:past + T] = v
            k, v = cache.k[layer, :B, :, :past + T], cache.v[layer, :B, :, :past + T]  # (B, nkv, past+T, hs)
        gqa = self.n_kv_head != self.n_head
        if return_attention:
            if gqa:  # each key/value head serves a group of consecutive query heads
                group = self.n_head // self.n_kv_head
                k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)  # (B, nh, ., hs)
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(self.head_size))  # (B, nh, T, past+T)
            att = att.masked_fill(~_causal_mask(T, past, x.device), float("-inf"))
            probs = F.softmax(att.float(), dim=-1).to(q.dtype)
            y = F.dropout(probs, self.dropout, self.training) @ v  # (B, nh, T, hs)
        else:
            probs = None
            dropout = self.dropout if self.training else 0.0
            # enable_gqa: SDPA serves each key/value head to its query-head group itself (the same
            # repeat_interleave grouping as above) without materialising the repeated keys and values.
            # The ONNX exporter does not know enable_gqa: there the keys and values are repeated instead.
            if gqa and torch.onnx.is_in_onnx_export():
                group = q.size(1) // k.size(1)
                k, v, gqa = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1), False
            if T > 1 and q.device.type == "cpu" and q.dtype != torch.float32 and self.head_size < 64:
                y = _sdpa_cpu_fp32(q, k, v, past, dropout, gqa)
            else:
                y = _sdpa(q, k, v, past, dropout, gqa)
        y = y.transpose(1, 2).reshape(B, T, self.q_size)  # re-assemble heads side by side
        return _dropout(self.c_proj(y), self.dropout, self.training), probs


def _sdpa(q, k, v, past: int, dropout: float, gqa: bool) -> torch.Tensor:
    """Causal SDPA of the new tokens' queries over the cached and new keys (past = tokens already cached)."""
    if past == 0:
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=True, enable_gqa=gqa)
    if q.size(2) == 1:  # one new token attends to everything before it: no mask needed
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, enable_gqa=gqa)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=_causal_mask(q.size(2), past, q.device),
                                          dropout_p=dropout, enable_gqa=gqa)


def _sdpa_cpu_fp32(q, k, v, past: int, dropout: float, gqa: bool) -> torch.Tensor:
    """`_sdpa` of bf16/fp16 q, k, v on a CPU, computed in fp32 and returned in their dtype: for head sizes
    below 64, where ATen's CPU flash-attention backward is much slower in bf16 than in fp32.

    torch 2.13, 2-core AMX Xeon, forward + backward of one layer's attention, bf16 vs fp32 (the fp32 casts
    not counted): head size 32, T=128, batch 16: 13.4 vs 3.3 ms. From head size 64 bf16 is as fast or
    faster, so the casts would be a loss: T=256, batch 12: 27.9 vs 27.6 ms; T=512, batch 2, 9 query / 3 kv
    heads (a SmolLM-135M fine-tune): 17.4 vs 21.7 ms. Autocast is off inside, or it would cast the inputs
    back to bf16. The matmuls around it keep their bf16 speed either way."""
    with torch.autocast("cpu", enabled=False):
        y = _sdpa(q.float(), k.float(), v.float(), past, dropout, gqa)
    return y.to(q.dtype)


def _dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """F.dropout, skipped where it would change nothing: a call costs more than the operations around it
    when generating one token on a CPU."""
    return F.dropout(x, p, True) if training and p > 0 else x


def _causal_mask(T: int, past: int, device) -> torch.Tensor:
    """(T, past+T) bool: query i (at absolute position past+i) may see keys j <= past+i."""
    return torch.ones(T, past + T, dtype=torch.bool, device=device).tril(diagonal=past)


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        hidden = mlp_width(cfg)
        self.activation = cfg.activation
        self.c_fc = nn.Linear(cfg.n_embd, hidden, bias=cfg.bias)
        if cfg.activation == "swiglu":
            self.c_gate = nn.Linear(cfg.n_embd, hidden, bias=cfg.bias)
        self.c_proj = nn.Linear(hidden, cfg.n_embd, bias=cfg.bias)
        self.c_proj.residual_out = True
        self.dropout = cfg.dropout
        self.gate_up = None  # generation on a CPU: c_gate and c_fc as one packed matrix (core.cpu_linear)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gate_up is not None:
            gate, up = self.gate_up(x).chunk(2, dim=-1)
            h = F.silu(gate) * up
        elif self.activation == "swiglu":
            h = F.silu(self.c_gate(x)) * self.c_fc(x)
        elif self.activation == "relu":
            h = F.relu(self.c_fc(x))
        else:
            h = F.gelu(self.c_fc(x), approximate="tanh")
        return _dropout(self.c_proj(h), self.dropout, self.training)


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.ln_1 = make_norm(cfg)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = make_norm(cfg)
        self.mlp = MLP(cfg)

    def forward(self, x, rope, layer=0, cache=None, return_attention=False):
        a, probs = self.attn(self.ln_1(x), rope, layer, cache, return_attention)
        x = x + a
        x = x + self.mlp(self.ln_2(x))
        return x, probs


# ------------------------------------------------------------------------------------------ model
class GPT(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if cfg.vocab_size is None:
            raise ValueError("model.vocab_size must be set (take it from the data folder's meta.json)")
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        if cfg.pos_encoding == "learned":
            self.pos_emb = nn.Embedding(cfg.block_size, cfg.n_embd)
        elif cfg.pos_encoding == "sinusoidal":
            # Scaled to the token embeddings' init RMS (0.02): at unit amplitude the fixed table would
            # drown the token signal at the start of training.
            table = sinusoidal_table(cfg.block_size, cfg.n_embd) * (0.02 * math.sqrt(2.0))
            self.register_buffer("pos_table", table, persistent=False)
        else:  # rope
            cos, sin = rope_tables(cfg.block_size, head_size(cfg), cfg.rope_theta)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layer)])
        self.ln_f = make_norm(cfg)
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.tok_emb.weight  # one matrix for input and output (Press & Wolf 2017)
        self.apply(self._init_weights)

    def _init_weights(self, module: nn.Module) -> None:
        """GPT-2 init: N(0, 0.02); residual output projections scaled by 1/sqrt(2 n_layer); zero biases."""
        if isinstance(module, nn.Linear):
            std = 0.02
            if getattr(module, "residual_out", False):
                std = 0.02 / math.sqrt(2 * self.cfg.n_layer)
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def rope(self, past: int, T: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The rotary tables (cos, signed sin) of positions past .. past+T-1, as the blocks take them."""
        return self.rope_cos[past:past + T], self.rope_sin[past:past + T]

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, cache: KVCache | None = None,
                return_attention: bool = False, last_only: bool = False):
        """idx (B, T) token ids -> logits (B, T, V) [(B, 1, V) with last_only], loss, attention.

        With targets: (None, loss, attention), the mean cross-entropy over targets != -1; the logits are
        not returned, so that a large vocabulary's need not exist at once (core.losses.lm_loss).

        attention is a list (one per layer) of (B, nh, T, past+T) probabilities when return_attention,
        else None. With a cache, idx holds only the new tokens and the cache position advances.
        """
        B, T = idx.shape
        past = cache.pos if cache is not None else 0
        if past + T > self.cfg.block_size:
            raise ValueError(f"sequence of {past + T} tokens is longer than block_size={self.cfg.block_size}")
        x = self.tok_emb(idx)  # (B, T, C)
        rope = None
        if self.cfg.pos_encoding == "learned":
            x = x + self.pos_emb(torch.arange(past, past + T, device=idx.device))
        elif self.cfg.pos_encoding == "sinusoidal":
            x = x + self.pos_table[past:past + T].to(x.dtype)
        else:
            rope = self.rope(past, T)
        x = _dropout(x, self.cfg.dropout, self.training)
        maps = [] if return_attention else None
        for i, block in enumerate(self.blocks):
            if getattr(self, "grad_checkpointing", False) and self.training and cache is None:
                x, probs = checkpoint(block, x, rope, i, None, return_attention, use_reentrant=False)
            else:
                x, probs = block(x, rope, i, cache, return_attention)
            if maps is not None:
                maps.append(probs)
        if cache is not None:
            cache.pos += T
        x = self.ln_f(x)
        if targets is not None:  # the loss without the logits where they are large (core.losses)
            return None, lm_loss(x, self.lm_head, targets), maps
        if last_only:
            x = x[:, -1:, :]  # generation needs only the next-token distribution
        return self.lm_head(x), None, maps

    def optimizer_groups(self, weight_decay: float) -> list[dict]:
        """Decay matrices (Linear, Embedding weights); never biases or norm gains (as in nanoGPT/GPT-3)."""
        params = {n: p for n, p in self.named_parameters() if p.requires_grad}
        decay = [p for p in params.values() if p.dim() >= 2]
        no_decay = [p for p in params.values() if p.dim() < 2]
        return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]

    def make_optimizer(self, lr: float, weight_decay: float, betas, eps: float, device_type: str,
                       kind: str = "adamw", muon_lr: float = 0.02):
        """AdamW (the fused kernel where this torch has it); with kind="muon", Muon for the 2-D matrices
        inside the blocks and AdamW for the rest (core.optim.MuonAdamW)."""
        if kind == "muon":
            from core.optim import muon_adamw

            return muon_adamw(self, lr, weight_decay, betas, eps, muon_lr)
        return adamw(self.optimizer_groups(weight_decay), lr, betas, eps)


def adamw(groups: list[dict], lr: float, betas, eps: float) -> torch.optim.AdamW:
    """AdamW with the fused kernel where this torch has it for the device (CUDA, and CPU in torch >= 2.4)."""
    try:
        return torch.optim.AdamW(groups, lr=lr, betas=tuple(betas), eps=eps, fused=True)
    except (RuntimeError, TypeError):  # fused unavailable for this device/dtype
        return torch.optim.AdamW(groups, lr=lr, betas=tuple(betas), eps=eps)
