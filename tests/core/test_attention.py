"""The attention-inspection path: proper distributions, exactly causal, equal to the textbook formula
recomputed from a checkpoint's weights, and never changing the model's output."""

from __future__ import annotations

import itertools
import math
import os

import numpy as np
import pytest
import torch
from engine_helpers import write_config
from safetensors.torch import load_file

from core import checkpoint as ckpt
from core.cli import main
from core.config import ModelConfig
from core.generate import attention_maps, load_model, load_tokenizer_for
from core.model import GPT, KVCache

TEXT = "add: 12 + 7 = 19\nthe quick brown fox"


@pytest.fixture(scope="module", params=["learned", "rope"])
def trained(request, tmp_path_factory, char_data):
    """A 3-layer checkpoint trained a few steps (so the weights are not the symmetric init)."""
    folder = tmp_path_factory.mktemp(f"att-{request.param}")
    cfg = write_config(folder, char_data, model={"n_layer": 3, "block_size": 64, "pos_encoding": request.param, "bias": True},
                       train={"max_steps": 15, "lr": 1e-2})
    assert main(["train", "--config", cfg]) == 0
    path = ckpt.latest_checkpoint(os.path.join(folder, "runs", "r"))
    model, meta = load_model(path)
    tok = load_tokenizer_for(path, meta)
    return path, model, tok.encode(TEXT)


def test_rows_are_distributions_and_exactly_causal(trained):
    _, model, ids = trained
    maps = attention_maps(model, ids)
    T = len(ids)
    assert maps.shape == (3, 2, T, T) and maps.dtype == np.float32
    np.testing.assert_allclose(maps.sum(-1), 1.0, atol=1e-5)
    assert (maps >= 0).all()
    above = np.triu(np.ones((T, T), dtype=bool), k=1)
    assert (maps[..., above] == 0.0).all()  # exactly zero, not merely small
    assert maps[..., 0, 0] == pytest.approx(1.0)  # the first token can only look at itself


def _rotate_textbook(x: torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    """RoPE written out per feature pair (i, i + hs/2) rotated by angle pos * base^(-2i/hs)."""
    T, hs = x.shape[-2], x.shape[-1]
    half = hs // 2
    out = torch.empty_like(x)
    for pos in range(T):
        for i in range(half):
            theta = pos * base ** (-2.0 * i / hs)
            c, s = math.cos(theta), math.sin(theta)
            a, b = x[..., pos, i], x[..., pos, i + half]
            out[..., pos, i] = a * c - b * s
            out[..., pos, i + half] = b * c + a * s
    return out


@pytest.mark.parametrize("layer", [0, 2])
def test_maps_match_softmax_qkt_recomputed_from_checkpoint_weights(trained, layer):
    path, model, ids = trained
    weights = {k: v.double() for k, v in load_file(os.path.join(path, "model.safetensors")).items()}
    cfg = model.cfg
    T, C, nh = len(ids), cfg.n_embd, cfg.n_head
    hs = C // nh
    idx = torch.tensor([ids])

    # The residual stream entering `layer`: earlier blocks run through the model's fast path.
    with torch.no_grad():
        x = model.tok_emb(idx)
        rope = None
        if cfg.pos_encoding == "learned":
            x = x + model.pos_emb(torch.arange(T))
        else:
            rope = model.rope(0, T)
        for i in range(layer):
            x, _ = model.blocks[i](x, rope, i)
    x = x[0].double()  # (T, C)

    # Textbook: LayerNorm, Q = h Wq^T + bq, K = h Wk^T + bk, softmax(Q K^T / sqrt(d_k) + mask).
    p = f"blocks.{layer}."
    h = (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, unbiased=False, keepdim=True) + 1e-5)
    h = h * weights[p + "ln_1.weight"] + weights[p + "ln_1.bias"]
    w, b = weights[p + "attn.c_attn.weight"], weights[p + "attn.c_attn.bias"]
    q = (h @ w[:C].T + b[:C]).view(T, nh, hs).transpose(0, 1)          # (nh, T, hs)
    k = (h @ w[C:2 * C].T + b[C:2 * C]).view(T, nh, hs).transpose(0, 1)
    if cfg.pos_encoding == "rope":
        q, k = _rotate_textbook(q), _rotate_textbook(k)
    mask = torch.full((T, T), float("-inf"), dtype=torch.float64).triu(1)
    expected = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hs) + mask, dim=-1).numpy()

    got = attention_maps(model, ids)[layer]
    np.testing.assert_allclose(got, expected, atol=2e-5, rtol=1e-4)
    assert np.abs(expected - expected.mean()).max() > 0.05  # not a uniform map that anything would match


VARIANTS = list(itertools.product(("learned", "sinusoidal", "rope"), ("layernorm", "rmsnorm"),
                                  ("gelu", "relu", "swiglu")))


@pytest.mark.parametrize("pos_encoding,norm,activation", VARIANTS)
def test_attention_path_gives_the_fast_paths_logits(pos_encoding, norm, activation):
    torch.manual_seed(0)
    cfg = ModelConfig(n_layer=2, n_head=2, n_embd=32, block_size=24, vocab_size=50, pos_encoding=pos_encoding,
                      norm=norm, activation=activation, bias=True)
    model = GPT(cfg).eval()
    with torch.no_grad():
        for prm in model.parameters():  # beyond the small init, so differences would show
            prm.add_(torch.randn_like(prm) * 0.2)
        idx = torch.randint(0, 50, (2, 20))
        fast, _, none = model(idx)
        slow, _, maps = model(idx, return_attention=True)
        assert none is None and len(maps) == 2 and maps[0].shape == (2, 2, 20, 20)
        torch.testing.assert_close(slow, fast, atol=1e-5, rtol=1e-5)
        # With a KV cache (12 prompt tokens, then 8 more in one call) both paths agree as well.
        for return_attention in (False, True):
            cache = KVCache.empty(cfg, 2, "cpu", torch.float32)
            model(idx[:, :12], cache=cache, return_attention=return_attention)
            tail, _, tail_maps = model(idx[:, 12:], cache=cache, return_attention=return_attention)
            torch.testing.assert_close(tail, fast[:, 12:], atol=1e-5, rtol=1e-5)
            if return_attention:
                torch.testing.assert_close(tail_maps[1], maps[1][:, :, 12:, :], atol=1e-6, rtol=1e-5)


# ------------------------------------------------------------------------------ grouped-query attention
def _gqa_model(n_kv_head: int, qkv_bias: bool = False) -> GPT:
    torch.manual_seed(1)
    cfg = ModelConfig(n_layer=2, n_head=4, n_kv_head=n_kv_head, n_embd=32, block_size=24, vocab_size=50,
                      pos_encoding="rope", norm="rmsnorm", activation="swiglu", bias=False, qkv_bias=qkv_bias,
                      rope_theta=500.0, norm_eps=1e-6, intermediate_size=40)
    model = GPT(cfg).eval()
    with torch.no_grad():
        for prm in model.parameters():
            prm.add_(torch.randn_like(prm) * 0.2)
    return model


@pytest.mark.parametrize("n_kv_head", [1, 2])
def test_gqa_attention_path_gives_the_fast_paths_logits_and_shows_every_query_head(n_kv_head):
    model = _gqa_model(n_kv_head, qkv_bias=True)
    cfg = model.cfg
    assert model.blocks[0].attn.c_attn.weight.shape == (32 + 2 * n_kv_head * 8, 32)
    assert model.blocks[0].attn.c_attn.bias is not None  # qkv_bias with bias off
    assert model.blocks[0].attn.c_proj.bias is None
    assert model.blocks[0].mlp.c_fc.weight.shape == (40, 32)  # intermediate_size overrides mlp_ratio
    idx = torch.randint(0, 50, (2, 20))
    with torch.no_grad():
        fast, _, _ = model(idx)
        slow, _, maps = model(idx, return_attention=True)
        torch.testing.assert_close(slow, fast, atol=1e-5, rtol=1e-5)
        assert maps[0].shape == (2, 4, 20, 20)  # one map per query head, not per key/value head
        torch.testing.assert_close(maps[0].sum(-1), torch.ones(2, 4, 20), atol=1e-5, rtol=0)
        # Query heads that share a key/value head still differ (their queries differ).
        assert (maps[0][:, 0] - maps[0][:, 1]).abs().max() > 1e-3
        cache = KVCache.empty(cfg, 2, "cpu", torch.float32)
        assert cache.k.shape == (2, 2, n_kv_head, 24, 8)  # the cache keeps only the key/value heads
        for return_attention in (False, True):
            cache = KVCache.empty(cfg, 2, "cpu", torch.float32)
            model(idx[:, :12], cache=cache, return_attention=return_attention)
            tail, _, tail_maps = model(idx[:, 12:], cache=cache, return_attention=return_attention)
            torch.testing.assert_close(tail, fast[:, 12:], atol=1e-5, rtol=1e-5)
            if return_attention:
                torch.testing.assert_close(tail_maps[1], maps[1][:, :, 12:, :], atol=1e-6, rtol=1e-5)


def test_gqa_maps_match_the_textbook_with_shared_key_heads():
    """Query head h uses key head h // (n_head / n_kv_head): recomputed by hand from the weights."""
    model = _gqa_model(2)
    cfg, T = model.cfg, 10
    idx = torch.randint(0, 50, (1, T))
    attn = model.blocks[0].attn
    with torch.no_grad():
        h = model.blocks[0].ln_1(model.tok_emb(idx))[0].double()  # (T, C)
        w = attn.c_attn.weight.double()
        q = (h @ w[:32].T).view(T, 4, 8).transpose(0, 1)      # (nh, T, hs)
        k = (h @ w[32:48].T).view(T, 2, 8).transpose(0, 1)    # (nkv, T, hs)
        q, k = _rotate_textbook(q, cfg.rope_theta), _rotate_textbook(k, cfg.rope_theta)
        k = k[[0, 0, 1, 1]]  # heads 0,1 share key head 0; heads 2,3 share key head 1
        mask = torch.full((T, T), float("-inf"), dtype=torch.float64).triu(1)
        expected = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(8) + mask, dim=-1).numpy()
    got = attention_maps(model, idx[0].tolist())[0]
    np.testing.assert_allclose(got, expected, atol=2e-5, rtol=1e-4)


def test_new_model_fields_default_to_the_old_shapes_and_validate():
    from core.config import ConfigError, from_dict

    old = GPT(ModelConfig(n_layer=1, n_head=2, n_embd=16, block_size=8, vocab_size=20))
    assert old.blocks[0].attn.c_attn.weight.shape == (48, 16)  # 3 * n_embd as before: old checkpoints load
    assert old.blocks[0].ln_1.eps == 1e-5
    with pytest.raises(ConfigError) as err:
        from_dict({"model": {"n_head": 6, "n_kv_head": 4, "n_embd": 48}})
    assert err.value.fields == ["model.n_kv_head"] and "n_head=6" in str(err.value)
    assert from_dict({"model": {"n_head": 6, "n_kv_head": 2, "n_embd": 48}}).model.n_kv_head == 2
