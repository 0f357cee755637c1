"""The speed options: precision auto on CPU, QK-norm, Muon, the wsd schedule, target_val_loss, the scaled
warm-up default and the estimate's wording."""

from __future__ import annotations

import os

import pytest
import torch
from engine_helpers import write_config
from test_train import _StopAfter, assert_same_weights, run_dir_of, step_losses, train_inproc, weights

from core import precision as prec
from core import train as train_mod
from core.config import Config, ConfigError, ModelConfig, TrainConfig, estimate, loads
from core.model import GPT
from core.protocol import read_events


def events(config: str) -> list[dict]:
    return read_events(os.path.join(run_dir_of(config), "metrics.jsonl"))


# ----------------------------------------------------------------------------------------- precision
def test_cpu_precision_needs_native_bf16_and_a_wide_model(tmp_path):
    assert prec.cpu_precision(384, set())[0] == "fp32"
    assert prec.cpu_precision(128, {"avx512_bf16"})[0] == "fp32"
    choice, why = prec.cpu_precision(384, {"avx512_bf16", "avx2"})
    assert choice == "bf16" and "avx512_bf16" in why
    assert prec.cpu_precision(512, {"amx_bf16", "avx512_bf16"})[1].startswith("auto on CPU: amx_bf16")
    # AMX pays from 64 features (measured 1.2x at 4 x 64); AVX512-BF16 alone from 256
    assert prec.cpu_precision(64, {"amx_bf16", "avx512_bf16"})[0] == "bf16"
    assert prec.cpu_precision(32, {"amx_bf16", "avx512_bf16"})[0] == "fp32"
    assert prec.cpu_precision(128, {"avx512_bf16"})[0] == "fp32"
    fake = tmp_path / "cpuinfo"
    fake.write_text("processor : 0\nflags\t\t: fpu sse avx512f avx512_bf16\n")
    assert prec.cpu_native_bf16(prec.cpu_flags(str(fake))) == "avx512_bf16"
    assert prec.explain("bf16", "cpu", 32) == ("bf16", "train.precision: bf16 as set")


def test_start_event_and_estimate_say_which_precision_and_why(tmp_path, char_data):
    cfg = write_config(tmp_path, char_data, train={"max_steps": 2, "precision": "auto"})
    assert train_inproc(cfg) == 0
    start = events(cfg)[0]
    expected = prec.cpu_precision(32)  # the tiny model is 32 wide: fp32 on any CPU
    assert start["event"] == "start" and (start["precision"], start["precision_reason"]) == expected
    assert start["precision"] == "fp32"
    est = estimate(Config(train=TrainConfig(device="cpu"), model=ModelConfig(n_embd=384)))
    assert (est["precision"], est["precision_reason"]) == prec.cpu_precision(384)


def test_bf16_training_tracks_fp32(tmp_path, char_data):
    """bf16 autocast on the CPU learns like fp32: the mean loss of the last 10 of 40 steps within 3%."""
    common = {"max_steps": 40, "lr": 3e-3}
    runs = {}
    for p in ("fp32", "bf16"):
        cfg = write_config(tmp_path, char_data, train={**common, "precision": p}, run={"dir": f"runs/{p}"},
                           name=f"{p}.yaml")
        assert train_inproc(cfg) == 0
        assert events(cfg)[0]["precision"] == p
        losses = step_losses(run_dir_of(cfg))
        runs[p] = sum(losses[s] for s in range(31, 41)) / 10
    assert runs["fp32"] < 3.2  # it learned (the char vocabulary's uniform loss is ln 43 = 3.76)
    assert abs(runs["bf16"] - runs["fp32"]) / runs["fp32"] < 0.03, runs


def test_bf16_and_muon_resume_exactly(tmp_path, char_data, monkeypatch):
    train = {"max_steps": 12, "precision": "bf16", "optimizer": "muon", "eval_interval": 4}
    full = write_config(tmp_path, char_data, train=train, run={"dir": "runs/full"}, name="f.yaml")
    part = write_config(tmp_path, char_data, train=train, run={"dir": "runs/part"}, name="p.yaml")
    assert train_inproc(full) == 0
    _StopAfter.n = 5
    monkeypatch.setattr(train_mod, "StopFlag", _StopAfter)
    assert train_inproc(part) == 0
    monkeypatch.undo()
    assert events(part)[-1]["event"] == "stopped" and events(part)[-1]["step"] == 5
    assert train_inproc(part, "--resume") == 0
    a, b = step_losses(run_dir_of(full)), step_losses(run_dir_of(part))
    assert [a[s] for s in range(1, 13)] == [b[s] for s in range(1, 13)]
    assert_same_weights(weights(run_dir_of(full)), weights(run_dir_of(part)), atol=0.0)


# ----------------------------------------------------------------------------------------- muon
def test_muon_accumulation_equals_big_batch(tmp_path, char_data):
    """2 micro-batches of 8 == one batch of 16 under Muon. Muon orthogonalises in bf16 (torch.optim.Muon),
    so the float-rounding differences of accumulation show up at bf16 resolution: the two results must
    agree to within 5% of how far the step moved the weights."""
    common = {"max_steps": 1, "warmup_steps": 0, "grad_clip": 0.0, "optimizer": "muon", "schedule": "constant"}
    a = write_config(tmp_path, char_data, train={**common, "batch_size": 8, "grad_accum_steps": 2},
                     run={"dir": "runs/accum"}, name="a.yaml")
    b = write_config(tmp_path, char_data, train={**common, "batch_size": 16, "grad_accum_steps": 1},
                     run={"dir": "runs/big"}, name="b.yaml")
    c = write_config(tmp_path, char_data, train={**common, "batch_size": 16, "lr": 0.0, "min_lr": 0.0,
                                                 "muon_lr": 0.0}, run={"dir": "runs/still"}, name="c.yaml")
    assert train_inproc(a) == 0 and train_inproc(b) == 0 and train_inproc(c) == 0
    wa, wb, w0 = weights(run_dir_of(a)), weights(run_dir_of(b)), weights(run_dir_of(c))
    moved = max((wb[k] - w0[k]).abs().max().item() for k in wb if "c_attn" in k)
    assert moved > 1e-3
    worst = max((wa[k] - wb[k]).abs().max().item() for k in wb)
    assert worst <= 0.05 * moved, (worst, moved)


def test_muon_splits_matrices_from_the_rest():
    from core.optim import MuonAdamW

    model = GPT(ModelConfig(n_layer=2, n_head=2, n_embd=32, block_size=16, vocab_size=40))
    opt = model.make_optimizer(1e-3, 0.1, (0.9, 0.95), 1e-8, "cpu", "muon", 0.02)
    assert isinstance(opt, MuonAdamW)
    muon, adam = opt.optimizers
    muon_params = {id(p) for g in muon.param_groups for p in g["params"]}
    assert id(model.tok_emb.weight) not in muon_params and id(model.blocks[0].attn.c_attn.weight) in muon_params
    assert all(p.dim() == 2 for g in muon.param_groups for p in g["params"])
    assert muon.param_groups[0]["lr_scale"] == pytest.approx(20.0)
    total = sum(p.numel() for o in opt.optimizers for g in o.param_groups for p in g["params"])
    assert total == model.num_params()


@pytest.mark.parametrize("optimizer", ["adamw", "muon"])
@pytest.mark.parametrize("qk_norm_weight", [False, True])  # Qwen3's learned QK-norm weights: AdamW's, not Muon's
def test_the_estimate_sizes_the_optimizer_state_the_optimizer_keeps(optimizer, qk_norm_weight):
    """The Config tab's memory estimate counted AdamW's two buffers for every parameter of a Muon run too;
    Muon keeps one buffer per block matrix. The estimate equals the state the real optimizer holds after
    a step, and says which optimizer it counted."""
    from core.config import Config, DataConfig, RunConfig

    m = ModelConfig(n_layer=2, n_head=2, n_embd=32, block_size=16, vocab_size=40, pos_encoding="rope",
                    norm="rmsnorm", bias=False, qk_norm=True, qk_norm_weight=qk_norm_weight)
    cfg = Config(model=m, data=DataConfig(dir="x"), train=TrainConfig(optimizer=optimizer, device="cpu"),
                 run=RunConfig())
    est = estimate(cfg, vocab_size=40)
    model = GPT(m)
    opt = model.make_optimizer(1e-3, 0.1, (0.9, 0.95), 1e-8, "cpu", optimizer, 0.02)
    model(torch.randint(0, 40, (2, 16)), torch.randint(0, 40, (2, 16)))[1].backward()
    opt.step()
    held = sum(v.numel() * v.element_size() for o in getattr(opt, "optimizers", [opt]) for st in o.state.values()
               for v in st.values() if torch.is_tensor(v) and v.dim() > 0)
    assert est["memory"]["optimizer"] == held
    assert est["optimizer"].startswith("Muon" if optimizer == "muon" else "AdamW")


# ----------------------------------------------------------------------------------------- qk-norm
def test_qk_norm_inspection_path_gives_the_same_logits():
    torch.manual_seed(0)
    cfg = ModelConfig(n_layer=2, n_head=4, n_embd=32, block_size=16, vocab_size=40, qk_norm=True,
                      pos_encoding="rope")
    model = GPT(cfg).eval()
    idx = torch.randint(0, 40, (2, 16))
    fast, _, _ = model(idx)
    slow, _, maps = model(idx, return_attention=True)
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)
    assert len(maps) == 2 and maps[0].shape == (2, 4, 16, 16)
    plain = GPT(ModelConfig(**{**cfg.__dict__, "qk_norm": False})).eval()
    plain.load_state_dict(model.state_dict())  # same weights: QK-norm adds no parameters
    assert (plain(idx)[0] - fast).abs().max().item() > 1e-4



@pytest.mark.parametrize("n_kv_head,past", [(None, 0), (2, 0), (2, 5)])
def test_bf16_attention_on_cpu_runs_in_fp32_and_matches_it(n_kv_head, past):
    """Under bf16 autocast the CPU attention is computed in fp32 (core.model._sdpa_cpu_fp32): its output
    and gradients equal fp32 SDPA on the same bf16 inputs, grouped-query heads and a cached prefix included."""
    import torch.nn.functional as F

    from core.model import _causal_mask, _sdpa_cpu_fp32

    torch.manual_seed(0)
    kv = n_kv_head or 4
    q = torch.randn(2, 4, 7, 8, dtype=torch.bfloat16, requires_grad=True)
    k, v = (torch.randn(2, kv, past + 7, 8, dtype=torch.bfloat16, requires_grad=True) for _ in range(2))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = _sdpa_cpu_fp32(q, k, v, past, 0.0, kv != 4)
    assert y.dtype == torch.bfloat16
    mask = _causal_mask(7, past, "cpu") if past else None
    ref = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=mask, is_causal=not past,
                                         enable_gqa=kv != 4)
    torch.testing.assert_close(y, ref.to(torch.bfloat16))
    g = torch.randn_like(ref)
    got = torch.autograd.grad(y.float(), (q, k, v), g)
    want = torch.autograd.grad(ref, (q, k, v), g)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, atol=2e-2, rtol=2e-2)


def test_bf16_model_matches_fp32_model_on_cpu():
    """The whole model under bf16 autocast (the path `precision: auto` takes on an AMX CPU) stays within bf16
    rounding of fp32: logits and loss."""
    torch.manual_seed(0)
    model = GPT(ModelConfig(n_layer=2, n_head=4, n_embd=64, block_size=32, vocab_size=50)).eval()
    idx = torch.randint(0, 50, (3, 32))
    ref, ref_loss = model(idx)[0], model(idx, idx)[1]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got, loss = model(idx)[0], model(idx, idx)[1]
    assert (got.float() - ref).abs().max().item() < 0.05
    assert abs(loss.item() - ref_loss.item()) < 0.01

# ----------------------------------------------------------------------------------------- schedule, stop
def test_wsd_schedule_is_stable_then_decays():
    t = TrainConfig(lr=1.0, min_lr=0.1, warmup_steps=10, max_steps=100, schedule="wsd", decay_fraction=0.2)
    assert train_mod.lr_at(4, t) == pytest.approx(0.5)
    assert train_mod.lr_at(10, t) == train_mod.lr_at(79, t) == 1.0
    assert train_mod.lr_at(80, t) < 1.0 and train_mod.lr_at(99, t) == pytest.approx(0.1)


def test_target_val_loss_ends_the_run_with_a_done_event(tmp_path, char_data):
    cfg = write_config(tmp_path, char_data, train={"max_steps": 50, "eval_interval": 5, "target_val_loss": 10.0})
    assert train_inproc(cfg) == 0
    evs = events(cfg)
    done = evs[-1]
    assert done["event"] == "done" and done["step"] == 5 and "target_val_loss" in done["reason"]
    assert [e["step"] for e in evs if e["event"] == "eval"] == [5]


# ----------------------------------------------------------------------------------------- config
def test_warmup_default_scales_with_a_short_run():
    cfg = loads("train: {max_steps: 50}")
    assert cfg.train.warmup_steps is None and train_mod.lr_at(0, cfg.train) == pytest.approx(1e-3 / 5)
    assert train_mod.lr_at(0, TrainConfig()) == pytest.approx(1e-3 / 100)
    with pytest.raises(ConfigError, match="train.warmup_steps: 60 is more than train.max_steps=50"):
        loads("train: {max_steps: 50, warmup_steps: 60}")


@pytest.mark.parametrize("text, field", [("train: {optimizer: sgd}", "train.optimizer"),
                                         ("train: {schedule: wsd, decay_fraction: 1.5}", "train.decay_fraction"),
                                         ("train: {target_val_loss: -1}", "train.target_val_loss"),
                                         ("model: {qk_norm: 3}", "model.qk_norm"),
                                         ("train: {optimizer: muon, precision: fp16}", "train.optimizer")])
def test_new_options_are_validated_by_field(text, field):
    with pytest.raises(ConfigError) as err:
        loads(text)
    assert field in err.value.fields and field in str(err.value)


def test_estimate_command_speaks_human_units_and_names_defaults(tmp_path):
    from engine_helpers import engine

    (tmp_path / "run.yaml").write_text("data: {dir: nowhere}\ntrain: {max_steps: 50, device: cpu}\n")
    out = engine("estimate", "--config", str(tmp_path / "run.yaml"))
    assert out.returncode == 0, out.stderr
    assert "MiB" in out.stdout and "no model section" in out.stdout and "warmup_steps not set: 5" in out.stdout
    assert f"precision         {prec.cpu_precision(384)[0]}" in out.stdout
    assert "exports to        Hugging Face, GGUF, ONNX" in out.stdout  # the defaults are GPT-2's shape
    out = engine("estimate", "--config", str(tmp_path / "run.yaml"), "--set", "model.pos_encoding=sinusoidal")
    assert "exports to        ONNX (model.pos_encoding: sinusoidal positions" in out.stdout
