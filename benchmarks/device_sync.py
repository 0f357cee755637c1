"""`sync(device)`: wait for a GPU's queued work before reading the clock (a no-op on the CPU), for the
benchmarks that time a step or a generation on `--device cuda`."""

from __future__ import annotations

import torch


def sync(device: str) -> None:
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()
