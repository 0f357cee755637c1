"""Self-describing checkpoint folders, written atomically.

    RUN_DIR/checkpoints/step-000500/
        model.safetensors   weights (shared/tied tensors stored once)
        state.pt            optimizer, grad scaler, RNG and data-position state; only tensors and plain
                            containers, so it loads with torch.load(weights_only=True)
        tokenizer.json      copied from the data folder, so the checkpoint alone can generate
        meta.json           step, resolved config, metrics, versions, the sha256 of every other file
                            (verified on load: silent corruption is found); written last

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
from core.errors import CheckpointError, quote

# The folder rules live in core.layout; re-exported here for the engine's callers.
from core.layout import file_sha256, latest_checkpoint, list_checkpoints, resolve_checkpoint, step_dir_name
from core.layout import read_checkpoint_meta as read_meta

__all__ = ["CheckpointError", "latest_checkpoint", "list_checkpoints", "load_state", "load_weights",
           "prune_checkpoints", "read_meta", "resolve_checkpoint", "save_checkpoint", "step_dir_name", "verify"]


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


def save_checkpoint(run_dir: str, step: int, model: torch.nn.Module, state: dict | None, meta: dict,
                    tokenizer_path: str | None = None) -> str:
    """Write checkpoints/step-NNNNNN atomically; returns its path. `model` is the raw (unwrapped) module;
    `state` None writes no training state (a merged or converted model: training from it starts fresh)."""
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
            layout.give_default_mode(os.path.join(tmp, layout.WEIGHTS))
        if state is not None:
            torch.save(state, os.path.join(tmp, layout.STATE))
        if tokenizer_path and os.path.exists(tokenizer_path):
            shutil.copyfile(tokenizer_path, os.path.join(tmp, layout.TOKENIZER))
        sums = {name: file_sha256(os.path.join(tmp, name)) for name in sorted(os.listdir(tmp))}
        meta = {"format": 1, "step": step, "created": time.time(), **meta, "checksums": sums}
        layout.atomic_write_json(os.path.join(tmp, layout.META), meta, fsync=True)
        for name in os.listdir(tmp):
            with open(os.path.join(tmp, name), "rb") as fh:
                os.fsync(fh.fileno())
        _fsync_dir(tmp)
        if os.path.exists(final):  # e.g. the final checkpoint lands on a periodic one: replace it
            old = final + f".old-{os.getpid()}"
            if os.path.isdir(os.path.join(final, layout.EVALS)):  # same step, same weights: keep its evaluations
                os.rename(os.path.join(final, layout.EVALS), os.path.join(tmp, layout.EVALS))
            os.rename(final, old)
            os.rename(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, final)
        _fsync_dir(root)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        from core.guards import disk_full_error, is_disk_full

        if isinstance(exc, Exception) and is_disk_full(exc):
            needed = sum(p.numel() * p.element_size() for p in model.parameters()) * 3  # weights + Adam
            raise disk_full_error(final, needed) from None
        raise
    return final


def prune_checkpoints(run_dir: str, keep: int, protect: set[str] = frozenset()) -> None:
    """Keep the newest `keep` checkpoints (0 = all); never delete protected paths, nor a checkpoint that a
    LoRA fine-tune was trained on (it holds layout.LORA_CHILDREN: the fine-tune's adapters need it, wherever
    that run has been renamed or moved since)."""
    if keep <= 0:
        return
    ckpts = list_checkpoints(run_dir)
    for _, path in ckpts[:-keep]:
        if path not in protect and not os.path.exists(os.path.join(path, layout.LORA_CHILDREN)):
            shutil.rmtree(path, ignore_errors=True)
    root = os.path.join(run_dir, layout.CHECKPOINTS)
    for name in os.listdir(root):
        if name.startswith(".tmp-") and not name.endswith(f"-{os.getpid()}"):
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)


def load_weights(model: torch.nn.Module, path: str, device: str | torch.device = "cpu") -> None:
    """Load model.safetensors into model (strict: shapes and names must match)."""
    file = os.path.join(path, layout.WEIGHTS)
    verify_file(path, layout.WEIGHTS)
    try:
        missing, unexpected = load_model(model, file, strict=False, device=str(device))
    except Exception as exc:  # safetensors raises its own error types for damaged headers and data
        raise CheckpointError(f"cannot load weights from {file} (damaged?): {quote(str(exc))}") from None
    if missing or unexpected:  # sets in some safetensors versions, lists in others
        raise CheckpointError(f"weights in {file} do not fit the model: missing {sorted(missing)[:5]}, "
                              f"unexpected {sorted(unexpected)[:5]}")


def load_state(path: str) -> dict:
    """Optimizer/RNG/data state; weights_only=True so no pickle code runs."""
    file = os.path.join(path, layout.STATE)
    verify_file(path, layout.STATE)
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # damaged zip, truncated data, or a pickle weights_only refuses to run
        raise CheckpointError(f"cannot load training state from {file} (damaged?): {quote(str(exc))}") from None
    if not isinstance(state, dict):  # which keys a caller needs is the caller's check (restore names them)
        raise CheckpointError(f"training state in {file} is not a mapping (damaged or not written by llm-train)")
    return state


# ------------------------------------------------------------------------------------ integrity
def verify_file(path: str, name: str) -> None:
    """CheckpointError naming the file when its sha256 differs from the one in meta.json. Checkpoints
    written before checksums existed have none and pass (their loaders still check what they can)."""
    sums = read_meta(path).get("checksums")
    expected = sums.get(name) if isinstance(sums, dict) else None
    file = os.path.join(path, name)
    if expected is None:
        return
    try:
        actual = file_sha256(file)
    except OSError as exc:
        raise CheckpointError(f"cannot read {file}: {exc.strerror or exc}") from None
    if actual != expected:
        raise CheckpointError(f"{file} is damaged: its checksum differs from the one recorded in "
                              f"{layout.META} when it was written")


def verify(path: str) -> dict:
    """meta.json of a complete, intact checkpoint (every recorded checksum matches, the model config
    builds); CheckpointError naming the file and what is wrong otherwise."""
    layout.require_checkpoint(path)
    meta = read_meta(path)
    model_config(meta, path)
    sums = meta.get("checksums")
    for name in sorted(sums) if isinstance(sums, dict) else []:
        if os.path.exists(os.path.join(path, name)) or name != layout.TOKENIZER:
            verify_file(path, name)
    return meta


def model_config(meta: dict, path: str):
    """The ModelConfig recorded in a checkpoint's meta.json; CheckpointError naming the file if absent or
    invalid."""
    from core.config import ModelConfig

    file = os.path.join(path, layout.META)
    model = (meta.get("config") or {}).get("model") if isinstance(meta.get("config"), dict) else None
    if not isinstance(model, dict):
        raise CheckpointError(f"{file} has no config.model (damaged or not written by llm-train)")
    try:
        return ModelConfig(**model)
    except TypeError as exc:
        raise CheckpointError(f"{file}: config.model does not describe a model: {quote(str(exc))}") from None
