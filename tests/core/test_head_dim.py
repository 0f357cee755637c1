"""model.head_dim (heads wider or narrower than n_embd / n_head, as Qwen3's) and model.qk_norm_weight (QK-norm
with learned weights, as Qwen3's): the analytic sizes count the real model, the KV cache, the inspection path
and a training step agree with the plain forward, and the config names what does not fit."""

from __future__ import annotations

import pytest
import torch

from core.config import ConfigError, ModelConfig, from_dict, param_count
from core.generate import SampleParams, generate_steps
from core.model import GPT, KVCache

SHAPES = [dict(head_dim=24),                                     # wider than 32 / 4
          dict(head_dim=4, n_kv_head=2),                         # narrower, grouped-query
          dict(head_dim=16, qk_norm=True, qk_norm_weight=True, n_kv_head=1, tie_embeddings=False),
          dict(qk_norm=True, qk_norm_weight=True)]


def _model(**over) -> GPT:
    torch.manual_seed(0)
    cfg = ModelConfig(n_layer=2, n_head=4, n_embd=32, block_size=24, vocab_size=50, pos_encoding="rope",
                      norm="rmsnorm", activation="swiglu", **over)
    model = GPT(cfg)
    with torch.no_grad():  # norm weights away from one, so that a dropped weight would show
        for name, p in model.named_parameters():
            if name.endswith(("q_norm.weight", "k_norm.weight")):
                p.copy_(1.0 + 0.5 * torch.randn_like(p))
    return model.eval()


@pytest.mark.parametrize("over", SHAPES)
def test_the_estimate_counts_the_parameters_of_the_model_built(over):
    model = _model(**over)
    assert param_count(model.cfg, 50) == model.num_params()
    hs = over.get("head_dim", 8)
    assert model.blocks[0].attn.c_attn.weight.shape == (4 * hs + 2 * (over.get("n_kv_head") or 4) * hs, 32)
    assert model.blocks[0].attn.c_proj.weight.shape == (32, 4 * hs)


@pytest.mark.parametrize("over", SHAPES)
def test_cache_and_inspection_paths_give_the_plain_forwards_logits(over):
    model = _model(**over)
    idx = torch.randint(0, 50, (2, 20))
    with torch.no_grad():
        full, _, _ = model(idx)
        slow, _, maps = model(idx, return_attention=True)
        cache = KVCache.empty(model.cfg, 2, "cpu", torch.float32)
        first, _, _ = model(idx[:, :12], cache=cache)
        rest = [model(idx[:, t:t + 1], cache=cache)[0] for t in range(12, 20)]
    torch.testing.assert_close(slow, full, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(torch.cat([first, *rest], dim=1), full, atol=1e-5, rtol=1e-5)
    assert maps[0].shape == (2, 4, 20, 20) and cache.k.shape[-1] == (over.get("head_dim") or 8)
    steps = list(generate_steps(model, idx[0, :4].tolist(), SampleParams(max_new_tokens=10, temperature=0)))
    assert len(steps) == 10


def test_qk_norm_weights_change_the_logits_and_learn():
    model = _model(qk_norm=True, qk_norm_weight=True)
    plain = GPT(ModelConfig(**{**model.cfg.__dict__, "qk_norm_weight": False})).eval()
    missing = plain.load_state_dict(model.state_dict(), strict=False)
    assert sorted(missing.unexpected_keys) == sorted(f"blocks.{i}.attn.{n}.weight" for i in (0, 1)
                                                     for n in ("q_norm", "k_norm"))
    idx = torch.randint(0, 50, (2, 20))
    with torch.no_grad():
        assert (plain(idx)[0] - model(idx)[0]).abs().max() > 1e-3  # the weights are used
        for block in model.blocks:
            block.attn.q_norm.weight.fill_(1.0)
            block.attn.k_norm.weight.fill_(1.0)
        torch.testing.assert_close(plain(idx)[0], model(idx)[0])  # weights of one: the parameter-free norm
    model.train()
    _, loss, _ = model(idx, targets=idx)
    loss.backward()
    assert model.blocks[0].attn.q_norm.weight.grad.abs().sum() > 0
    assert model.blocks[0].attn.k_norm.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("model,field,words", [
    ({"head_dim": 7, "pos_encoding": "rope"}, "model.head_dim", "even head size, got 7"),
    ({"qk_norm_weight": True}, "model.qk_norm_weight", "needs model.qk_norm"),
    ({"n_embd": 30, "n_head": 4}, "model.n_embd", "or set model.head_dim")])
def test_the_config_names_the_field_that_does_not_fit(model, field, words):
    with pytest.raises(ConfigError) as info:
        from_dict({"model": model})
    assert any(p.path == field and words in p.message for p in info.value.problems), info.value.problems


def test_heads_that_do_not_divide_the_width_are_fine_with_head_dim():
    cfg = from_dict({"model": {"n_embd": 30, "n_head": 4, "head_dim": 8, "pos_encoding": "rope",
                               "vocab_size": 50, "block_size": 16}}).model
    model = GPT(cfg)
    assert param_count(cfg, 50) == model.num_params()
    assert model(torch.randint(0, 50, (1, 16)))[0].shape == (1, 16, 50)


def test_a_checkpoints_head_size_and_qk_norm_weights_are_part_of_its_shape():
    """A fork or a resume that changed head_dim or qk_norm_weight would fail to load the weights (other shapes,
    missing tensors) after launching: the shape check names the field first, as for n_layer."""
    from core.shape import shape_problems

    old = ModelConfig(n_head=4, n_embd=32, pos_encoding="rope", qk_norm=True).__dict__
    for change, field in ((dict(head_dim=16), "model.head_dim"), (dict(qk_norm_weight=True), "model.qk_norm_weight")):
        new = ModelConfig(n_head=4, n_embd=32, pos_encoding="rope", qk_norm=True, **change)
        assert [p.path for p in shape_problems(new, old, "step-000100")] == [field]
    assert shape_problems(ModelConfig(n_head=4, n_embd=32, pos_encoding="rope", qk_norm=True), old, "x") == []


def test_the_speedrun_presets_model_goes_to_hugging_face_and_gguf():
    """The speedrun preset's model (RoPE with GELU) could be exported to ONNX only; with SwiGLU it is a Qwen3."""
    import os

    from core.config import loads
    from core.export_families import export_formats

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "resources", "presets", "speedrun-shakespeare-char.yaml"), encoding="utf-8") as fh:
        cfg = loads(fh.read(), base_dir=root)
    assert cfg.model.qk_norm and export_formats(cfg.model) == ("Hugging Face, GGUF, ONNX", "")
