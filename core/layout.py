"""The folders engine and studio share: names and validity rules of run, checkpoint and data folders,
their small JSON readers, and the one atomic writer. Torch-free (the studio imports it).

    RUN_DIR/
      config.yaml  metrics.jsonl  run.json            engine (config.yaml also written by the studio)
      checkpoints/step-NNNNNN/{model.safetensors, state.pt, tokenizer.json, meta.json}
      checkpoints/step-NNNNNN/eval/<UTC time>-<text|pairs>-<file>.json   `llm-train eval --save` results
      attention/step-NNNNNN.npz                       attention of the probe text at each evaluation
      engine.log  engine.out  launcher.json  exit.json  studio.json   studio
    DATA_DIR/
      meta.json  tokenizer.json  train.bin  val.bin  preview.json

A checkpoint is a folder named `step-` + at least six digits holding a `meta.json` (written last, so its
presence means the folder is complete). `checkpoint_problem()` is the one definition; every picker and
every command uses it. Its `eval/` subfolder holds saved evaluations (one JSON object per file, written
atomically, named so that their names sort by time); it is no part of the checkpoint's checksums, and
goes with the checkpoint when that is pruned.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import time
from collections.abc import Iterator

from core.errors import CheckpointError, DataError

# ------------------------------------------------------------------------------------------ names
CONFIG = "config.yaml"
METRICS = "metrics.jsonl"
RUN_JSON = "run.json"
CHECKPOINTS = "checkpoints"
ATTENTION = "attention"
EVALS = "eval"
ENGINE_LOG = "engine.log"
ENGINE_OUT = "engine.out"
LAUNCHER_JSON = "launcher.json"
EXIT_JSON = "exit.json"
STUDIO_JSON = "studio.json"
CONTROL_JSON = "control.json"  # the studio's share of the CPU cores for a running run ({"threads": n})

META = "meta.json"
WEIGHTS = "model.safetensors"
STATE = "state.pt"
TOKENIZER = "tokenizer.json"

DATA_META = "meta.json"
PREVIEW = "preview.json"
SPLITS = ("train", "val")

CHECKPOINT_RE = re.compile(r"^step-(\d{6,})$")
SNAPSHOT_RE = re.compile(r"^step-(\d{6,})\.npz$")
EVAL_RE = re.compile(r"^(\d{8}-\d{6})(?:-(\d+))?-(text|pairs)-.*\.json$")
EVAL_KINDS = ("text", "pairs")


def step_dir_name(step: int) -> str:
    """'step-000500' for step 500."""
    return f"step-{step:06d}"


def snapshot_name(step: int) -> str:
    return f"{step_dir_name(step)}.npz"


# ------------------------------------------------------------------------------------------ files
def atomic_write(path: str, data: str | bytes, *, fsync: bool = False) -> None:
    """Write `data` to `path` through a temporary file in the same folder and `os.replace`, so a reader
    (or a kill) never sees half a file. The temporary file is removed if anything fails."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.tmp-{os.getpid()}")
    mode = "wb" if isinstance(data, bytes) else "w"
    try:
        with open(tmp, mode, **({} if isinstance(data, bytes) else {"encoding": "utf-8"})) as fh:
            fh.write(data)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def give_default_mode(path: str) -> None:
    """Give a file safetensors wrote the mode any new file gets (0666 less the umask): safetensors >= 0.8
    writes through a temporary file created 0600 and renames it (safetensors#782), so the weights of a
    checkpoint or an export were unreadable to another user or a container while config.json beside them
    was readable. No-op off POSIX."""
    if os.name != "posix":
        return
    os.chmod(path, 0o666 & ~_umask())


@functools.cache
def _umask() -> int:
    """The process's umask, read once: reading it means setting it, which another thread would see."""
    umask = os.umask(0)
    os.umask(umask)
    return umask


def atomic_write_json(path: str, obj: object, *, indent: int | None = 2, fsync: bool = False) -> None:
    """`obj` as JSON (non-JSON values as str), written atomically."""
    atomic_write(path, json.dumps(obj, indent=indent, default=str, ensure_ascii=False), fsync=fsync)


def read_json(path: str, default: dict | None = None) -> dict:
    """A JSON object from `path`, or `default` ({}) when the file is missing, unreadable, not JSON or
    not an object. For status files where absence is normal; use `load_json` where it is an error."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return {} if default is None else default
    return data if isinstance(data, dict) else ({} if default is None else default)


def load_json(path: str, what: str = "file") -> dict:
    """A JSON object from `path`; ValueError naming the file and the problem otherwise."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise ValueError(f"{what} not found: {path}") from None
    except (OSError, ValueError) as exc:
        raise ValueError(f"unreadable {what} ({exc}): {path}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{what} is not a JSON object: {path}")
    return data


def jsonl_lines(path: str) -> Iterator[tuple[str, str]]:
    """The non-blank lines of a JSON-lines file as ("FILE:LINE", text); DataError naming the file (and the
    line, for text that is not UTF-8) where it cannot be read."""
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}") from None
    with fh:
        for n, raw in enumerate(fh, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(f"{path}:{n}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
            if line.strip():
                yield f"{path}:{n}", line


# ------------------------------------------------------------------------------------ checkpoints
LORA_CHILDREN = "lora-children.txt"  # in a checkpoint: the runs whose LoRA adapters use it as their base


def lora_base(checkpoint: str, spec: dict) -> str:
    """The base checkpoint of a LoRA checkpoint from its meta.json "lora" entry: `base` (absolute) when it
    is there, else `base_relative` (relative to the LoRA checkpoint's folder) when that is: a workspace moved
    or copied as a whole keeps its fine-tunes loading. "" when neither is recorded."""
    base, rel = spec.get("base"), spec.get("base_relative")
    if isinstance(base, str) and os.path.isdir(base):
        return base
    if isinstance(rel, str):
        moved = os.path.normpath(os.path.join(checkpoint, rel))
        if os.path.isdir(moved):
            return moved
    return base if isinstance(base, str) else ""


def lora_children(path: str) -> list[str]:
    """The run folders recorded in a checkpoint as using it as a LoRA base (see core.lora.note_lora_child)."""
    try:
        with open(os.path.join(path, LORA_CHILDREN), encoding="utf-8") as fh:
            return [line.strip() for line in fh if line.strip()]
    except OSError:
        return []


def checkpoint_problem(path: str) -> str | None:
    """None if `path` is a complete checkpoint folder, else the message saying why not (the same text
    the engine and the studio show)."""
    if not path:
        return "no checkpoint given"
    if not os.path.isdir(path):
        return f"checkpoint folder not found: {path}"
    name = os.path.basename(os.path.normpath(path))
    if not CHECKPOINT_RE.match(name):
        return (f"not a checkpoint folder (its name must be step-NNNNNN, as written under "
                f"RUN_DIR/{CHECKPOINTS}/): {path}")
    if not os.path.isfile(os.path.join(path, META)):
        return f"not a checkpoint folder (no {META}; incomplete or not written by llm-train): {path}"
    if not any(os.path.isfile(os.path.join(path, f)) for f in (WEIGHTS, "adapters.safetensors")):
        return f"checkpoint has no {WEIGHTS}: {path}"
    return None


def is_checkpoint(path: str) -> bool:
    return checkpoint_problem(path) is None


def checkpoint_step(path: str) -> int | None:
    m = CHECKPOINT_RE.match(os.path.basename(os.path.normpath(path)))
    return int(m.group(1)) if m else None


def list_checkpoints(run_dir: str) -> list[tuple[int, str]]:
    """Complete checkpoints of a run as (step, path), oldest first."""
    root = os.path.join(run_dir, CHECKPOINTS)
    try:
        names = os.listdir(root)
    except OSError:
        return []
    out = []
    for name in names:
        m = CHECKPOINT_RE.match(name)
        path = os.path.join(root, name)
        if m and os.path.isfile(os.path.join(path, META)):
            out.append((int(m.group(1)), path))
    return sorted(out)


def latest_checkpoint(run_dir: str) -> str | None:
    ckpts = list_checkpoints(run_dir)
    return ckpts[-1][1] if ckpts else None


def require_checkpoint(path: str) -> str:
    """`path` if it is a checkpoint, else CheckpointError with checkpoint_problem()'s message."""
    problem = checkpoint_problem(path)
    if problem:
        raise CheckpointError(problem)
    return path


def resolve_checkpoint(checkpoint: str | None = None, run: str | None = None) -> str:
    """The checkpoint folder named by --checkpoint, or the latest one of --run."""
    if run:
        if not os.path.isdir(run):
            raise CheckpointError(f"run folder not found: {run}")
        path = latest_checkpoint(run)
        if path is None:
            raise CheckpointError(f"run folder has no checkpoint yet: {run}")
        return path
    if checkpoint and os.path.isdir(os.path.join(checkpoint, CHECKPOINTS)) and not os.path.isfile(
            os.path.join(checkpoint, META)):
        raise CheckpointError(f"this is a run folder, not a checkpoint (use --run, or one of its "
                              f"{CHECKPOINTS}/step-NNNNNN folders): {checkpoint}")
    return require_checkpoint(checkpoint or "")


def file_sha256(file: str) -> str:
    """sha256 of a file's bytes, read in 1 MiB pieces (OSError when it cannot be read)."""
    digest = hashlib.sha256()
    with open(file, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_checkpoint_meta(path: str) -> dict:
    """meta.json of a checkpoint; CheckpointError naming the file when it cannot be read."""
    try:
        return load_json(os.path.join(path, META), "checkpoint meta.json")
    except ValueError as exc:
        raise CheckpointError(str(exc)) from None


# ------------------------------------------------------------------------------------------- data
def data_dir_problem(path: str) -> str | None:
    """None if `path` looks like a prepared data folder (a meta.json with an integer 'format')."""
    meta_path = os.path.join(path, DATA_META)
    if not os.path.isdir(path):
        return f"data folder not found: {path}"
    try:
        meta = load_json(meta_path, "data meta.json")
    except ValueError as exc:
        return f"not a data folder ({exc}; run `llm-train prepare`)"
    if not isinstance(meta.get("format"), int):
        return f"not a data folder (meta.json has no format): {meta_path}"
    return None


def is_data_dir(path: str) -> bool:
    return data_dir_problem(path) is None


def list_data_dirs(root: str) -> list[str]:
    """Prepared data folders directly under `root` (a workspace's data/), sorted by name."""
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return []
    return [os.path.join(root, n) for n in names if is_data_dir(os.path.join(root, n))]


def list_snapshots(run_dir: str) -> list[tuple[int, str]]:
    """(step, path) of RUN_DIR/attention/step-NNNNNN.npz, oldest first."""
    root = os.path.join(run_dir, ATTENTION)
    try:
        names = os.listdir(root)
    except OSError:
        return []
    out = [(int(m.group(1)), os.path.join(root, n)) for n in names if (m := SNAPSHOT_RE.match(n))]
    return sorted(out)


# ------------------------------------------------------------------------------------ evaluations
def evaluation_path(checkpoint: str, kind: str, source: str, when: float | None = None) -> str:
    """A new CHECKPOINT/eval/<YYYYmmdd-HHMMSS>[-N]-<kind>-<file stem>.json (UTC time; -N when that second
    is taken) for a result of `llm-train eval` on `source`."""
    if kind not in EVAL_KINDS:
        raise ValueError(f"evaluation kind must be one of {EVAL_KINDS}, got {kind!r}")
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(time.time() if when is None else when))
    stem = re.sub(r"[^\w.-]+", "_", os.path.splitext(os.path.basename(source))[0])[:40] or "file"
    folder = os.path.join(checkpoint, EVALS)
    path, n = os.path.join(folder, f"{stamp}-{kind}-{stem}.json"), 2
    while os.path.exists(path):
        path, n = os.path.join(folder, f"{stamp}-{n}-{kind}-{stem}.json"), n + 1
    return path


def list_evaluations(checkpoint: str) -> list[str]:
    """Paths of a checkpoint's saved evaluations, oldest first."""
    folder = os.path.join(checkpoint, EVALS)
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    found = [(m.group(1), int(m.group(2) or 1), n) for n in names if (m := EVAL_RE.match(n))]
    return [os.path.join(folder, n) for _stamp, _k, n in sorted(found)]
