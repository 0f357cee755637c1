"""Helpers for studio tests: write a past run's files without running an engine."""

from __future__ import annotations

import math
import os

from core.protocol import encode, make_event


def write_finished_run(run_dir: str, steps: int = 100, status: str = "done", eval_every: int = 10,
                       ckpt_every: int = 50) -> None:
    """metrics.jsonl (+ checkpoints) of a run that ran `steps` steps and closed with `status`."""
    os.makedirs(os.path.join(run_dir, "checkpoints"), exist_ok=True)
    lines = [make_event("start", max_steps=steps, start_step=0, resumed=False,
                        config={"train": {"grad_clip": 1.0, "max_steps": steps}})]
    for s in range(1, steps + 1):
        loss = 3.0 * math.exp(-s / 40) + 1.0
        lines.append(make_event("step", step=s, tokens=256 * s, loss=loss, lr=1e-3, grad_norm=0.8 + 0.3 * (s % 3),
                                clipped=False, tokens_per_s=20000.0, elapsed_s=0.05 * s, step_ms=50.0))
        if s % eval_every == 0:
            lines.append(make_event("eval", step=s, tokens=256 * s, train_loss=loss, val_loss=loss + 0.1,
                                    val_ppl=math.exp(loss + 0.1), best_val_loss=loss + 0.1))
        if s % ckpt_every == 0:
            path = os.path.join(run_dir, "checkpoints", f"step-{s:06d}")
            os.makedirs(path, exist_ok=True)
            lines.append(make_event("checkpoint", step=s, path=path))
    if status == "done":
        lines.append(make_event("done", step=steps, checkpoint="", best_val_loss=1.0))
    elif status == "stopped":
        lines.append(make_event("stopped", step=steps, reason="requested", checkpoint=""))
    elif status == "failed":
        lines.append(make_event("error", kind="runtime", message="simulated failure", step=steps))
    with open(os.path.join(run_dir, "metrics.jsonl"), "w", encoding="utf-8") as fh:
        fh.writelines(encode(e) for e in lines)
