"""Self-describing checkpoint folders, written atomically.

    RUN_DIR/checkpoints/step-000500/
        model.safetensors   weights (shared/tied tensors stored once)
        state.pt            optimizer, grad scaler, RNG and data-position state; only tensors and plain
                            containers, so it loads with torch.load(weights_only=True)
        tokenizer.json      copied from the data folder, so the checkpoint alone can generate
        meta.json           step, resolved config, metrics, versions; written last

A checkpoint is written into a hidden temporary folder next to its final place and renamed into place, so
a kill at any moment leaves every earlier checkpoint intact and never a half-written one under a
`step-*` name.
"""

from __future__ import annotations

import os
import shutil
import time

import torch
from safetensors.torch import load_model, save_model

from core import layout
from core.errors import CheckpointError

# The folder rules live in core.layout; re-exported here for the engine's callers.
from core.layout import latest_checkpoint, list_checkpoints, resolve_checkpoint, step_dir_name
from core.layout import read_checkpoint_meta as read_meta

__all__ = ["CheckpointError", "latest_checkpoint", "list_checkpoints", "load_state", "load_weights",
           "prune_checkpoints", "read_meta", "resolve_checkpoint", "save_checkpoint", "step_dir_name"]


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_checkpoint(run_dir: str, step: int, model: torch.nn.Module, state: dict, meta: dict,
                    tokenizer_path: str | None = None) -> str:
    """Write checkpoints/step-NNNNNN atomically; returns its path. `model` is the raw (unwrapped) module."""
    root = os.path.join(run_dir, layout.CHECKPOINTS)
    os.makedirs(root, exist_ok=True)
    final = os.path.join(root, step_dir_name(step))
    tmp = os.path.join(root, f".tmp-{step_dir_name(step)}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        if getattr(model, "lora_spec", None):  # LoRA: only the adapters; meta.json names the base
            from core.lora import save_adapters

            save_adapters(model, tmp)
        else:
            save_model(model, os.path.join(tmp, layout.WEIGHTS))
        torch.save(state, os.path.join(tmp, layout.STATE))
        if tokenizer_path and os.path.exists(tokenizer_path):
            shutil.copyfile(tokenizer_path, os.path.join(tmp, layout.TOKENIZER))
        meta = {"format": 1, "step": step, "created": time.time(), **meta}
        layout.atomic_write_json(os.path.join(tmp, layout.META), meta, fsync=True)
        for name in os.listdir(tmp):
            with open(os.path.join(tmp, name), "rb") as fh:
                os.fsync(fh.fileno())
        _fsync_dir(tmp)
        if os.path.exists(final):  # e.g. the final checkpoint lands on a periodic one: replace it
            old = final + f".old-{os.getpid()}"
            os.rename(final, old)
            os.rename(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, final)
        _fsync_dir(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def prune_checkpoints(run_dir: str, keep: int, protect: set[str] = frozenset()) -> None:
    """Keep the newest `keep` checkpoints (0 = all); never delete protected paths."""
    if keep <= 0:
        return
    ckpts = list_checkpoints(run_dir)
    for _, path in ckpts[:-keep]:
        if path not in protect:
            shutil.rmtree(path, ignore_errors=True)
    root = os.path.join(run_dir, layout.CHECKPOINTS)
    for name in os.listdir(root):
        if name.startswith(".tmp-") and not name.endswith(f"-{os.getpid()}"):
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)


def load_weights(model: torch.nn.Module, path: str, device: str | torch.device = "cpu") -> None:
    """Load model.safetensors into model (strict: shapes and names must match)."""
    file = os.path.join(path, layout.WEIGHTS)
    try:
        missing, unexpected = load_model(model, file, strict=False, device=str(device))
    except (OSError, RuntimeError) as exc:
        raise CheckpointError(f"cannot load weights from {file}: {exc}") from None
    if missing or unexpected:
        raise CheckpointError(f"weights in {file} do not fit the model: missing {missing[:5]}, "
                              f"unexpected {unexpected[:5]}")


def load_state(path: str) -> dict:
    """Optimizer/RNG/data state; weights_only=True so no pickle code runs."""
    file = os.path.join(path, layout.STATE)
    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError) as exc:
        raise CheckpointError(f"cannot load training state from {file}: {exc}") from None
