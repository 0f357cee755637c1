"""WorkspaceSession: the open workspace, a RunController per run, and the intents on runs.

The main window and the views observe it; creating, copying and forking runs, and deciding what to do
with running runs on close, happen here (the folder logic itself is in studio.workspace).
"""

from __future__ import annotations

import os

from PySide6.QtCore import QObject, QTimer, Signal

from studio.engine.run_controller import RunController
from studio.workspace.run import Run
from studio.workspace.workspace import Workspace

SUMMARY_MS = 1000  # how often running runs' rows (step, duration) are refreshed


class WorkspaceSession(QObject):
    """Everything about the workspace that outlives a selection."""

    workspace_opened = Signal(str)
    runs_changed = Signal()              # runs were added or removed
    run_updated = Signal(str)            # a run's summary (status, step, best val) changed
    run_finished = Signal(str, str, str)  # run folder, status, message

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.workspace: Workspace | None = None
        self.controllers: dict[str, RunController] = {}
        self._dirty: set[str] = set()
        self._timer = QTimer(self)
        self._timer.setInterval(SUMMARY_MS)
        self._timer.timeout.connect(self._on_timer_timeout)

    # ------------------------------------------------------------------ workspace
    def open(self, root: str) -> Workspace:
        self.close()
        self.workspace = Workspace.create(root)
        self.refresh()
        self._timer.start()
        self.workspace_opened.emit(self.workspace.root)
        return self.workspace

    def close(self, leave_running: bool = True) -> None:
        """Forget the workspace; running engines keep running (and are re-attached on reopen)."""
        for ctl in self.controllers.values():
            if leave_running:
                ctl.detach()
            ctl.deleteLater()
        self.controllers = {}
        self.workspace = None
        self._timer.stop()

    def refresh(self) -> None:
        """Rescan runs/ (new folders get a controller; past runs are read from their metrics)."""
        if self.workspace is None:
            return
        dirs = [r.dir for r in self.workspace.runs()]
        for d in dirs:
            if d not in self.controllers:
                self._add(Run(d))
        for d in [d for d in self.controllers if d not in dirs]:
            ctl = self.controllers.pop(d)
            ctl.detach()
            ctl.deleteLater()
        self.runs_changed.emit()

    def _add(self, run: Run) -> RunController:
        ctl = RunController(run, self)
        d = run.dir
        ctl.status_changed.connect(lambda _s, d=d: self.run_updated.emit(d))
        ctl.history_changed.connect(lambda d=d: self._dirty.add(d))
        ctl.run_finished.connect(lambda status, msg, d=d: self.run_finished.emit(d, status, msg))
        self.controllers[d] = ctl
        return ctl

    def runs(self) -> list[Run]:
        return [ctl.run for ctl in self.controllers.values()]

    def controller(self, run_dir: str) -> RunController | None:
        return self.controllers.get(os.path.abspath(run_dir)) if run_dir else None

    def running(self) -> list[RunController]:
        return [ctl for ctl in self.controllers.values() if ctl.is_running()]

    def summary(self, run_dir: str) -> dict:
        ctl = self.controllers[run_dir]
        s = ctl.summary()
        parent = ctl.run.parent_dir()
        s.update(dir=run_dir, parent_dir=parent if parent in self.controllers else None,
                 parent_name=os.path.basename(parent) if parent else None,
                 can_fork=bool(ctl.run.checkpoints()))
        return s

    def summaries(self) -> list[dict]:
        return [self.summary(d) for d in self.controllers]

    # ------------------------------------------------------------------ intents on runs
    def new_run(self, config_text: str, name: str = "run") -> Run:
        assert self.workspace is not None
        run = self.workspace.create_run(name, config_text)
        self._add(run)
        self.runs_changed.emit()
        return run

    def copy_run(self, run_dir: str) -> Run:
        assert self.workspace is not None
        run = self.workspace.new_run_from(Run(run_dir))
        self._add(run)
        self.runs_changed.emit()
        return run

    def fork_run(self, run_dir: str, checkpoint: str, changes: dict, name: str | None = None) -> Run:
        assert self.workspace is not None
        run = self.workspace.fork_run(Run(run_dir), checkpoint, changes, name)
        self._add(run)
        self.runs_changed.emit()
        return run

    def parent_history(self, run_dir: str):
        """(label, history) of the run this one was copied or forked from, if it is known."""
        ctl = self.controller(run_dir)
        parent = ctl.run.parent_dir() if ctl else None
        pctl = self.controllers.get(parent) if parent else None
        return (pctl.run.name, pctl.history) if pctl is not None and len(pctl.history.steps) else None

    def stop_all(self) -> None:
        for ctl in self.running():
            ctl.stop()

    # ------------------------------------------------------------------ slots
    def _on_timer_timeout(self) -> None:
        dirty, self._dirty = self._dirty, set()
        for d in dirty:
            if d in self.controllers:
                self.run_updated.emit(d)
