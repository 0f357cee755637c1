"""Issue 14, engine side of training: non-finite checkpoints (3), the run-folder lock (6), and friends."""

from __future__ import annotations

import glob
import json
import os

import torch
from engine_helpers import write_config
from safetensors.torch import load_file

from core.cli import main


def _checkpoints(run_dir: str) -> list[str]:
    return sorted(glob.glob(os.path.join(run_dir, "checkpoints", "step-*")))


def test_no_checkpoint_with_non_finite_weights_is_written_or_named(tmp_path, char_data, capsys):
    # The repro: eps=0 makes Adam divide 0 by 0 (NaN weights) while the loss is logged only every 10 steps.
    cfg = write_config(tmp_path, char_data, train={"max_steps": 30, "log_interval": 10, "checkpoint_interval": 5})
    code = main(["train", "--config", cfg, "--events", "--set", "train.eps=0",
                 "--set", "model.tie_embeddings=false"])
    run_dir = os.path.join(tmp_path, "runs", "r")
    for folder in _checkpoints(run_dir):
        weights = load_file(os.path.join(folder, "model.safetensors"))
        assert all(torch.isfinite(t).all() for t in weights.values()), f"non-finite weights in {folder}"
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    errors = [e for e in events if e["event"] == "error"]
    assert code == 1 and errors and errors[-1]["kind"] == "nonfinite"
    named = errors[-1]["checkpoint"]
    assert named is None or named in _checkpoints(run_dir)
    with open(os.path.join(run_dir, "run.json"), encoding="utf-8") as fh:
        assert json.load(fh)["status"] == "failed"
