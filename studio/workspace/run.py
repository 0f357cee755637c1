"""A run folder: its config, metrics.jsonl, checkpoints, engine logs, lineage and status.

The names and the checkpoint rule are core.layout's (shared with the engine). Layout (written by the
engine unless noted):
  config.yaml          the user's config (written by the studio; paths relative to this folder)
  metrics.jsonl        every event the engine emitted, appended across resumes
  run.json             {"pid", "status", "started", "ended", "parent", "argv", "versions"}
  checkpoints/step-NNNNNN/
  engine.log           the engine's stderr (written by the studio's launcher)
  engine.out           the engine's stdout of the latest launch (launcher)
  launcher.json        {"pid", "launcher_pid", "argv", "started", "pid_fingerprint",
                        "launcher_fingerprint"} of the latest launch (launcher; fingerprints: proc.py)
  exit.json            {"code", "ended"} once that launch has exited (launcher)
  studio.json          lineage: {"kind": "copy"|"fork", "parent_run", "parent_checkpoint"} (studio)

Every file is read through studio.workspace.validate: a damaged one reads as missing and is described by
`problems()`; a run with problems has the status "damaged". A recorded pid counts as this run's process
only when studio.workspace.proc proves it (live_pids).
"""

from __future__ import annotations

import math
import os
import time

from core import layout
from core.config import Config, ConfigError, Problem, load_config
from core.protocol import is_close
from studio.workspace import validate
from studio.workspace.metrics import Checkpoint, RunHistory
from studio.workspace.proc import (
    PID_MAX,
    lock_holders,
    pid_alive,
    runs_command,
    same_process,
    started_by,
    valid_pid,
)
from studio.workspace.tail import EventTail

__all__ = ["STATUSES", "Run", "format_duration", "pid_alive", "status_of_close"]

LOCK = getattr(layout, "RUN_LOCK", ".lock")  # held by the engine while it trains (flock)
STATUSES = ("new", "imported", "running", "done", "stopped", "failed", "damaged")


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
    def read_config_text(self, problems: list[str] | None = None) -> str:
        """config.yaml's text ("" when it is missing or damaged: not UTF-8, a folder, ...)."""
        text = validate.read_text(self.config_path, [] if problems is None else problems)
        return text or ""

    def write_config_text(self, text: str) -> None:
        layout.atomic_write(self.config_path, text)

    def config(self) -> Config:
        """The validated config with paths resolved against this folder; raises ConfigError."""
        problems: list[str] = []
        validate.read_text(self.config_path, problems)
        if problems:  # load_config would raise UnicodeDecodeError & co., not ConfigError
            raise ConfigError([Problem("", problems[0])])
        return load_config(self.config_path)

    def config_or_none(self) -> Config | None:
        try:
            return self.config()
        except (ConfigError, ValueError, OSError, RecursionError):
            return None

    # ------------------------------------------------------------------ files
    # Each reader returns {} for a missing or damaged file; pass `problems` to learn what was wrong.
    def run_json(self, problems: list[str] | None = None) -> dict:
        return validate.read_object(self.path(layout.RUN_JSON), [] if problems is None else problems)

    def launcher(self, problems: list[str] | None = None) -> dict:
        return validate.read_object(self.path(layout.LAUNCHER_JSON), [] if problems is None else problems)

    def exit_info(self, problems: list[str] | None = None) -> dict:
        return validate.read_object(self.path(layout.EXIT_JSON), [] if problems is None else problems)

    def ended(self, close_event: dict | None) -> tuple[dict | None, int]:
        """(close event, exit code) of the last launch once it has ended, in classify()'s order: the close
        event given (from metrics.jsonl), else the one on the engine's stdout (errors found before it opened
        metrics.jsonl: a bad config, a device it lacks); the code from exit.json (-1 unknown: killed or found
        dead, 0 when unknown but a close event came)."""
        if close_event is None:
            out = EventTail(self.stdout_path)  # reads nothing from a damaged file, never raises
            close_event = next((ev for ev in out.read_all() + out.flush() if is_close(ev)), None)
        code = self.exit_info().get("code")
        ok = isinstance(code, int) and not isinstance(code, bool) and -(1 << 31) <= code < (1 << 31)
        return close_event, (code if ok else (-1 if close_event is None else 0))

    def lineage(self, problems: list[str] | None = None) -> dict:
        return validate.read_object(self.path(layout.STUDIO_JSON), [] if problems is None else problems)

    def set_lineage(self, kind: str, parent_run: str | None, parent_checkpoint: str | None = None) -> None:
        layout.atomic_write_json(self.path(layout.STUDIO_JSON), {
            "kind": kind, "parent_run": parent_run, "parent_checkpoint": parent_checkpoint,
            "created": time.time()})

    def parent_dir(self) -> str | None:
        """The run folder this one was copied or forked from, if any."""
        parent = self.lineage().get("parent_run")
        if not parent or not isinstance(parent, str) or "\0" in parent:
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
        if isinstance(created, (int, float)) and not isinstance(created, bool) and math.isfinite(created):
            return float(created)
        try:
            return os.path.getmtime(self.config_path)
        except OSError:
            return 0.0

    # ------------------------------------------------------------------ history and status
    def load_history(self) -> RunHistory:
        history = RunHistory()
        if validate.file_problem(self.metrics_path) is None:
            tail = EventTail(self.metrics_path)
            history.apply_all(tail.read_all() + tail.flush())
            history.note_bad_lines(tail.bad)
        return history

    def live_pids(self) -> tuple[int, int]:
        """(engine pid, launcher pid) of this run's latest launch, each 0 unless that process is running
        and provably the one recorded (start time and command line, core of issue 14): a pid alone may
        belong to anybody after the run ended, a reboot or pid reuse. exit.json present: the launch ended."""
        launcher = self.launcher()
        if launcher:
            if os.path.lexists(self.path(layout.EXIT_JSON)):
                return 0, 0
            pid, lpid = valid_pid(launcher.get("pid")), valid_pid(launcher.get("launcher_pid"))
            fp, lfp = launcher.get("pid_fingerprint"), launcher.get("launcher_fingerprint")
            # A launcher.json of an older studio has no fingerprints: its exact engine argv must match.
            engine = pid if pid and (same_process(pid, fp) if isinstance(fp, dict)
                                     else runs_command(pid, launcher.get("argv"), exact=True)) else 0
            return engine or 0, lpid if lpid and same_process(lpid, lfp) else 0
        return self._run_json_pid(), 0

    def _run_json_pid(self) -> int:
        """The pid of run.json (an engine started by hand) if it provably runs this run's latest session."""
        info = self.run_json()
        pid = valid_pid(info.get("pid"))
        sessions = info.get("sessions")
        last = sessions[-1] if isinstance(sessions, list) and sessions and isinstance(sessions[-1], dict) else {}
        argv, started = last.get("argv"), validate.get_float(last, "started", [], "")
        if info.get("status") != "running" or not pid or started is None or not started_by(pid, started):
            return 0
        # The engine's run-folder lock held by that very pid proves it; else its recorded command line.
        proven = pid in (lock_holders(self.path(LOCK)) or ()) or runs_command(pid, argv) or (
            isinstance(argv, list) and len(argv) > 1 and runs_command(pid, argv[1:]))
        return pid if proven else 0

    def engine_pid(self) -> int:
        """The pid to signal for a graceful stop: the running engine's, if it is provably ours (else 0)."""
        return self.live_pids()[0]

    def is_alive(self) -> bool:
        """Whether the latest launch of this run is still running (provably: see live_pids)."""
        return any(self.live_pids())

    def problems(self, history: RunHistory | None = None) -> list[str]:
        """What is damaged in this run folder (empty when nothing is): each file it holds is read and
        checked for type, range and encoding (studio.workspace.validate), plus `history`'s bad events."""
        problems: list[str] = []
        self.read_config_text(problems)
        metrics = validate.file_problem(self.metrics_path)
        if metrics:
            problems.append(metrics)
        launcher = self.launcher(problems)
        validate.get_int(launcher, "pid", problems, layout.LAUNCHER_JSON, 1, PID_MAX)
        validate.get_int(launcher, "launcher_pid", problems, layout.LAUNCHER_JSON, 1, PID_MAX)
        validate.get_str_list(launcher, "argv", problems, layout.LAUNCHER_JSON)
        info = self.run_json(problems)
        validate.get_int(info, "pid", problems, layout.RUN_JSON, 1, PID_MAX)
        validate.get_str(info, "status", problems, layout.RUN_JSON)
        exit_info = self.exit_info(problems)
        validate.get_int(exit_info, "code", problems, layout.EXIT_JSON, -(1 << 31), 1 << 31)
        lineage = self.lineage(problems)
        validate.get_str(lineage, "kind", problems, layout.STUDIO_JSON)
        validate.get_str(lineage, "parent_run", problems, layout.STUDIO_JSON)
        for ckpt in self.checkpoints():
            validate.read_object(os.path.join(ckpt.path, layout.META), problems)
        if history is not None:
            problems.extend(history.problems)
        return problems

    def status(self, history: RunHistory | None = None) -> str:
        """new | imported | running | done | stopped | failed | damaged (a file of the folder cannot be trusted).

        imported: a pretrained model brought in with File > Import Model (lineage kind "import"), never
        trained here: a base model to talk to, inspect, fine-tune or export, not a run to start."""
        if self.is_alive():
            return "running"
        history = history if history is not None else self.load_history()
        if self.problems(history):
            return "damaged"
        if history.close is not None:
            return status_of_close(history.close)
        if history.start is None and not self.launcher():
            return "imported" if self.lineage().get("kind") == "import" else "new"
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
    if s < 48 * 3600:
        return f"{s // 3600}h {(s % 3600) // 60:02d}m"
    return f"{s // 86400}d {(s % 86400) // 3600:02d}h"  # a GPT-2-sized run on a laptop CPU: 646d 06h


# The indirect-object sentence of interpretability studies: at "to", heads of a trained model look at "Mary".
IMPORTED_PROBE = "When Mary and John went to the store, John gave a drink to"


def probe_text(run: Run, max_chars: int = 160) -> str | None:
    """The text the Attention tab starts with for `run`: its config's run.attention_probe when the config
    sets one, else for an imported model IMPORTED_PROBE, else the first lines of its data set's sample (the
    Data tab's preview.json: text like what it learned), else None (the panel keeps its own default)."""
    cfg = run.config_or_none()
    if cfg is None:
        return None
    if cfg.run.attention_probe:
        return cfg.run.attention_probe
    if run.lineage().get("kind") == "import":  # a pretrained model's data is not here: a classic English probe
        return IMPORTED_PROBE
    pieces = layout.read_json(os.path.join(cfg.data.dir, layout.PREVIEW)).get("pieces")
    if not isinstance(pieces, list) or not all(isinstance(p, str) for p in pieces):
        return None
    text = "".join(pieces).lstrip("\n")
    if len(text) > max_chars:  # whole lines when there are some, else a cut
        cut = text.rfind("\n", 0, max_chars)
        text = text[:cut] if cut > 0 else text[:max_chars]
    return text.rstrip("\n") or None
