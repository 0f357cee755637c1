"""Bad input gets a clear message and loses nothing; stops and kills leave usable checkpoints."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace

import pytest
import torch
from engine_helpers import ROOT, engine, events_of, write_config

from core import checkpoint as ckpt
from core import train as train_mod
from core import trainer_setup
from core.cli import main
from core.config import ConfigError, ModelConfig, from_dict, load_config
from core.model import GPT
from core.protocol import read_events


# ----------------------------------------------------------------------------------------- config
@pytest.mark.parametrize("raw, field, text", [
    ({"train": {"grad_accum_steps": 0}}, "train.grad_accum_steps", "train.grad_accum_steps must be >= 1, got 0"),
    ({"model": {"n_embd": 100, "n_head": 3}}, "model.n_embd",
     "model.n_embd: 100 is not divisible by model.n_head=3"),
    ({"model": {"n_layers": 4}}, "model.n_layers", "model.n_layers: unknown key (did you mean model.n_layer?)"),
    ({"optim": {}}, "optim", "optim: unknown section"),
    ({"train": {"lr": "fast"}}, "train.lr", "train.lr: expected float, got 'fast'"),
    ({"train": {"schedule": "cosin"}}, "train.schedule", "must be one of cosine, linear, constant, wsd; got 'cosin'"),
    ({"train": {"min_lr": 1.0, "lr": 0.1}}, "train.min_lr", "train.min_lr: 1.0 is larger than train.lr=0.1"),
    ({"model": {"pos_encoding": "rope", "n_embd": 30, "n_head": 10}}, "model.n_head", "rope needs an even head"),
    ({"train": {"betas": [0.9]}}, "train.betas", "expected two numbers"),
    ({"model": {"bias": "yes"}}, "model.bias", "expected bool"),
])
def test_config_errors_name_the_field(raw, field, text):
    with pytest.raises(ConfigError) as info:
        from_dict(raw)
    assert field in info.value.fields
    assert text in str(info.value)


def test_config_lists_every_problem_at_once():
    with pytest.raises(ConfigError) as info:
        from_dict({"model": {"n_layer": 0, "foo": 1}, "train": {"eval_steps": 0}})
    assert set(info.value.fields) == {"model.n_layer", "model.foo", "train.eval_steps"}


def test_relative_paths_resolve_against_the_config_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "run.yaml"
    path.write_text("data: {dir: ../data/x}\nrun: {dir: runs/a}\n")
    cfg = load_config(str(path), ["train.lr=0.01"])
    assert cfg.data.dir == str(tmp_path / "data" / "x") and cfg.run.dir == str(tmp_path / "sub" / "runs" / "a")
    assert cfg.train.lr == 0.01


def test_estimated_parameter_count_is_exact():
    from core.config import Config, estimate

    for kw in ({}, {"activation": "swiglu", "norm": "rmsnorm", "pos_encoding": "rope", "bias": True},
               {"tie_embeddings": False, "pos_encoding": "sinusoidal", "activation": "relu"}):
        m = ModelConfig(n_layer=3, n_head=4, n_embd=64, block_size=40, vocab_size=101, **kw)
        assert estimate(Config(model=m))["params"] == GPT(m).num_params()


@pytest.mark.parametrize("kw", [{"n_kv_head": 2, "qkv_bias": True, "intermediate_size": 80,
                                 "activation": "swiglu", "norm": "rmsnorm", "pos_encoding": "rope"},
                                {"n_kv_head": 1, "bias": True, "tie_embeddings": False}])
def test_estimates_count_imported_shapes_and_lora_adapters_exactly(kw):
    """GQA, q/k/v bias and an explicit feed-forward width (imported models) are counted exactly; with
    train.finetune: lora the trainable count is the adapters' (as core.lora builds them) and gradients
    and optimizer state are sized by it."""
    from core.config import Config, TrainConfig, estimate
    from core.lora import apply_lora, frozen_to

    m = ModelConfig(n_layer=3, n_head=4, n_embd=64, block_size=40, vocab_size=101, **kw)
    model = GPT(m)
    full = estimate(Config(model=m))
    assert full["params"] == model.num_params() == full["trainable_params"]
    for targets in (["attn_qkv", "attn_out"], ["attn_qkv", "attn_out", "mlp_in", "mlp_out"]):
        t = TrainConfig(finetune="lora", lora_rank=4, lora_targets=targets, precision="fp32")
        est = estimate(Config(model=m, train=t))
        adapted = apply_lora(GPT(m), 4, 8.0, 0.0, targets)
        assert est["trainable_params"] == sum(p.numel() for p in adapted.parameters() if p.requires_grad)
        assert est["memory"]["optimizer"] == 8 * est["trainable_params"] < full["memory"]["optimizer"]
        assert est["memory"]["weights"] == sum(p.numel() * p.element_size() for p in adapted.parameters())
        # bf16: the frozen projections are kept in bf16 (core.lora.frozen_to), the rest in fp32
        est16 = estimate(Config(model=m, train=replace(t, precision="bf16")))
        frozen_to(adapted, torch.bfloat16)
        assert est16["memory"]["weights"] == sum(p.numel() * p.element_size() for p in adapted.parameters())


# ----------------------------------------------------------------------------------------- CLI input
def _expect_usage_error(out: subprocess.CompletedProcess, *fragments: str) -> dict:
    assert out.returncode == 2, (out.returncode, out.stderr[-2000:])
    assert "Traceback" not in out.stderr
    for frag in fragments:
        assert frag in out.stderr, (frag, out.stderr)
    evs = events_of(out.stdout)
    if evs:
        assert evs[-1]["event"] == "error" and evs[-1]["kind"] == "usage"
    return evs[-1] if evs else {}


def test_bad_config_value_exits_2_naming_the_field(tmp_path, char_data):
    cfg = write_config(tmp_path, char_data, train={"grad_accum_steps": 0})
    ev = _expect_usage_error(engine("train", "--config", cfg, "--events", cwd=tmp_path),
                             "train.grad_accum_steps must be >= 1, got 0", "run.yaml")
    assert ev["field"] == "train.grad_accum_steps"
    assert not (tmp_path / "runs").exists(), "nothing may be written for a rejected config"


def test_missing_config_file_and_bad_override(tmp_path, char_data):
    _expect_usage_error(engine("train", "--config", str(tmp_path / "nope.yaml")), "config file not found",
                        "nope.yaml")
    cfg = write_config(tmp_path, char_data)
    _expect_usage_error(engine("train", "--config", cfg, "--set", "model.n_head=5"), "model.n_embd: 32 is not "
                        "divisible by model.n_head=5")
    _expect_usage_error(engine("train", "--config", cfg, "--set", "lr"), "expected section.key=value")


def test_missing_data_dir_is_named(tmp_path):
    cfg = write_config(tmp_path, str(tmp_path / "no-data"))
    ev = _expect_usage_error(engine("train", "--config", cfg, "--events"), "data.dir", "no-data")
    assert ev["field"] == "data.dir"
    assert not (tmp_path / "runs").exists(), "a rejected run leaves nothing behind"


def test_existing_run_is_never_overwritten(tmp_path, char_data):
    cfg = write_config(tmp_path, char_data, train={"max_steps": 3})
    assert engine("train", "--config", cfg).returncode == 0
    metrics = tmp_path / "runs" / "r" / "metrics.jsonl"
    before = metrics.read_bytes()
    _expect_usage_error(engine("train", "--config", cfg), "already holds a run", "--resume")
    assert metrics.read_bytes() == before
    _expect_usage_error(engine("train", "--config", cfg, "--resume"), "train.max_steps: 3 is not beyond")
    assert metrics.read_bytes() == before


def test_resume_without_checkpoint_and_bad_fork(tmp_path, char_data):
    cfg = write_config(tmp_path, char_data)
    _expect_usage_error(engine("train", "--config", cfg, "--resume"), "nothing to resume")
    parent = write_config(tmp_path, char_data, train={"max_steps": 2}, run={"dir": "runs/p"}, name="p.yaml")
    assert engine("train", "--config", parent).returncode == 0
    child = write_config(tmp_path, char_data, model={"n_layer": 3}, run={"dir": "runs/c"}, name="c.yaml",
                         train={"init_from": "runs/p/checkpoints/step-000002"})
    ev = _expect_usage_error(engine("train", "--config", child, "--events"), "model.n_layer: 3 differs from 2")
    assert ev["field"] == "model.n_layer"


def test_vocab_size_smaller_than_data_is_rejected(tmp_path, char_data):
    cfg = write_config(tmp_path, char_data, model={"vocab_size": 10})
    _expect_usage_error(engine("train", "--config", cfg), "model.vocab_size: 10 is smaller")


def test_generate_bad_checkpoint_paths(tmp_path):
    _expect_usage_error(engine("generate", "--checkpoint", str(tmp_path / "x")), "checkpoint folder not found")
    (tmp_path / "empty").mkdir()
    _expect_usage_error(engine("generate", "--checkpoint", str(tmp_path / "empty")), "name must be step-NNNNNN")
    (tmp_path / "step-000001").mkdir()  # named like one, but never completed
    _expect_usage_error(engine("generate", "--checkpoint", str(tmp_path / "step-000001")), "no meta.json")
    _expect_usage_error(engine("generate", "--run", str(tmp_path / "empty")), "no checkpoint yet")


# ----------------------------------------------------------------------------------------- stop / kill
def test_sigterm_finishes_the_step_writes_a_checkpoint_and_exits_0(tmp_path, char_data):
    cfg = write_config(tmp_path, char_data, train={"max_steps": 100000, "warmup_steps": 10})
    proc = subprocess.Popen([sys.executable, "-m", "core", "train", "--config", cfg, "--events"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1"})
    seen = []
    for line in proc.stdout:
        seen.append(json.loads(line))
        if seen[-1]["event"] == "step" and seen[-1]["step"] >= 5:
            break
    proc.send_signal(signal.SIGTERM)
    rest, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    evs = seen + events_of(rest)
    assert evs[-1]["event"] == "stopped" and "SIGTERM" in evs[-1]["reason"]
    assert evs[-2]["event"] == "checkpoint" and evs[-2]["step"] == evs[-1]["step"]
    assert os.path.isfile(os.path.join(evs[-1]["checkpoint"], "model.safetensors"))
    info = json.loads((tmp_path / "runs" / "r" / "run.json").read_text())
    assert info["status"] == "stopped"


def test_stop_line_on_stdin_stops_gracefully(tmp_path, char_data):
    cfg = write_config(tmp_path, char_data, train={"max_steps": 100000})
    proc = subprocess.Popen([sys.executable, "-m", "core", "train", "--config", cfg, "--events"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1"})
    for line in proc.stdout:
        if json.loads(line)["event"] == "step":
            break
    proc.stdin.write("stop\n")
    proc.stdin.flush()
    rest, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0
    assert events_of(rest)[-1]["event"] == "stopped"


KILL_WRITER = r"""
import sys, torch
from core.checkpoint import save_checkpoint
from core.config import ModelConfig
from core.model import GPT
model = GPT(ModelConfig(n_layer=4, n_head=4, n_embd=256, block_size=64, vocab_size=512))
opt = model.make_optimizer(1e-3, 0.1, (0.9, 0.95), 1e-8, "cpu")
model(torch.zeros(1, 8, dtype=torch.long), torch.zeros(1, 8, dtype=torch.long))[1].backward(); opt.step()
step = 0
while True:
    step += 1
    save_checkpoint(sys.argv[1], step, model, {"optimizer": opt.state_dict(), "step": step}, {"note": "x"})
    print(step, flush=True)
"""


def test_kill_9_during_checkpoint_writes_leaves_loadable_checkpoints(tmp_path):
    run_dir = str(tmp_path / "run")
    env = {**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1"}
    for delay in (0.05, 0.13, 0.21, 0.34):
        proc = subprocess.Popen([sys.executable, "-c", KILL_WRITER, run_dir], stdout=subprocess.PIPE, env=env)
        proc.stdout.readline()  # at least one checkpoint written in this round
        time.sleep(delay)  # then kill at an arbitrary point, most likely mid-write
        proc.kill()
        proc.wait()
        latest = ckpt.latest_checkpoint(run_dir)
        assert latest is not None
        model = GPT(ModelConfig(n_layer=4, n_head=4, n_embd=256, block_size=64, vocab_size=512))
        ckpt.load_weights(model, latest)
        state = ckpt.load_state(latest)
        assert state["step"] == ckpt.read_meta(latest)["step"]
        for _, path in ckpt.list_checkpoints(run_dir):  # every complete-looking checkpoint is complete
            assert {"model.safetensors", "state.pt", "meta.json"} <= set(os.listdir(path))
        shutil.rmtree(os.path.join(run_dir, "checkpoints"))


def test_nonfinite_loss_stops_with_error_and_keeps_last_good_checkpoint(tmp_path, char_data, monkeypatch):
    cfg = write_config(tmp_path, char_data, train={"max_steps": 20, "checkpoint_interval": 4})
    real_forward = GPT.forward
    calls = {"n": 0}

    def poisoned(self, idx, targets=None, **kw):
        logits, loss, maps = real_forward(self, idx, targets, **kw)
        if targets is not None and self.training:
            calls["n"] += 1
            if calls["n"] >= 7:
                loss = loss * float("nan")
        return logits, loss, maps

    monkeypatch.setattr(GPT, "forward", poisoned)
    assert main(["train", "--config", cfg]) == 1
    evs = read_events(str(tmp_path / "runs" / "r" / "metrics.jsonl"))
    assert evs[-1]["event"] == "error" and evs[-1]["kind"] == "nonfinite" and evs[-1]["step"] == 7
    assert "step-000004" in evs[-1]["message"]
    assert [s for s, _ in ckpt.list_checkpoints(str(tmp_path / "runs" / "r"))] == [4]


def test_lr_schedule_shapes():
    from core.config import TrainConfig

    t = TrainConfig(lr=1.0, min_lr=0.1, warmup_steps=10, max_steps=110, schedule="cosine")
    lrs = [train_mod.lr_at(s, t) for s in range(110)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert lrs[10] == pytest.approx(1.0) and lrs[60] == pytest.approx(0.55)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:], strict=False)) and lrs[-1] >= 0.1
    lin = TrainConfig(lr=1.0, min_lr=0.0, warmup_steps=0, max_steps=100, schedule="linear")
    assert train_mod.lr_at(50, lin) == pytest.approx(0.5)
    assert train_mod.lr_at(70, TrainConfig(lr=0.3, min_lr=0.0, warmup_steps=0, schedule="constant")) == 0.3


def test_checkpoint_state_loads_with_weights_only(tmp_path, char_data):
    cfg = write_config(tmp_path, char_data, train={"max_steps": 2})
    assert main(["train", "--config", cfg]) == 0
    path = ckpt.latest_checkpoint(str(tmp_path / "runs" / "r"))
    state = torch.load(os.path.join(path, "state.pt"), weights_only=True)
    assert {"optimizer", "data_rng", "torch_rng", "progress"} <= set(state)
    meta = ckpt.read_meta(path)
    assert meta["step"] == 2 and meta["config"]["model"]["vocab_size"] > 0
    assert os.path.isfile(os.path.join(path, "tokenizer.json"))
    assert trainer_setup.model_from_meta(meta).n_layer == 2


def test_exponent_without_dot_is_read_as_a_number_and_yaml_round_trips():
    from core.config import Config, loads
    from core.config_text import dump_new

    assert loads("train: {lr: 3e-4, min_lr: 1E-5}").train.lr == 3e-4
    with pytest.raises(ConfigError):
        loads("train: {lr: 3e-4x}")
    cfg = Config()
    assert loads(dump_new(cfg)) == cfg
    assert "betas: [0.9, 0.95]" in dump_new(cfg)


def test_saved_weights_are_as_readable_as_the_files_beside_them(tmp_path):
    """safetensors >= 0.8 writes 0600 whatever the umask (safetensors#782): a checkpoint's model.safetensors
    and LoRA adapters were unreadable to another user or a container while meta.json beside them was not."""
    from torch import nn

    from core.lora import ADAPTERS, save_adapters

    model = GPT(ModelConfig(n_layer=1, n_head=2, n_embd=16, block_size=8, vocab_size=20))
    path = ckpt.save_checkpoint(str(tmp_path / "run"), 1, model, None, {})
    modes = {name: os.stat(os.path.join(path, name)).st_mode & 0o777 for name in os.listdir(path)}
    assert len(set(modes.values())) == 1 and modes["model.safetensors"] & 0o044 == 0o044, modes
    holder = nn.Module()
    holder.x = nn.Module()
    holder.x.lora_A = nn.Parameter(torch.zeros(2, 2))
    save_adapters(holder, str(tmp_path))
    assert os.stat(tmp_path / ADAPTERS).st_mode & 0o777 == modes["meta.json"]
