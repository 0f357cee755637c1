"""Trainer options: compile, bf16, forks, early stopping, architecture variants, checkpoint pruning."""

from __future__ import annotations

import json
import os

import pytest
from engine_helpers import engine, write_config

from core import checkpoint as ckpt
from core.cli import main
from core.protocol import read_events


def events(tmp_path, run="r") -> list[dict]:
    return read_events(os.path.join(tmp_path, "runs", run, "metrics.jsonl"))


def losses(evs: list[dict]) -> list[float]:
    return [e["loss"] for e in evs if e["event"] == "step"]


def test_compiled_model_trains_like_eager(tmp_path, char_data):
    eager = write_config(tmp_path, char_data, train={"max_steps": 3}, run={"dir": "runs/eager"}, name="e.yaml")
    comp = write_config(tmp_path, char_data, train={"max_steps": 3, "compile": True}, run={"dir": "runs/comp"},
                        name="c.yaml")
    assert main(["train", "--config", eager]) == 0
    assert main(["train", "--config", comp]) == 0
    start = events(tmp_path, "comp")[0]
    assert start["compile"] is True
    assert losses(events(tmp_path, "comp")) == pytest.approx(losses(events(tmp_path, "eager")), rel=1e-4)


def test_bf16_autocast_on_cpu_tracks_fp32(tmp_path, char_data):
    a = write_config(tmp_path, char_data, train={"max_steps": 10}, run={"dir": "runs/fp32"}, name="a.yaml")
    b = write_config(tmp_path, char_data, train={"max_steps": 10, "precision": "bf16"}, run={"dir": "runs/bf16"},
                     name="b.yaml")
    assert main(["train", "--config", a]) == 0 and main(["train", "--config", b]) == 0
    assert events(tmp_path, "bf16")[0]["precision"] == "bf16"
    assert losses(events(tmp_path, "bf16")) == pytest.approx(losses(events(tmp_path, "fp32")), rel=2e-2)


def test_fork_continues_from_parent_checkpoint_with_new_settings(tmp_path, char_data):
    parent = write_config(tmp_path, char_data, train={"max_steps": 8, "checkpoint_interval": 4},
                          run={"dir": "runs/parent"}, name="p.yaml")
    assert main(["train", "--config", parent]) == 0
    fork_from = os.path.join(tmp_path, "runs", "parent", "checkpoints", "step-000004")
    child = write_config(tmp_path, char_data, train={"max_steps": 8, "lr": 1e-4, "min_lr": 1e-5,
                                                      "init_from": fork_from},
                         run={"dir": "runs/child"}, name="c.yaml")
    assert main(["train", "--config", child]) == 0
    evs = events(tmp_path, "child")
    assert evs[0]["parent"] == fork_from and evs[0]["start_step"] == 4 and evs[0]["resumed"] is False
    steps = [e for e in evs if e["event"] == "step"]
    assert [e["step"] for e in steps] == [5, 6, 7, 8]
    assert max(e["lr"] for e in steps) <= 1e-4
    # the child's first step starts from the parent's weights: its loss is near the parent's, not ~ln(V)
    parent_losses = {e["step"]: e["loss"] for e in events(tmp_path, "parent") if e["event"] == "step"}
    assert abs(steps[0]["loss"] - parent_losses[5]) < 0.1
    info = json.loads(open(os.path.join(tmp_path, "runs", "child", "run.json")).read())
    assert info["parent"] == fork_from


def test_early_stopping_stops_when_val_loss_stalls(tmp_path, char_data):
    cfg = write_config(tmp_path, char_data, train={"max_steps": 200, "lr": 0.0, "min_lr": 0.0, "eval_interval": 2,
                                                    "early_stopping_patience": 2})
    assert main(["train", "--config", cfg]) == 0
    evs = events(tmp_path)
    assert evs[-1]["event"] == "stopped" and "early stopping" in evs[-1]["reason"]
    assert evs[-1]["step"] == 6  # evals at 2 (best), 4 and 6 (no improvement twice)
    assert json.loads(open(os.path.join(tmp_path, "runs", "r", "run.json")).read())["status"] == "done"


@pytest.mark.parametrize("variant", [
    {"pos_encoding": "rope", "norm": "rmsnorm", "activation": "swiglu"},
    {"pos_encoding": "sinusoidal", "activation": "relu", "bias": True, "tie_embeddings": False, "dropout": 0.1},
])
def test_architecture_variants_train_and_generate(tmp_path, char_data, variant):
    cfg = write_config(tmp_path, char_data, model=variant, train={"max_steps": 30, "lr": 1e-2})
    assert main(["train", "--config", cfg]) == 0
    ls = losses(events(tmp_path))
    assert sum(ls[-5:]) / 5 < sum(ls[:5]) / 5 - 0.2
    a = engine("generate", "--run", str(tmp_path / "runs" / "r"), "--prompt", "add: 1", "--temperature", "0",
               "--max-new-tokens", "20")
    b = engine("generate", "--run", str(tmp_path / "runs" / "r"), "--prompt", "add: 1", "--temperature", "0",
               "--max-new-tokens", "20", "--no-cache")
    assert a.returncode == 0 and a.stdout == b.stdout and len(a.stdout) >= 20


def test_keep_checkpoints_prunes_old_ones(tmp_path, char_data):
    cfg = write_config(tmp_path, char_data, train={"max_steps": 10, "checkpoint_interval": 2,
                                                    "keep_checkpoints": 2})
    assert main(["train", "--config", cfg]) == 0
    assert [s for s, _ in ckpt.list_checkpoints(str(tmp_path / "runs" / "r"))] == [8, 10]


def test_estimate_command_prints_json(tmp_path, char_data):
    cfg = write_config(tmp_path, char_data)
    out = engine("estimate", "--config", cfg, "--json")
    assert out.returncode == 0
    est = json.loads(out.stdout)
    assert est["params"] > 0 and est["vocab_size"] == 43 and est["memory"]["total"] > est["memory"]["weights"]
