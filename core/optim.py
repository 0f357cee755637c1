"""Muon for the matrices, AdamW for the rest: one optimizer object the training loop can treat like any.

Muon (Jordan et al. 2024, `torch.optim.Muon`) orthogonalises each 2-D update by Newton-Schulz iterations;
it suits the hidden weight matrices, not embeddings, the output head, norm gains or biases, which keep
AdamW. `MuonAdamW` holds the two and offers what core.train uses: param_groups (each group carries an
`lr_scale`, so one schedule drives both: Muon's peak is train.muon_lr), step, zero_grad and a state dict.

`Muon` below is torch.optim.Muon's algorithm (same coefficients, momentum, Nesterov, lr adjustment and
decoupled weight decay) with one change: torch runs the Newton-Schulz iterations in bf16, which a CPU
without native bf16 emulates at several times the cost of the whole forward and backward pass (measured
here: 3.5 s against 1.3 s per step at 4 x 128). We iterate in bf16 only on a GPU or a CPU with native bf16.
"""

from __future__ import annotations

import torch

from core.model import adamw
from core.precision import cpu_native_bf16

NS_COEFFICIENTS = (3.4445, -4.775, 2.0315)  # torch.optim.Muon's quintic iteration


def newton_schulz(grad: torch.Tensor, steps: int, dtype: torch.dtype, eps: float = 1e-7) -> torch.Tensor:
    """The nearest semi-orthogonal matrix to `grad`, approximately (Muon's zeroth-power iteration)."""
    a, b, c = NS_COEFFICIENTS
    x = grad.to(dtype)
    x = x / (x.norm() + eps)
    tall = x.size(0) > x.size(1)
    if tall:
        x = x.T
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return (x.T if tall else x).to(grad.dtype)


class Muon(torch.optim.Optimizer):
    """torch.optim.Muon's update for 2-D parameters, with the iteration's dtype chosen per device."""

    def __init__(self, params, lr: float = 0.02, weight_decay: float = 0.0, momentum: float = 0.95,
                 nesterov: bool = True, ns_steps: int = 5):
        super().__init__(params, {"lr": lr, "weight_decay": weight_decay, "momentum": momentum,
                                  "nesterov": nesterov, "ns_steps": ns_steps})
        self.cpu_bf16 = cpu_native_bf16() is not None

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                buf = self.state[p].setdefault("momentum_buffer", torch.zeros_like(p.grad))
                buf.lerp_(p.grad, 1 - group["momentum"])
                update = p.grad.lerp(buf, group["momentum"]) if group["nesterov"] else buf
                native = p.device.type != "cpu" or self.cpu_bf16
                update = newton_schulz(update, group["ns_steps"], torch.bfloat16 if native else torch.float32)
                lr = group["lr"] * max(1.0, p.size(0) / p.size(1)) ** 0.5
                p.mul_(1 - group["lr"] * group["weight_decay"])
                p.add_(update, alpha=-lr)


class MuonAdamW:
    """Muon over the blocks' 2-D weights + AdamW over everything else."""

    def __init__(self, optimizers: list[torch.optim.Optimizer]):
        self.optimizers = optimizers

    @property
    def param_groups(self) -> list[dict]:
        return [g for opt in self.optimizers for g in opt.param_groups]

    @property
    def state(self) -> dict:
        return {k: v for opt in self.optimizers for k, v in opt.state.items()}

    def step(self) -> None:
        for opt in self.optimizers:
            opt.step()

    def zero_grad(self, set_to_none: bool = True) -> None:
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict:
        return {"muon_adamw": [opt.state_dict() for opt in self.optimizers]}

    def load_state_dict(self, saved: dict) -> None:
        parts = saved.get("muon_adamw") if isinstance(saved, dict) else None
        if not isinstance(parts, list) or len(parts) != len(self.optimizers):
            raise ValueError("the checkpoint's optimizer state is not Muon+AdamW (train.optimizer changed?)")
        for opt, part in zip(self.optimizers, parts, strict=True):
            opt.load_state_dict(part)


def muon_adamw(model: torch.nn.Module, lr: float, weight_decay: float, betas, eps: float,
               muon_lr: float) -> MuonAdamW:
    """Split `model`'s parameters: 2-D weights inside model.blocks -> Muon (peak muon_lr), the rest ->
    AdamW (peak lr; decay on matrices only)."""
    in_blocks = {id(p) for p in model.blocks.parameters()}
    matrices, decay, no_decay = [], [], []
    for p in model.parameters():
        if not p.requires_grad:
            continue
        if id(p) in in_blocks and p.dim() == 2:
            matrices.append(p)
        elif p.dim() >= 2:
            decay.append(p)
        else:
            no_decay.append(p)
    scale = muon_lr / lr if lr > 0 else 0.0
    muon = Muon([{"params": matrices, "lr_scale": scale}], lr=muon_lr, weight_decay=weight_decay)
    rest = adamw([{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
                 lr, betas, eps)
    return MuonAdamW([muon, rest])
