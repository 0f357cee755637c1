"""A run folder: its config, metrics.jsonl, checkpoints, engine logs, lineage and status.

The names and the checkpoint rule are core.layout's (shared with the engine). Layout (written by the
engine unless noted):
  config.yaml          the user's config (written by the studio; paths relative to this folder)
  metrics.jsonl        every event the engine emitted, appended across resumes
  run.json             {"pid", "status", "started", "ended", "parent", "argv", "versions"}
  checkpoints/step-NNNNNN/
  engine.log           the engine's stderr (written by the studio's launcher)
  engine.out           the engine's stdout of the latest launch (launcher)
  launcher.json        {"pid", "launcher_pid", "argv", "started"} of the latest launch (launcher)
  exit.json            {"code", "ended"} once that launch has exited (launcher)
  studio.json          lineage: {"kind": "copy"|"fork", "parent_run", "parent_checkpoint"} (studio)
"""

from __future__ import annotations

import math
import os
import time

from core import layout
from core.config import Config, ConfigError, load_config
from core.protocol import read_events
from studio.workspace.metrics import Checkpoint, RunHistory

STATUSES = ("new", "running", "done", "stopped", "failed")


def pid_alive(pid: int | None) -> bool:
    """Whether a process with this id exists (and is not a zombie)."""
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    try:  # a zombie is dead for our purposes (Linux)
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True


class Run:
    """One run folder. Cheap to construct; reads files on demand."""

    def __init__(self, run_dir: str) -> None:
        self.dir = os.path.abspath(run_dir)
        self.name = os.path.basename(self.dir)

    def path(self, name: str) -> str:
        return os.path.join(self.dir, name)

    @property
    def config_path(self) -> str:
        return self.path(layout.CONFIG)

    @property
    def metrics_path(self) -> str:
        return self.path(layout.METRICS)

    @property
    def log_path(self) -> str:
        return self.path(layout.ENGINE_LOG)

    @property
    def stdout_path(self) -> str:
        return self.path(layout.ENGINE_OUT)

    def __repr__(self) -> str:
        return f"Run({self.dir!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Run) and other.dir == self.dir

    def __hash__(self) -> int:
        return hash(self.dir)

    # ------------------------------------------------------------------ config
    def read_config_text(self) -> str:
        try:
            with open(self.config_path, encoding="utf-8") as fh:
                return fh.read()
        except OSError:
            return ""

    def write_config_text(self, text: str) -> None:
        layout.atomic_write(self.config_path, text)

    def config(self) -> Config:
        """The validated config with paths resolved against this folder; raises ConfigError."""
        return load_config(self.config_path)

    def config_or_none(self) -> Config | None:
        try:
            return self.config()
        except ConfigError:
            return None

    # ------------------------------------------------------------------ files
    def run_json(self) -> dict:
        return layout.read_json(self.path(layout.RUN_JSON))

    def launcher(self) -> dict:
        return layout.read_json(self.path(layout.LAUNCHER_JSON))

    def exit_info(self) -> dict:
        return layout.read_json(self.path(layout.EXIT_JSON))

    def lineage(self) -> dict:
        return layout.read_json(self.path(layout.STUDIO_JSON))

    def set_lineage(self, kind: str, parent_run: str | None, parent_checkpoint: str | None = None) -> None:
        layout.atomic_write_json(self.path(layout.STUDIO_JSON), {
            "kind": kind, "parent_run": parent_run, "parent_checkpoint": parent_checkpoint,
            "created": time.time()})

    def parent_dir(self) -> str | None:
        """The run folder this one was copied or forked from, if any."""
        parent = self.lineage().get("parent_run")
        if not parent:
            return None
        return os.path.normpath(os.path.join(self.dir, parent))

    def has_metrics(self) -> bool:
        return os.path.exists(self.metrics_path)

    def checkpoints(self) -> list[Checkpoint]:
        """Complete checkpoints (core.layout's rule, the engine's), oldest first."""
        return [Checkpoint(step, path) for step, path in layout.list_checkpoints(self.dir)]

    def created(self) -> float:
        """When the run folder was made (lineage record, else the config file's mtime)."""
        created = self.lineage().get("created")
        if isinstance(created, (int, float)):
            return float(created)
        try:
            return os.path.getmtime(self.config_path)
        except OSError:
            return 0.0

    # ------------------------------------------------------------------ history and status
    def load_history(self) -> RunHistory:
        history = RunHistory()
        history.apply_all(read_events(self.metrics_path))
        return history

    def engine_pid(self) -> int:
        """The pid to signal for a graceful stop: the launched engine (or torchrun) process."""
        pid = self.launcher().get("pid") or self.run_json().get("pid")
        try:
            return int(pid or 0)
        except (TypeError, ValueError):
            return 0

    def is_alive(self) -> bool:
        """Whether the latest launch of this run is still running."""
        launcher = self.launcher()
        if launcher:
            exit_info = self.exit_info()
            if exit_info and exit_info.get("started") == launcher.get("started"):
                return False
            return pid_alive(int(launcher.get("pid") or 0)) or pid_alive(int(launcher.get("launcher_pid") or 0))
        info = self.run_json()
        return info.get("status") == "running" and pid_alive(int(info.get("pid") or 0))

    def status(self, history: RunHistory | None = None) -> str:
        """new | running | done | stopped | failed."""
        if self.is_alive():
            return "running"
        history = history if history is not None else self.load_history()
        if history.close is not None:
            return status_of_close(history.close)
        if history.start is None and not self.launcher():
            return "new"
        return "failed"  # started but no close event and no process: it died


def status_of_close(ev: dict) -> str:
    return {"done": "done", "stopped": "stopped"}.get(str(ev.get("event")), "failed")


def format_duration(seconds: float) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "–"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {(s % 3600) // 60:02d}m"
