"""Muon for the matrices, AdamW for the rest: one optimizer object the training loop can treat like any.

Muon (Jordan et al. 2024, `torch.optim.Muon`) orthogonalises each 2-D update by Newton-Schulz iterations;
it suits the hidden weight matrices, not embeddings, the output head, norm gains or biases, which keep
AdamW. `MuonAdamW` holds the two and offers what core.train uses: param_groups (each group carries an
`lr_scale`, so one schedule drives both: Muon's peak is train.muon_lr), step, zero_grad and a state dict.
"""

from __future__ import annotations

import torch

from core.model import adamw


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
    muon = torch.optim.Muon([{"params": matrices, "lr_scale": scale}], lr=muon_lr, weight_decay=weight_decay)
    rest = adamw([{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
                 lr, betas, eps)
    return MuonAdamW([muon, rest])
