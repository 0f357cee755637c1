"""How long a config will train on this machine, before Start: the speed of the latest run measured here
(its median tokens/s as FLOPs per second, and how much its evaluations and checkpoints added), scaled by the
config's FLOPs per step. The Config tab's Time estimate (MainWindow._update_time_estimate) shows it."""

from __future__ import annotations

import math

import numpy as np

from core.config import Config, estimate
from studio.controllers import engine_info
from studio.controllers.run import fork_step
from studio.workspace.workspace import auto_device


def measured_speed(controllers, exclude: str = "", device: str = "auto") -> dict | None:
    """How fast this machine trained lately: the FLOPs per second of the most recent run (other than
    `exclude`) that logged steps, from its tokens/s (metrics.jsonl) and its config's FLOPs per token.
    A LoRA fine-tune only when no other run has trained: it computes no weight gradients, so its FLOPs
    per token (counted as for full training) made every estimate from it too fast. Only runs on the kind
    of `device` asked for (train.device: cuda is not timed by a run on the CPU, tens of times slower;
    auto: what it becomes here). None when no such run has trained here yet."""
    kind = (device if device and device != "auto" else auto_device(engine_info.known())).split(":")[0]
    latest, key = None, None
    for ctl in controllers:
        h = ctl.history
        if ctl.run.dir == exclude or len(h.steps) < 3 or h.last_time is None:
            continue
        ran_on = str((h.start or {}).get("device") or "")  # "" in metrics written before it was recorded
        if ran_on and ran_on.split(":")[0] != kind:
            continue
        rank = (h.config_value("train", "finetune") != "lora", h.last_time)
        if key is None or rank > key:
            latest, key = ctl, rank
    if latest is None:
        return None
    rates = latest.history.steps["tokens_per_s"][-50:]
    rates = rates[np.isfinite(rates) & (rates > 0)]
    cfg = latest.run.config_or_none()
    if cfg is None or not len(rates):
        return None
    tokens_per_s = float(np.median(rates))
    flops_per_token = estimate(cfg)["flops_per_token"]
    step_s = cfg.train.batch_size * cfg.model.block_size * cfg.train.grad_accum_steps / tokens_per_s
    return {"flops_per_s": tokens_per_s * flops_per_token, "run": latest.run.name, "step_s": step_s,
            "overhead": _overhead(latest.history, step_s)}


def _overhead(history, step_s: float) -> float:
    """How much longer than its steps alone a run took between its first and last logged step, >= 1: the
    time of its evaluations, samples and checkpoints (the demo: 1m 23s where 1,000 steps at the median
    step time make 1m 03s). 1 when its clock says nothing (one logged step, a clock that went back)."""
    steps, elapsed = history.steps["step"], history.steps["elapsed"]
    span, wall = steps[-1] - steps[0], elapsed[-1] - elapsed[0]
    if span <= 0 or not math.isfinite(wall) or wall <= 0 or step_s <= 0:
        return 1.0
    return max(1.0, wall / span / step_s)


def time_estimate(cfg: Config, est: dict, speed: dict | None, done_steps: int = 0) -> dict | None:
    """Time per step and for the steps left to train (after a fork's checkpoint, or after `done_steps`,
    where a stopped run resumes), scaled by FLOPs from a measured run: {"step_s", "total_s", "steps",
    "start", "source"}; None without a measurement."""
    if speed is None or speed["flops_per_s"] <= 0:
        return None
    start = max(fork_step(cfg) or 0, done_steps)
    steps = max(0, cfg.train.max_steps - start)
    step_s = est["flops_per_step"] / speed["flops_per_s"]
    overhead = speed.get("overhead", 1.0)  # evaluations, samples, checkpoints: as much more as in that run
    extra = f"; its evaluations and checkpoints added {100 * (overhead - 1):.0f}%" if overhead >= 1.01 else ""
    return {"step_s": step_s, "total_s": step_s * steps * overhead, "steps": steps, "start": start,
            "source": f"measured on this machine: run {speed['run']} took {1000 * speed['step_s']:,.0f} ms "
                      f"a step{extra}; scaled by FLOPs per step"}
