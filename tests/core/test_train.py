"""Trainer properties: accumulation and DDP equivalence, clipping, exact resume, learning, events."""

from __future__ import annotations

import math
import os
import sys

import numpy as np
import pytest
import torch
from engine_helpers import ROOT, engine, events_of, write_config
from safetensors.torch import load_file

from core import checkpoint as ckpt
from core import train as train_mod
from core import trainer_setup
from core.cli import main
from core.config import load_config
from core.model import GPT
from core.protocol import read_events


def weights(run_dir: str) -> dict[str, torch.Tensor]:
    return load_file(os.path.join(ckpt.latest_checkpoint(run_dir), "model.safetensors"))


def train_inproc(config: str, *extra: str) -> int:
    return main(["train", "--config", config, *extra])


def run_dir_of(config: str) -> str:
    return load_config(config).run.dir


def assert_same_weights(a: dict, b: dict, atol: float) -> None:
    assert a.keys() == b.keys()
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    assert worst <= atol, f"max parameter difference {worst:.3e} > {atol}"


# ----------------------------------------------------------------------------------------- equivalences
def test_grad_accumulation_equals_big_batch(tmp_path, char_data):
    """k micro-batches of b == one batch of k*b: same parameters after one optimizer step."""
    common = {"max_steps": 1, "warmup_steps": 0, "grad_clip": 0.0}
    a = write_config(tmp_path, char_data, train={**common, "batch_size": 4, "grad_accum_steps": 4},
                     run={"dir": "runs/accum"}, name="a.yaml")
    b = write_config(tmp_path, char_data, train={**common, "batch_size": 16, "grad_accum_steps": 1},
                     run={"dir": "runs/big"}, name="b.yaml")
    assert train_inproc(a) == 0 and train_inproc(b) == 0
    wa, wb = weights(run_dir_of(a)), weights(run_dir_of(b))
    assert_same_weights(wa, wb, atol=1e-5)
    # and the step really moved the weights (the comparison is not trivially true)
    c = write_config(tmp_path, char_data, train={**common, "batch_size": 16, "lr": 0.0, "min_lr": 0.0},
                     run={"dir": "runs/still"}, name="c.yaml")
    assert train_inproc(c) == 0
    moved = max((wb[k] - weights(run_dir_of(c))[k]).abs().max().item() for k in wb)
    assert moved > 1e-4


def _torchrun(nproc: int, config: str, cwd) -> list[dict]:
    """`torchrun --standalone --nproc_per_node N -m core train --config C --events` (gloo); its events."""
    import subprocess

    out = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
         "-m", "core", "train", "--config", config, "--events"],
        capture_output=True, text=True, timeout=300, cwd=str(cwd),
        env={**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr[-3000:]
    return events_of(out.stdout)


def test_ddp_two_processes_equal_one_process_with_accumulation(tmp_path, char_data):
    """torchrun --nproc_per_node 2 (gloo) with micro-batch b == 1 process with accumulation 2."""
    common = {"max_steps": 2, "warmup_steps": 0, "batch_size": 4}
    single = write_config(tmp_path, char_data, train={**common, "grad_accum_steps": 2},
                          run={"dir": "runs/single"}, name="single.yaml")
    ddp = write_config(tmp_path, char_data, train={**common, "grad_accum_steps": 1},
                       run={"dir": "runs/ddp"}, name="ddp.yaml")
    assert train_inproc(single) == 0
    evs = _torchrun(2, ddp, tmp_path)
    assert evs[0]["event"] == "start" and evs[0]["world_size"] == 2 and evs[0]["backend"] == "gloo"
    assert evs[0]["local_world_size"] == 2  # torchrun's, on this node: what the studio resumes it on
    assert [e["event"] for e in evs].count("start") == 1, "only rank 0 speaks"
    assert_same_weights(weights(run_dir_of(single)), weights(run_dir_of(ddp)), atol=1e-5)
    single_losses = [e["loss"] for e in read_events(os.path.join(run_dir_of(single), "metrics.jsonl"))
                     if e["event"] == "step"]
    ddp_losses = [e["loss"] for e in evs if e["event"] == "step"]
    assert np.allclose(single_losses, ddp_losses, atol=1e-5)


def test_torchrun_with_one_process_runs_the_ddp_path_and_matches_a_plain_run(tmp_path, char_data):
    """`torchrun --nproc_per_node 1` joins the process group and wraps the model in DDP (so a one-GPU
    machine checks the NCCL path; gloo here), and trains exactly what a plain single process trains."""
    common = {"max_steps": 3, "warmup_steps": 0, "batch_size": 4}
    plain = write_config(tmp_path, char_data, train=common, run={"dir": "runs/plain"}, name="plain.yaml")
    one = write_config(tmp_path, char_data, train=common, run={"dir": "runs/one"}, name="one.yaml")
    assert train_inproc(plain) == 0
    evs = _torchrun(1, one, tmp_path)
    assert evs[0]["event"] == "start" and evs[0]["world_size"] == 1 and evs[0]["backend"] == "gloo"
    assert_same_weights(weights(run_dir_of(plain)), weights(run_dir_of(one)), atol=1e-6)


# ----------------------------------------------------------------------------------------- clipping
def test_logged_grad_norm_is_true_global_norm_and_clip_holds(tmp_path, char_data):
    cfg_path = write_config(tmp_path, char_data, train={"max_steps": 1, "warmup_steps": 0, "grad_clip": 0.05})
    assert train_inproc(cfg_path) == 0
    cfg = load_config(cfg_path)
    step = next(e for e in read_events(os.path.join(cfg.run.dir, "metrics.jsonl")) if e["event"] == "step")

    # Recompute the first step's gradient by hand: same seed, same init, same batch.
    from core.data import open_split, read_meta

    torch.manual_seed(cfg.train.seed)
    model = GPT(trainer_setup.with_vocab(cfg, read_meta(cfg.data.dir)["vocab_size"]).model)
    data = open_split(cfg.data.dir, "train")
    batches = trainer_setup.Batches(data, cfg.model.block_size, cfg.train.batch_size, cfg.train.seed, "cpu")
    x, y = batches.fetch(batches.draw(1)[0])
    _, loss, _ = model(x, y)
    loss.backward()
    true_norm = math.sqrt(sum(float((p.grad.double() ** 2).sum()) for p in model.parameters()))
    assert step["grad_norm"] == pytest.approx(true_norm, rel=1e-5)
    assert step["clipped"] is True

    pre = train_mod.clip_gradients(model, 0.05, "norm")
    assert float(pre) == pytest.approx(true_norm, rel=1e-5)
    post = math.sqrt(sum(float((p.grad.double() ** 2).sum()) for p in model.parameters()))
    assert post <= 0.05 * (1 + 1e-5)


def test_clip_by_value_bounds_every_element(char_data):
    from core.config import ModelConfig

    torch.manual_seed(0)
    model = GPT(ModelConfig(n_layer=1, n_head=2, n_embd=16, block_size=16, vocab_size=43))
    x = torch.randint(0, 43, (4, 16))
    _, loss, _ = model(x, x)
    loss.backward()
    before = math.sqrt(sum(float((p.grad ** 2).sum()) for p in model.parameters()))
    pre = train_mod.clip_gradients(model, 1e-3, "value")
    assert float(pre) == pytest.approx(before, rel=1e-5)
    assert max(float(p.grad.abs().max()) for p in model.parameters()) <= 1e-3 * (1 + 1e-6)  # float32 rounding of the bound


# ----------------------------------------------------------------------------------------- resume
class _StopAfter(train_mod.StopFlag):
    """Asks the loop to stop after n optimizer steps (a deterministic stand-in for SIGTERM)."""

    n = 0

    def __init__(self, listen_stdin: bool):
        super().__init__(listen_stdin=False)
        self.calls = 0

    def agreed(self, any_rank: bool | None = None) -> bool:
        self.calls += 1
        if self.calls >= self.n:
            self.reason = "test stop"
            return True
        return False


def step_losses(run_dir: str) -> dict[int, float]:
    return {e["step"]: e["loss"] for e in read_events(os.path.join(run_dir, "metrics.jsonl"))
            if e["event"] == "step"}


def test_stopped_and_resumed_run_matches_uninterrupted_run(tmp_path, char_data, monkeypatch):
    train = {"max_steps": 30, "eval_interval": 10}
    model = {"dropout": 0.1}  # dropout on: the RNG state must be restored too
    full = write_config(tmp_path, char_data, model=model, train=train, run={"dir": "runs/full"}, name="f.yaml")
    part = write_config(tmp_path, char_data, model=model, train=train, run={"dir": "runs/part"}, name="p.yaml")
    assert train_inproc(full) == 0

    _StopAfter.n = 13
    monkeypatch.setattr(train_mod, "StopFlag", _StopAfter)
    assert train_inproc(part) == 0
    monkeypatch.undo()
    stopped = read_events(os.path.join(run_dir_of(part), "metrics.jsonl"))
    assert stopped[-1]["event"] == "stopped" and stopped[-1]["step"] == 13
    assert train_inproc(part, "--resume") == 0

    a, b = step_losses(run_dir_of(full)), step_losses(run_dir_of(part))
    assert sorted(a) == sorted(b) == list(range(1, 31))
    assert [a[s] for s in range(1, 31)] == [b[s] for s in range(1, 31)], "losses differ after resume"
    assert_same_weights(weights(run_dir_of(full)), weights(run_dir_of(part)), atol=0.0)


def test_loss_goes_well_below_unigram_entropy(tmp_path, char_data):
    from core.data import open_split

    cfg_path = write_config(tmp_path, char_data, model={"n_layer": 2, "n_embd": 48, "block_size": 48},
                            train={"max_steps": 300, "batch_size": 16, "lr": 1e-2, "min_lr": 1e-3,
                                   "warmup_steps": 20, "eval_interval": 100, "eval_steps": 8})
    assert train_inproc(cfg_path) == 0
    counts = np.bincount(np.asarray(open_split(char_data, "train")).astype(np.int64))
    p = counts[counts > 0] / counts.sum()
    unigram = float(-(p * np.log(p)).sum())  # nats/token: the best a model without context can do
    evals = [e for e in read_events(os.path.join(run_dir_of(cfg_path), "metrics.jsonl")) if e["event"] == "eval"]
    assert len(evals) == 3
    assert evals[0]["val_loss"] > evals[-1]["val_loss"]
    assert evals[-1]["val_loss"] < 0.6 * unigram, (evals[-1]["val_loss"], unigram)


# ----------------------------------------------------------------------------------------- events
def test_event_stream_and_metrics_file_agree(tmp_path, char_data):
    cfg_path = write_config(tmp_path, char_data, train={"max_steps": 12, "eval_interval": 5,
                                                         "checkpoint_interval": 5, "sample_tokens": 8},
                            run={"save_attention": True})
    out = engine("train", "--config", cfg_path, "--events", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    evs = events_of(out.stdout)
    assert all(e["v"] == 1 and "time" in e for e in evs)
    kinds = [e["event"] for e in evs]
    assert kinds[0] == "start" and kinds[-1] == "done"
    assert sum(k in ("done", "stopped", "error") for k in kinds) == 1
    assert [e["step"] for e in evs if e["event"] == "step"] == list(range(1, 13))
    assert [e["step"] for e in evs if e["event"] == "eval"] == [5, 10, 12]
    assert [e["step"] for e in evs if e["event"] == "checkpoint"] == [5, 10, 12]
    assert kinds.count("sample") == 3 and kinds.count("attention") == 3
    att = np.load(next(e for e in evs if e["event"] == "attention")["path"])
    assert att["probs"].shape[:2] == (2, 2) and att["probs"].shape[2] == len(att["tokens"])
    # no run.attention_probe: the probe is the validation text from its first line start, in the data's vocabulary
    from core.data import open_split
    from core.tokenizer import load_tokenizer

    tok, val = load_tokenizer(char_data), open_split(char_data, "val")
    head = tok.decode([int(i) for i in val[:256]])
    probe = tok.decode(att["ids"].tolist())
    assert len(att["ids"]) == 32 and head.index(probe) == head.index("\n") + 1
    step = next(e for e in evs if e["event"] == "step")
    assert {"loss", "lr", "grad_norm", "clipped", "tokens", "tokens_per_s", "elapsed_s"} <= set(step)
    assert evs[0]["params"] > 0 and evs[0]["world_size"] == 1 and evs[0]["device"] == "cpu" and evs[0]["backend"] is None
    assert evs[0]["local_world_size"] == 1
    resolved = load_config(os.path.join(tmp_path, "runs", "r", "config.resolved.yaml"))
    assert resolved.model.vocab_size == 43 and resolved.train.seed == 7 and resolved.data.dir == char_data
    file_events = read_events(os.path.join(tmp_path, "runs", "r", "metrics.jsonl"))
    assert [e["event"] for e in file_events] == kinds
    # a finished run always leaves a checkpoint that generate can use
    gen = engine("generate", "--run", os.path.join(tmp_path, "runs", "r"), "--prompt", "copy: ab",
                 "--max-new-tokens", "10", "--seed", "1")
    assert gen.returncode == 0 and gen.stdout.startswith("copy: ab") and len(gen.stdout) > 10


def test_progress_bar_without_events(tmp_path, char_data):
    cfg_path = write_config(tmp_path, char_data, train={"max_steps": 5})
    out = engine("train", "--config", cfg_path, cwd=tmp_path)
    assert out.returncode == 0
    assert out.stdout == ""
    assert "step 5/5" in out.stderr and "done at step 5" in out.stderr
