"""Run-time guards the training code calls with one line each: finiteness of every step and of the
weights before a checkpoint is written (issue 14 item 3), the run-folder lock (item 6), and --resume of a
run that never reached a checkpoint (item 11).

Checking the loss with `.item()` every step would add a CPU-GPU sync per step, so each step only ORs a
"non-finite seen" flag on the device; the flag (and the weights) are read where the loop syncs anyway:
before a checkpoint is written. A checkpoint is therefore never written, nor named as the last good one,
when any step since the previous one had a non-finite loss or gradient norm, or the weights are not finite.
"""

from __future__ import annotations

import os
import platform
import sys

import torch

from core import layout
from core.errors import UsageError
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
        # one device sync for all the weights, not one per parameter
        weights_ok = bool(torch.stack([torch.isfinite(p).all() for p in tr.raw_model.parameters()]).all())
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


# ----------------------------------------------------------------------------------------- run-folder lock
LOCK_FILE = ".lock"
_held: dict[str, int] = {}  # run folder (absolute) -> the open, flock'ed descriptor of its .lock


def lock_run_dir(run_dir: str, create: bool = True) -> None:
    """Hold RUN_DIR/.lock (flock, non-blocking) for the life of this training: a second engine writing the
    same folder is refused (UsageError naming the running one's pid and host from run.json). With
    create=False a folder that does not exist yet is left alone (a rejected run leaves nothing behind);
    the lock is then taken once set-up has succeeded. Idempotent within one process."""
    import fcntl

    key = os.path.abspath(run_dir)
    if key in _held or (not create and not os.path.isdir(key)):
        return
    try:
        os.makedirs(key, exist_ok=True)
        fd = os.open(os.path.join(key, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise UsageError(f"run.dir: cannot write in {run_dir}: {exc.strerror or exc}", "run.dir") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        info = layout.read_json(os.path.join(key, layout.RUN_JSON))
        who = f"pid {info.get('pid', '?')} on {info.get('host', 'this machine')}"
        raise UsageError(f"run.dir: {run_dir} is being written by another training ({who}); wait for it to "
                         f"end or stop it, or choose another run.dir (nothing was written)", "run.dir") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()} {platform.node()}\n".encode())  # who holds it, for people and the studio
    _held[key] = fd
    remove_leftovers(key)


def remove_leftovers(run_dir: str) -> None:
    """Temporary files and folders of writers killed mid-write (`.NAME.tmp-PID`, `checkpoints/.tmp-step-*`,
    `step-*.old-PID`). Only called with the lock held, so none of them belongs to a live writer."""
    import re
    import shutil

    pattern = re.compile(r"(^\..+\.tmp-\d+$)|(^\.tmp-step-)|(^step-\d+\.old-\d+$)")
    for folder in (run_dir, os.path.join(run_dir, layout.CHECKPOINTS)):
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            if pattern.search(name):
                path = os.path.join(folder, name)
                shutil.rmtree(path, ignore_errors=True) if os.path.isdir(path) else _unlink(path)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def release_run_dir(run_dir: str) -> None:
    """Let go of the lock (end of train(); the process's exit does the same)."""
    fd = _held.pop(os.path.abspath(run_dir), None)
    if fd is not None:
        os.close(fd)


class LockRelease:
    """A sink that only releases the run-folder lock when the sinks are closed (end of the training)."""

    def __init__(self, run_dir: str):
        self.run_dir = run_dir

    def emit(self, event: dict) -> None:
        pass

    def close(self) -> None:
        release_run_dir(self.run_dir)


def restart_if_no_checkpoint(run_dir: str) -> bool:
    """--resume on a run killed before its first checkpoint: set its metrics aside (metrics.jsonl ->
    metrics.jsonl.abandoned) and say it starts afresh. True when that happened; False when there is a
    checkpoint to resume or nothing at all (the caller reports "nothing to resume")."""
    metrics = os.path.join(run_dir, layout.METRICS)
    if layout.latest_checkpoint(run_dir) is not None or not os.path.exists(metrics):
        return False
    os.replace(metrics, metrics + ".abandoned")
    print(f"llm-train: {run_dir} has no checkpoint yet (its run ended before the first one); starting it "
          f"afresh from step 0 (its old metrics are kept in {layout.METRICS}.abandoned)", file=sys.stderr)
    return True


# ----------------------------------------------------------------------------------------- resume source
def newest_loadable_checkpoint(run_dir: str) -> str | None:
    """The newest checkpoint of run_dir that verifies (meta.json readable, checksums match); damaged newer
    ones are skipped, saying so on stderr. None when there is no checkpoint; UsageError naming every
    problem when there are checkpoints but none of them loads."""
    from core import checkpoint as ckpt

    problems = []
    for _, path in reversed(layout.list_checkpoints(run_dir)):
        try:
            ckpt.verify(path)
        except ckpt.CheckpointError as exc:
            problems.append(str(exc))
            continue
        for problem in problems:
            print(f"llm-train: skipping a damaged checkpoint: {problem}", file=sys.stderr)
        if problems:
            print(f"llm-train: resuming from the newest checkpoint that loads: {path}", file=sys.stderr)
        return path
    if problems:
        raise UsageError(f"run.dir: no checkpoint of {run_dir} loads: " + "; ".join(problems[:3]), "run.dir")
    return None


# ----------------------------------------------------------------------------------------- disk full
def is_disk_full(exc: BaseException) -> bool:
    """ENOSPC/EDQUOT, also when torch.save reports it as "unexpected pos" (a RuntimeError)."""
    import errno

    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return isinstance(exc, RuntimeError) and ("unexpected pos" in str(exc) or "No space left" in str(exc))


def disk_full_error(where: str, needed: int | None = None) -> OSError:
    """An OSError(ENOSPC) whose message says the disk is full, where, how much was needed and is free."""
    import errno
    import shutil

    folder = where if os.path.isdir(where) else os.path.dirname(os.path.abspath(where))
    try:
        free = f"{shutil.disk_usage(folder).free / 1e6:.1f} MB free"
    except OSError:
        free = "free space unknown"
    need = f"about {needed / 1e6:.1f} MB needed, " if needed else ""
    return OSError(errno.ENOSPC, f"the disk is full while writing {where} ({need}{free}); free some space "
                                 f"and resume the run")
