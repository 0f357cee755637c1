"""The learning-rate schedule: warm-up, then a decay to train.min_lr at train.max_steps; pure Python.

The studio imports it (no torch here) to show the rate a checkpoint was trained at and to start a fork's or a
continued run's schedule over (`goes_on` says whether from that rate or with a fresh warm-up).

A run that goes on from a checkpoint (a fork, or "continue for more steps" after max_steps was raised)
would otherwise have its whole schedule stretched to the new max_steps: a cosine that had decayed to
min_lr at step 1000 of 1000 is back at about half the peak at step 1000 of 2000, and the loss jumps up.
`train.restart_step` starts the schedule over at that step instead: from `train.restart_lr` (no warm-up)
down to min_lr at max_steps, in the same shape; with restart_lr empty it warms up again to lr. Steps before
restart_step follow the schedule as if there were no restart.
"""

from __future__ import annotations

import dataclasses
import math


def warmup_steps(t) -> int:
    """train.warmup_steps as set, or its default: a tenth of max_steps, at most 100 (so a short run never
    trips over a warm-up it did not ask for)."""
    return t.warmup_steps if t.warmup_steps is not None else min(100, t.max_steps // 10)


def lr_at(step: int, t) -> float:
    """Learning rate for optimizer step `step` (0-based) of a run with train settings `t`."""
    start = getattr(t, "restart_step", 0) or 0
    restart_lr = getattr(t, "restart_lr", None)
    if step >= start and (start or restart_lr is not None) and t.max_steps > start:
        local = dataclasses.replace(t, max_steps=t.max_steps - start, restart_step=0, restart_lr=None,
                                    lr=t.lr if restart_lr is None else restart_lr,
                                    warmup_steps=t.warmup_steps if restart_lr is None else 0)
        return _plain(step - start, local)
    return _plain(step, t)


def goes_on(step: int, t) -> bool:
    """Whether a fork or continuation from a checkpoint at `step` should go on from the rate it had reached
    (train.restart_lr = lr_at(step)) rather than warm up again to lr and decay anew (restart_lr empty).

    Going on is for a checkpoint still at its peak rate (a constant schedule, the stable phase of wsd: what
    that schedule is made for). Once a decay has begun, a fresh warm-up and decay trains further, measured
    with `python benchmarks/fork_schedule.py [--from-step 500]` (the demo run: 4 x 128, 1000 steps, cosine
    2e-3 -> 2e-4; each fork 1000 more steps; val loss over 40 batches): from its last step, warm up again
    1.253, going on at min_lr 1.295, the parent's cosine stretched to the new length (what forks did before)
    1.263; from step 500: 1.267, 1.292 going on from the rate reached (1.17e-3), 1.284 stretched. Inside the
    warm-up the rate is too low to go on from."""
    if step < warmup_steps(t):
        return False
    return lr_at(step, t) >= t.lr * (1 - 1e-6)


def _plain(step: int, t) -> float:
    """The schedule from step 0: linear warm-up to lr, then the decay that train.schedule names."""
    warmup = warmup_steps(t)
    if warmup and step < warmup:
        return t.lr * (step + 1) / warmup
    if t.schedule == "constant":
        return t.lr
    if t.schedule == "wsd":  # stable at lr, then linear to min_lr over the last decay_fraction of the steps
        decay_start = t.max_steps - int(round(t.decay_fraction * t.max_steps))
        if step < decay_start:
            return t.lr
        progress = min(1.0, (step - decay_start + 1) / max(1, t.max_steps - decay_start))
        return t.lr + (t.min_lr - t.lr) * progress
    span = max(1, t.max_steps - warmup)
    progress = min(1.0, (step - warmup) / span)
    if t.schedule == "linear":
        return t.lr + (t.min_lr - t.lr) * progress
    return t.min_lr + 0.5 * (t.lr - t.min_lr) * (1.0 + math.cos(math.pi * progress))


def schedule_problems(t) -> list[tuple[str, str]]:
    """(field, message) for the schedule's cross-field rules."""
    out = []
    if t.min_lr > t.lr:
        out.append(("train.min_lr", f"train.min_lr: {t.min_lr} is larger than train.lr={t.lr}"))
    if t.warmup_steps is not None and t.warmup_steps > t.max_steps:
        out.append(("train.warmup_steps", f"train.warmup_steps: {t.warmup_steps} is more than "
                                          f"train.max_steps={t.max_steps}"))
    if t.restart_step and t.restart_step >= t.max_steps:
        out.append(("train.restart_step", f"train.restart_step: {t.restart_step} is not before "
                                          f"train.max_steps={t.max_steps}; the schedule would have no steps left"))
    return out


SCHEDULE_FIELDS = ("lr", "min_lr", "warmup_steps", "schedule", "decay_fraction", "max_steps", "restart_step",
                   "restart_lr")


def resume_jump(step: int, saved: dict, t) -> str | None:
    """What a resume at `step` does to the learning rate when the schedule's settings changed since the
    checkpoint (`saved`: the train section it trained with, its meta's config): the schedule is a function of
    the settings, so a max_steps lowered from 1000 to 600 at step 450 drops the rate from 1.3e-3 to 5e-4 at
    once. None when the rate stays within 1%, or when the change restarts the schedule at this very step
    (a fork or a continuation: train.restart_step = step, made for it)."""
    changed = {k: saved[k] for k in SCHEDULE_FIELDS if k in saved and saved[k] != getattr(t, k)}
    if not changed or (getattr(t, "restart_step", 0) == step and "restart_step" in changed):
        return None
    try:
        before = lr_at(step, dataclasses.replace(t, **changed))
    except (TypeError, ValueError, ZeroDivisionError):  # a meta.json written by hand: no comparison to make
        return None
    after = lr_at(step, t)
    if abs(after - before) <= 0.01 * max(abs(before), abs(after)):
        return None
    fields = ", ".join(f"train.{k} {v} -> {getattr(t, k)}" for k, v in changed.items())
    return (f"{fields} since the checkpoint at step {step}: the learning rate jumps from {before:.3g} to "
            f"{after:.3g} there (the schedule follows the settings); a fork of the checkpoint starts a schedule "
            "over from it instead")
