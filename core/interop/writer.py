"""The checkpoint folder an import writes: model.safetensors streamed tensor by tensor, tokenizer.json and
meta.json, assembled in a hidden temporary folder and renamed into place (nothing half-written is ever
visible under the final name).

`--out` names either a checkpoint folder itself (`.../step-000000`) or a run-like folder, in which case the
checkpoint lands in OUT/checkpoints/step-000000 (so `--run OUT` works too). No state.pt is written: an
imported model has no optimizer or data position; commands that load weights only do not need one, and a
fork (`train.init_from`) starts a fresh optimizer from it.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import time
from collections.abc import Callable, Iterable

import torch

from core.config import Config, ModelConfig
from core.errors import UsageError
from core.layout import CHECKPOINT_RE, CHECKPOINTS, META, TOKENIZER, WEIGHTS, atomic_write_json, step_dir_name

_ST_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}


def expected_tensors(cfg: ModelConfig) -> tuple[dict[str, tuple[tuple[int, ...], torch.dtype]], dict]:
    """Name -> (shape, dtype) of the tensors our checkpoint stores for `cfg` (tied weights stored once, under
    the name safetensors' save_model keeps), and the safetensors metadata that records the aliases."""
    from core.model import GPT

    with torch.device("meta"):
        model = GPT(cfg)
    out, seen, aliases = {}, {}, {}
    state = model.state_dict(keep_vars=True)
    for name in sorted(state):  # save_model keeps the first name in sorted order of a shared tensor
        t = state[name]
        key = id(t)
        if key in seen:
            aliases[name] = seen[key]
            continue
        seen[key] = name
        out[name] = (tuple(t.shape), t.dtype)
    return out, aliases


def stream_safetensors(path: str, specs: dict, produce: Callable[[str], torch.Tensor], aliases: dict,
                       dtype_of: Callable[[str], torch.dtype], progress=None) -> None:
    """Write a .safetensors file holding `specs`' tensors, asking `produce(name)` for one at a time, so peak
    memory is about one tensor beyond the source. Shapes are checked against `specs`."""
    header, offset = {}, 0
    dtypes = {name: dtype_of(name) for name in specs}
    for name, (shape, _) in specs.items():
        size = dtypes[name].itemsize
        for d in shape:
            size *= d
        header[name] = {"dtype": _ST_DTYPES[dtypes[name]], "shape": list(shape), "data_offsets": [offset,
                                                                                              offset + size]}
        offset += size
    header["__metadata__"] = {"format": "pt", **aliases}
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)  # the data section starts 8-byte aligned
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(blob)))
        fh.write(blob)
        for n, (name, (shape, _)) in enumerate(specs.items()):
            t = produce(name)
            if tuple(t.shape) != shape:
                raise UsageError(f"tensor {name}: the source gives shape {tuple(t.shape)}, the config implies "
                                 f"{shape}")
            t = t.detach().to(dtypes[name]).contiguous()
            if t.numel():
                fh.write(t.view(torch.uint8).numpy())  # the buffer itself: no bytes copy
            if progress:
                progress(n + 1, len(specs))
        fh.flush()
        os.fsync(fh.fileno())


def checkpoint_target(out: str) -> tuple[str, str]:
    """(final checkpoint folder, folder to create it in) for --out; refuses to overwrite anything."""
    out = os.path.abspath(out)
    if CHECKPOINT_RE.match(os.path.basename(out)):
        final = out
    else:
        final = os.path.join(out, CHECKPOINTS, step_dir_name(0))
        if os.path.exists(out) and os.listdir(out):
            raise UsageError(f"--out: {out} exists and is not empty; choose a new folder (nothing was written)")
    if os.path.exists(final):
        raise UsageError(f"--out: {final} already exists; choose a new folder (nothing was written)")
    return final, os.path.dirname(final)


def write_checkpoint(out: str, cfg: ModelConfig, produce: Callable[[str], torch.Tensor],
                     dtype_of: Callable[[str], torch.dtype], tokenizer_json: str, info: dict,
                     progress=None) -> str:
    """Assemble the checkpoint in a temporary folder and rename it into place; returns its path."""
    final, parent = checkpoint_target(out)
    created = [p for p in _missing_parents(parent)]
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f".tmp-import-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        specs, aliases = expected_tensors(cfg)
        stream_safetensors(os.path.join(tmp, WEIGHTS), specs, produce, aliases, dtype_of, progress)
        with open(os.path.join(tmp, TOKENIZER), "w", encoding="utf-8") as fh:
            fh.write(tokenizer_json)
        full = Config(model=cfg).to_dict()
        full["data"]["dir"] = os.path.dirname(final)  # no data folder: the tokenizer lives in the checkpoint
        n_params = sum(_numel(s) for s, _ in specs.values())
        meta = {"format": 1, "step": 0, "created": time.time(), "config": full, "reason": "import",
                "params": n_params, "parent": None, **info}
        atomic_write_json(os.path.join(tmp, META), meta, fsync=True)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for p in reversed(created):  # leave no empty folders behind either
            try:
                os.rmdir(p)
            except OSError:
                pass
        raise
    return final


def _numel(shape: Iterable[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _missing_parents(path: str) -> list[str]:
    out = []
    while path and not os.path.exists(path):
        out.append(path)
        path = os.path.dirname(path)
    return list(reversed(out))
