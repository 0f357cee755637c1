"""Run-time guards the training loop calls with one line each: finiteness of every step and of the
weights before a checkpoint is written (issue 14 item 3).

Checking the loss with `.item()` every step would add a CPU-GPU sync per step, so each step only ORs a
"non-finite seen" flag on the device; the flag (and the weights) are read where the loop syncs anyway:
before a checkpoint is written. A checkpoint is therefore never written, nor named as the last good one,
when any step since the previous one had a non-finite loss or gradient norm, or the weights are not finite.
"""

from __future__ import annotations

import torch

from core.protocol import make_event


class FiniteGuard:
    """Accumulates non-finite losses/gradient norms on the device; `ok_to_save` reads it once."""

    def __init__(self, device: torch.device | str):
        self.bad = torch.zeros((), dtype=torch.bool, device=device)
        self.first_bad_step: int | None = None

    def note(self, loss: torch.Tensor, grad_norm: torch.Tensor) -> None:
        """After every optimizer step: no sync, two tiny device ops."""
        self.bad |= ~torch.isfinite(loss.detach().float()).all() | ~torch.isfinite(grad_norm.detach().float())

    def ok_to_save(self, tr) -> bool:
        """Whether the current weights may be written as a checkpoint; if not, an `error` event (kind
        "nonfinite", naming the last good checkpoint) and run.json "failed"."""
        weights_ok = all(bool(torch.isfinite(p).all()) for p in tr.raw_model.parameters())
        if not bool(self.bad) and weights_ok:
            return True
        what = "the weights are not finite" if not bool(self.bad) else "the loss or gradient became non-finite"
        step = tr.state.step
        tr.sinks.emit(make_event(
            "error", kind="nonfinite", step=step, field=None, checkpoint=tr.last_ckpt,
            message=f"{what} by step {step}; stopped without writing a checkpoint. The last good checkpoint "
                    f"is kept: {tr.last_ckpt or 'none yet'}. Try a lower train.lr, train.grad_clip, or a "
                    f"non-zero train.eps."))
        if tr.info:
            tr.info.ended("failed")
        return False
