"""Linear layers prepacked for oneDNN (core/cpu_linear.py): same logits, same greedy text, same attention
maps as the plain model, in bf16 and fp32; nothing changes where packing does not apply or is slower."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import core.precision
from core.config import ModelConfig
from core.cpu_linear import PackedLinear, can_pack, pack_linears
from core.generate import SampleParams, attention_maps, generate_steps
from core.model import GPT

NATIVE = core.precision.cpu_native_bf16() is not None


def _onednn_packs_bf16() -> bool:
    """oneDNN's bf16 weight reorder needs AVX512 (bw, vl, dq) or AVX-NE-CONVERT; an AVX2-only CPU refuses it."""
    try:
        PackedLinear(nn.Linear(8, 8).to(torch.bfloat16))
        return True
    except RuntimeError:
        return False


PACKS = _onednn_packs_bf16()


def _model(**over) -> GPT:
    torch.manual_seed(0)
    cfg = dict(n_layer=2, n_head=4, n_kv_head=2, n_embd=64, block_size=64, vocab_size=300, pos_encoding="rope",
               norm="rmsnorm", activation="swiglu", bias=False, qkv_bias=True, tie_embeddings=False)
    return GPT(ModelConfig(**{**cfg, **over})).eval()


@pytest.fixture
def native_bf16(monkeypatch):
    """Packing applies where the CPU has native bf16; elsewhere oneDNN emulates it, and the layer is
    still exercised (to bf16 rounding) by claiming the flag."""
    if not NATIVE:
        monkeypatch.setattr(core.precision, "cpu_native_bf16", lambda flags=None: "avx512_bf16")


def test_packed_linear_computes_the_linear_layer():
    torch.manual_seed(0)
    if not PACKS:  # this CPU: oneDNN says why, and pack_linears leaves such a model as it was (below)
        with pytest.raises(RuntimeError, match="bf16"):
            PackedLinear(nn.Linear(48, 80).to(torch.bfloat16))
        return
    for bias in (True, False):
        lin = nn.Linear(48, 80, bias=bias).to(torch.bfloat16)
        x = torch.randn(2, 5, 48, dtype=torch.bfloat16)
        with torch.no_grad():
            want, got = lin(x), PackedLinear(lin)(x)
        assert got.shape == want.shape == (2, 5, 80) and got.dtype == torch.bfloat16
        torch.testing.assert_close(got, want, rtol=2e-2, atol=2e-2)
        assert (want.float() - got.float()).abs().max() < 0.05 * want.float().abs().max()


@pytest.mark.parametrize("tied", [False, True])
def test_packed_model_gives_the_plain_models_logits_text_and_attention(native_bf16, tied):
    plain = _model(tie_embeddings=tied).to(torch.bfloat16)
    packed = _model(tie_embeddings=tied).to(torch.bfloat16)
    n_linear = sum(type(m) is nn.Linear for m in packed.modules())
    assert n_linear == 2 * 5 + 1  # c_attn, c_proj, c_fc, c_gate, mlp c_proj per layer; lm_head
    if not PACKS:  # oneDNN refuses bf16 packing on this CPU (AVX2 only): the model stays as it was
        assert can_pack(packed) and pack_linears(packed) == 0
        assert sum(type(m) is nn.Linear for m in packed.modules()) == n_linear
        with torch.inference_mode():
            assert torch.equal(plain(torch.tensor([[5, 6, 7]]))[0], packed(torch.tensor([[5, 6, 7]]))[0])
        return
    assert can_pack(packed) and pack_linears(packed) == n_linear
    assert not any(type(m) is nn.Linear for m in packed.modules())
    # each SwiGLU's gate and up projections become one packed matrix
    assert sum(isinstance(m, PackedLinear) for m in packed.modules()) == n_linear - 2
    assert all(b.mlp.gate_up.out_features == 2 * b.mlp.c_proj.in_features for b in packed.blocks)

    ids = list(range(5, 45))
    with torch.inference_mode():
        want, got = plain(torch.tensor([ids]))[0], packed(torch.tensor([ids]))[0]
    if NATIVE:  # the same oneDNN kernels, only without the per-call reorder: the same bits
        assert torch.equal(want, got)
    else:
        torch.testing.assert_close(got, want, rtol=3e-2, atol=3e-2)
    assert want.float().std() > 0.05

    p = SampleParams(max_new_tokens=20, temperature=0.0)
    mine = [s.token_id for s in generate_steps(packed, ids[:8], p)]
    if NATIVE:
        assert mine == [s.token_id for s in generate_steps(plain, ids[:8], p)]
    assert len(mine) == 20
    maps_plain, maps_packed = attention_maps(plain, ids[:12]), attention_maps(packed, ids[:12])
    assert maps_packed.shape == maps_plain.shape == (2, 4, 12, 12)  # every query head of the GQA model
    assert abs(maps_packed - maps_plain).max() < 2e-2


@pytest.mark.parametrize("faster", [True, False])
def test_fp32_is_packed_only_where_it_measures_faster(monkeypatch, faster):
    """fp32: each shape is packed only if oneDNN's product measures faster than MKL's on this machine (an
    AMD EPYC: yes, an Intel Xeon: no); packed, the model gives the plain model's logits, text and maps."""
    import core.cpu_linear

    plain, model = _model(), _model()
    assert can_pack(model)
    monkeypatch.setattr(core.cpu_linear, "FASTER", {})  # no verdict of an earlier test
    monkeypatch.setattr(core.cpu_linear, "_packed_is_faster", lambda plain, packed: faster)
    n = pack_linears(model)
    left = sum(type(m) is nn.Linear for m in model.modules())
    if not faster:
        assert n == 0 and left == 11
        return
    assert n == 11 and left == 0 and all(b.mlp.gate_up is not None for b in model.blocks)
    ids = list(range(5, 45))
    with torch.inference_mode():
        want, got = plain(torch.tensor([ids]))[0], model(torch.tensor([ids]))[0]
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert want.std() > 0.05
    p = SampleParams(max_new_tokens=20, temperature=0.0)
    assert [s.token_id for s in generate_steps(model, ids[:8], p)] == \
        [s.token_id for s in generate_steps(plain, ids[:8], p)]
    assert abs(attention_maps(model, ids[:12]) - attention_maps(plain, ids[:12])).max() < 1e-5


@pytest.mark.parametrize("faster", [True, False])
def test_each_shape_is_measured_once_per_process(monkeypatch, faster):
    """The measurement ran at every model load (0.6 s for a GPT-2-small shape): a second load of the same
    shapes takes the first one's verdict, and one that said slower does not even pack the weights."""
    import core.cpu_linear

    calls, built = [], []
    monkeypatch.setattr(core.cpu_linear, "FASTER", {})
    monkeypatch.setattr(core.cpu_linear, "_packed_is_faster", lambda plain, packed: calls.append(1) or faster)
    real = core.cpu_linear.PackedLinear
    monkeypatch.setattr(core.cpu_linear, "PackedLinear", lambda linear: built.append(1) or real(linear))
    first = pack_linears(_model())
    measured, packed_first = len(calls), len(built)
    assert measured >= 2 and packed_first >= measured  # several shapes, each measured on its packed form
    assert pack_linears(_model()) == first == (11 if faster else 0)
    assert len(calls) == measured  # not measured again
    assert len(built) == (2 * packed_first if faster else packed_first + 1)  # (+1: the agreement check)


class _Slow(nn.Module):
    def __init__(self, linear: nn.Linear, seconds: float):
        super().__init__()
        self.linear, self.seconds = linear, seconds
        self.in_features, self.weight = linear.in_features, linear.weight

    def forward(self, x):
        import time

        time.sleep(self.seconds)
        return self.linear(x)


def test_the_measurement_picks_the_faster_path():
    from core.cpu_linear import _packed_is_faster

    layers = [nn.Linear(64, 64) for _ in range(3)]
    assert _packed_is_faster([_Slow(m, 0.004) for m in layers], layers)
    assert not _packed_is_faster(layers, [_Slow(m, 0.004) for m in layers])
    # a close call keeps the plain path: packed must take under 0.8 of its time
    assert not _packed_is_faster([_Slow(m, 0.004) for m in layers], [_Slow(m, 0.0036) for m in layers])


def test_nothing_is_packed_in_bf16_without_native_bf16(monkeypatch):
    monkeypatch.setattr(core.precision, "cpu_native_bf16", lambda flags=None: None)
    bf16 = _model().to(torch.bfloat16)
    assert not can_pack(bf16)
    assert pack_linears(bf16) == 0 and sum(type(m) is nn.Linear for m in bf16.modules()) == 11


def test_a_disagreeing_kernel_leaves_the_model_as_it_was(native_bf16, monkeypatch):
    model = _model().to(torch.bfloat16)
    monkeypatch.setattr(PackedLinear, "forward", lambda self, x: torch.zeros(*x.shape[:-1], self.out_features,
                                                                          dtype=x.dtype))
    assert pack_linears(model) == 0
    assert sum(type(m) is nn.Linear for m in model.modules()) == 11
