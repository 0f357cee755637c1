"""Issue 14's fault injection: a tiny training killed with SIGKILL at random moments (after a random step,
some of them right when a checkpoint is being written) and resumed, again and again. Each chain of
kill/resume must end with weights bit-identical to an uninterrupted run's, lose at most one checkpoint
interval per kill, and leave no temporary file behind."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
from engine_helpers import ROOT, write_config
from safetensors.torch import load_file

from core import layout

MAX_STEPS, INTERVAL = 12, 2
CHAINS, KILLS_PER_CHAIN = 4, 6  # 24 kills in all
TRAIN = {"max_steps": MAX_STEPS, "checkpoint_interval": INTERVAL, "batch_size": 4}
MODEL = {"n_layer": 2, "n_embd": 32, "n_head": 2, "block_size": 16}


def _start(cfg: str, resume: bool) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-m", "core", "train", "--config", cfg, "--events"] + (["--resume"] if resume else [])
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)


def _latest_step(run_dir: str) -> int:
    path = layout.latest_checkpoint(run_dir)
    return layout.checkpoint_step(path) if path else 0


def _final_weights(run_dir: str) -> dict:
    return load_file(os.path.join(run_dir, "checkpoints", layout.step_dir_name(MAX_STEPS), "model.safetensors"))


def _kill_once(cfg: str, run_dir: str, rng: random.Random) -> bool:
    """One start (resuming when there is anything to resume), killed after a random step event, sometimes
    at once (a checkpoint write is under way after every INTERVAL-th step), sometimes a moment later.
    False when the run finished before the kill."""
    metrics = os.path.join(run_dir, layout.METRICS)
    proc = _start(cfg, resume=os.path.exists(metrics) and os.path.getsize(metrics) > 0)
    target = rng.randrange(_latest_step(run_dir) + 1, MAX_STEPS + 1)
    last_step, finished = 0, False
    for line in proc.stdout:
        event = json.loads(line) if line.startswith("{") else {}
        if event.get("event") == "step":
            last_step = event["step"]
            if last_step >= target:
                time.sleep(rng.choice((0.0, 0.0, rng.uniform(0.0, 0.05))))
                break
        if event.get("event") in ("done", "error", "stopped"):
            finished = True
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    assert last_step - _latest_step(run_dir) <= INTERVAL, "more than one checkpoint interval lost"
    return not finished and _latest_step(run_dir) < MAX_STEPS


def _leftovers(run_dir: str) -> list[str]:
    found = []
    for folder, dirs, files in os.walk(run_dir):
        found += [os.path.join(folder, n) for n in dirs + files if ".tmp" in n or ".old-" in n]
    return found


@pytest.fixture(scope="module")
def reference(tmp_path_factory, char_data) -> dict:
    folder = tmp_path_factory.mktemp("reference")
    cfg = write_config(folder, char_data, model=MODEL, train=TRAIN)
    proc = _start(cfg, resume=False)
    proc.communicate(timeout=300)
    assert proc.returncode == 0
    return _final_weights(os.path.join(folder, "runs", "r"))


@pytest.mark.parametrize("chain", range(CHAINS))
def test_killed_and_resumed_runs_end_bit_identical(reference, tmp_path, char_data, chain):
    rng = random.Random(1000 + chain)
    cfg = write_config(tmp_path, char_data, model=MODEL, train=TRAIN)
    run_dir = os.path.join(tmp_path, "runs", "r")
    kills = 0
    while kills < KILLS_PER_CHAIN and _kill_once(cfg, run_dir, rng):
        kills += 1
    # Finish the run undisturbed. A run whose final checkpoint was written before its kill (the kill can
    # land while it writes run.json at the very end, leaving its .run.json.tmp-PID) is resumed all the same,
    # as the studio's Resume would: the engine refuses, having nothing left to train (exit 2), and on
    # taking the folder's lock removes what the killed writer left.
    complete = _latest_step(run_dir) == MAX_STEPS
    proc = _start(cfg, resume=True)
    proc.communicate(timeout=300)
    assert proc.returncode == (2 if complete else 0)
    weights = _final_weights(run_dir)
    assert weights.keys() == reference.keys()
    for name, tensor in reference.items():
        assert weights[name].equal(tensor), f"{name} differs from the uninterrupted run after {kills} kills"
    assert kills >= 1
    assert not _leftovers(run_dir), _leftovers(run_dir)
