"""Helpers for engine tests: tiny run configs and running the engine CLI as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TINY_MODEL = {"n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 32}
TINY_TRAIN = {"batch_size": 8, "grad_accum_steps": 1, "max_steps": 20, "lr": 3.0e-3, "min_lr": 3.0e-4,
              "warmup_steps": 2, "eval_interval": 0, "eval_steps": 2, "checkpoint_interval": 0,
              "device": "cpu", "precision": "fp32", "seed": 7}


def write_config(folder, data_dir: str, model: dict | None = None, train: dict | None = None,
                 run: dict | None = None, name: str = "run.yaml") -> str:
    """A run config in `folder` with tiny defaults; returns its path."""
    cfg = {"model": {**TINY_MODEL, **(model or {})}, "data": {"dir": data_dir},
           "train": {**TINY_TRAIN, **(train or {})},
           "run": {"dir": "runs/r", "save_attention": False, **(run or {})}}
    path = os.path.join(str(folder), name)
    with open(path, "w", encoding="utf-8") as fh:
        yaml.safe_dump(cfg, fh)
    return path


def engine(*args: str, cwd=None, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `python -m core ...` as a subprocess, capturing output."""
    full_env = {**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=full_env)


def events_of(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]
