"""Run bookkeeping: run.json (status, pid, lineage, what reproduces the run) and the graceful-stop flag.

run.json lets another process (the studio after a restart) tell whether a run is still alive (pid), how
it ended, and where it came from. It is rewritten atomically at start and end.
"""

from __future__ import annotations

import os
import platform
import signal
import subprocess
import sys
import threading
import time

import torch

from core import layout
from core.protocol import STOP_LINE


def _git_commit(path: str | None) -> str | None:
    if not path or not os.path.isdir(path):
        return None
    try:
        out = subprocess.run(["git", "-C", path, "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def environment_versions(data_dir: str | None) -> dict:
    """Package versions and git commits (code and data) that reproduce a run."""
    import numpy
    import tokenizers

    import core

    code_dir = os.path.dirname(os.path.dirname(os.path.abspath(core.__file__)))
    return {"llm_training_studio": core.__version__, "python": platform.python_version(),
            "torch": torch.__version__, "numpy": numpy.__version__, "tokenizers": tokenizers.__version__,
            "cuda": torch.version.cuda, "platform": platform.platform(),
            "code_git": _git_commit(code_dir), "data_git": _git_commit(data_dir)}


class RunInfo:
    """RUN_DIR/run.json."""

    def __init__(self, run_dir: str):
        self.path = os.path.join(run_dir, layout.RUN_JSON)

    def read(self) -> dict:
        return layout.read_json(self.path)

    def _write(self, data: dict) -> None:
        try:
            layout.atomic_write_json(self.path, data)
        except OSError:
            if not os.path.exists(self.path):
                raise
            # No room for a temporary copy (disk full): rewrite in place, so run.json does not stay
            # "running", but only within the file's present size (its blocks are already on the disk), padded
            # with spaces (trailing whitespace is valid JSON). A text that would grow the file could be cut
            # by the full disk: then the old run.json stays whole and the error goes up.
            import json

            size = os.path.getsize(self.path)
            for indent in (2, None):
                raw = json.dumps(data, indent=indent, default=str).encode("utf-8")
                if len(raw) <= size:
                    break
            else:
                raise
            with open(self.path, "r+b") as fh:
                fh.write(raw.ljust(size, b" "))

    def parent(self) -> str | None:
        return self.read().get("parent")

    def started(self, resume: bool, parent: str | None, config: dict) -> None:
        data = self.read()
        history = data.get("sessions", [])
        history.append({"started": time.time(), "argv": sys.argv, "resume": bool(resume)})
        self._write({**data, "status": "running", "pid": os.getpid(), "host": platform.node(),
                     "started": data.get("started", time.time()), "ended": None, "parent": parent,
                     "seed": config["train"]["seed"], "sessions": history})

    def ended(self, status: str) -> None:
        self._write({**self.read(), "status": status, "ended": time.time()})


class StopFlag:
    """Set by SIGTERM/SIGINT or a `stop` line on stdin; the loop checks it between optimizer steps."""

    def __init__(self, listen_stdin: bool):
        self.reason = ""
        self._event = threading.Event()
        self._old = {}
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self._old[sig] = signal.signal(sig, self._on_signal)
            except ValueError:  # not the main thread (tests calling run() from a thread)
                pass
        if listen_stdin and not sys.stdin.isatty():
            threading.Thread(target=self._read_stdin, daemon=True, name="stdin-stop").start()

    def _on_signal(self, signum, _frame) -> None:
        self.set(f"signal {signal.Signals(signum).name}")

    def _read_stdin(self) -> None:
        try:
            for line in sys.stdin:
                if line.strip() == STOP_LINE:
                    self.set("stop requested")
                    return
        except (OSError, ValueError):
            return

    def set(self, reason: str) -> None:
        if not self._event.is_set():
            self.reason = reason
            self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def agreed(self, any_rank: bool | None = None) -> bool:
        """Whether to stop now. In DDP `any_rank` is the all-reduced flag of every rank (the training step
        sends it together with the loss, one collective per step), so all ranks decide alike."""
        if any_rank is None:
            return self.is_set()
        if any_rank and not self.reason:
            self.reason = "stop requested on another rank"
        return any_rank

    def close(self) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


class ThreadShare:
    """The studio's share of the CPU cores for a run that trains on the CPU in one process: control.json in
    the run folder, {"threads": n}. It is read when it changes after the run started (one stat per step; a
    file left by an earlier session is not applied) and applied with torch.set_num_threads between steps,
    so a run can take every core while nothing else computes and give one back while the studio generates."""

    def __init__(self, run_dir: str, enabled: bool):
        self.path = os.path.join(run_dir, layout.CONTROL_JSON)
        self.enabled = enabled
        self._seen = self._mtime() if enabled else None

    def _mtime(self) -> int | None:
        try:
            return os.stat(self.path).st_mtime_ns
        except OSError:
            return None

    def poll(self) -> int | None:
        """The thread count now in use when the file asked for a change, else None."""
        if not self.enabled:
            return None
        mtime = self._mtime()
        if mtime is None or mtime == self._seen:
            return None
        self._seen = mtime
        n = layout.read_json(self.path).get("threads")
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 4 * (os.cpu_count() or 1) \
                or n == torch.get_num_threads():
            return None
        torch.set_num_threads(n)
        return n
