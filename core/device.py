"""The one device resolver: a device name from a config or a command line -> the torch device to use.

`auto` picks cuda, then mps, then cpu. An explicit device that this machine does not have, or a name
that is no device at all, is bad input (UsageError naming the option or config field), never a crash
deep inside torch.
"""

from __future__ import annotations

import torch

from core.errors import UsageError

KINDS = ("auto", "cpu", "cuda", "mps")


def mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return backend is not None and backend.is_available()


def resolve_device(name: str | None, what: str = "--device", field: str | None = None) -> str:
    """'cuda', 'cuda:N', 'mps' or 'cpu' for `name` (auto, cpu, cuda, cuda:N, mps). `what` names the
    option or config field in the message; `field` is the config field the studio should mark."""
    name = (name or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        return "mps" if mps_available() else "cpu"
    kind, _, index = name.partition(":")
    if kind not in KINDS[1:] or (index and (kind != "cuda" or not index.isdigit())):
        raise UsageError(f"{what}: unknown device {name!r} (choose from {', '.join(KINDS)} or cuda:N)", field)
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"{what}: cuda was asked for but no CUDA GPU is available", field)
        if index and int(index) >= torch.cuda.device_count():
            raise UsageError(f"{what}: {name} was asked for but this machine has "
                             f"{torch.cuda.device_count()} CUDA GPU(s)", field)
    if kind == "mps" and not mps_available():
        raise UsageError(f"{what}: mps was asked for but is not available", field)
    return name
