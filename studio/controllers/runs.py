"""WorkspaceSession: the open workspace, a RunController per run, its prepare jobs, and the intents on
runs.

The main window and the views observe it; opening a workspace (and preparing the demo's data), choosing
the run to show first, creating, copying and forking runs, the curves to overlay, and what happens to
running runs and prepare jobs on close are decided here (the folder logic itself is in studio.workspace).
"""

from __future__ import annotations

import os
import sys

from PySide6.QtCore import QFile, QFileSystemWatcher, QObject, QTimer, Signal

from core.layout import checkpoint_step
from studio import demo
from studio.controllers.prepare import PrepareJob, PrepareResult
from studio.controllers.prepare_request import PrepareRequest
from studio.controllers.run import RunController
from studio.workspace import annotations, evaluations
from studio.workspace.compare import CompareTable, compare_runs
from studio.workspace.metrics import RunHistory
from studio.workspace.run import Run
from studio.workspace.trash import move_to_trash
from studio.workspace.workspace import Workspace, with_changes

SUMMARY_MS = 1000  # how often running runs' rows (step, duration) are refreshed
RESCAN_TICKS = 3  # runs/ is listed every 3 summary ticks too (a watcher misses changes on some file systems)


class WorkspaceSession(QObject):
    """Everything about the workspace that outlives a selection."""

    workspace_opened = Signal(str)
    runs_changed = Signal()              # runs were added or removed
    run_updated = Signal(str)            # a run's summary (status, step, best val) changed
    run_finished = Signal(str, str, str)  # run folder, status, message
    run_gone = Signal(str, list)         # a run folder removed outside the studio, the run folders before
    data_changed = Signal()              # a data set was prepared (lists and start checks are stale)
    status_message = Signal(str, int)    # status bar text, milliseconds to show it (0: until replaced)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.workspace: Workspace | None = None
        self.controllers: dict[str, RunController] = {}
        self.prepare_job = PrepareJob(self)   # the Data tab's
        self.prepare_job.finished.connect(self._on_prepare_job_finished)
        self.demo_job = PrepareJob(self)      # the demo workspace's first-start data
        self.demo_job.progressed.connect(self._on_demo_job_progressed)
        self.demo_job.finished.connect(self._on_demo_job_finished)
        self._dirty: set[str] = set()
        self._timer = QTimer(self)
        self._timer.setInterval(SUMMARY_MS)
        self._timer.timeout.connect(self._on_timer_timeout)
        self._ticks = 0
        self._watcher = QFileSystemWatcher(self)  # runs/ as changed by a shell, a file manager, the trash
        self._watcher.directoryChanged.connect(lambda _path: self._rescan_soon.start())
        self._rescan_soon = QTimer(self, singleShot=True, interval=200)  # a copy makes many changes
        self._rescan_soon.timeout.connect(self.rescan)

    # ------------------------------------------------------------------ workspace
    def open(self, root: str) -> Workspace:
        self.close()
        self.workspace = Workspace.create(root)
        self.refresh()
        self._timer.start()
        self._watcher.addPath(self.workspace.runs_dir)
        self.workspace_opened.emit(self.workspace.root)
        return self.workspace

    def user_workspace(self) -> Workspace | None:
        """The open workspace unless it is the demo one (kept in the studio's own data folder, not a place
        to start looking for the user's folders)."""
        ws = self.workspace
        return None if ws is None or demo.is_demo_workspace(ws) else ws

    def close(self, leave_running: bool = True) -> None:
        """Forget the workspace; running engines keep running (and are re-attached on reopen)."""
        for ctl in self.controllers.values():
            if leave_running:
                ctl.detach()
            ctl.deleteLater()
        self.controllers = {}
        self.workspace = None
        self._timer.stop()
        if self._watcher.directories():
            self._watcher.removePaths(self._watcher.directories())

    def shutdown(self, stop_running: bool = False) -> None:
        """Application exit: stop runs gracefully if asked (they finish on their own, detached), follow
        nothing more, and end prepare jobs (they are children of the studio)."""
        if stop_running:
            self.stop_all()
        self.close(leave_running=True)
        for job in (self.prepare_job, self.demo_job):
            job.shutdown()

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

    def rescan(self) -> None:
        """Follow runs/ as changed outside the studio: a run restored from the trash, made by `llm-train` in a
        shell or copied in appears; one deleted or moved away goes (run_gone tells the window, which shows
        another). Nothing happens when the folders are the ones known (the studio's own changes)."""
        if self.workspace is None:
            return
        found = self.workspace.run_dirs()
        if found == set(self.controllers):
            return
        before = list(self.controllers)
        self.refresh()
        for d in before:
            if d not in found:
                self.run_gone.emit(d, before)

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

    def initial_run(self) -> str | None:
        """The run to show after opening: a running one, else the one shown last time, else the newest."""
        runs = self.runs()
        last = self.workspace.settings().get("current_run") if self.workspace is not None else None
        pick = ([r for r in runs if self.controllers[r.dir].is_running()] or [r for r in runs if r.dir == last]
                or runs[-1:])
        return pick[0].dir if pick else None

    def select(self, run_dir: str) -> RunController | None:
        """The run shown from now on (remembered in the workspace's settings for the next opening)."""
        ctl = self.controller(run_dir)
        if ctl is not None and self.workspace is not None:
            self.workspace.update_settings(current_run=ctl.run.dir)
        return ctl

    def summary(self, run_dir: str) -> dict:
        ctl = self.controllers[run_dir]
        s = ctl.summary()
        parent = ctl.run.parent_dir()
        s.update(dir=run_dir, parent_dir=parent if parent in self.controllers else None,
                 parent_name=os.path.basename(parent) if parent else None,
                 can_fork=bool(ctl.run.checkpoints()), continue_blocker=ctl.continue_blocker(),
                 tags=annotations.tags(run_dir),
                 notes=annotations.notes(run_dir), **evaluations.run_figures(run_dir))
        return s

    def summaries(self) -> list[dict]:
        return [self.summary(d) for d in self.controllers]

    # ------------------------------------------------------------------ intents on runs
    def new_run(self, config_text: str | None = None, name: str | None = None) -> Run | None:
        """A fresh run (the tiny config on the first data set unless `config_text` is given), named
        after its data set (`shakespeare-1`, `shakespeare-2`, ...) unless `name` is given."""
        if self.workspace is None:
            return None
        text = demo.default_config_text(self.workspace) if config_text is None else config_text
        run = self.workspace.create_run(name or self.default_run_name(text), text)
        self._add(run)
        self.runs_changed.emit()
        return run

    def copy_run(self, run_dir: str) -> Run:
        """'New from this'. Of an imported model: a run of its shape to train from scratch, on the data set
        a new run would take and a vocabulary from that data (the import's config pointed data.dir into the
        model's own folder, and its vocabulary was its tokenizer's)."""
        assert self.workspace is not None
        run = self.workspace.new_run_from(Run(run_dir), self.workspace.unique_run_name(f"{Run(run_dir).name}-2"))
        if Run(run_dir).lineage().get("kind") == "import":  # and its evaluations and samples as a new run's
            run.write_config_text(with_changes(run.read_config_text(), {
                "data.dir": f"../../data/{demo.default_data(self.workspace)}", "model.vocab_size": None,
                **IMPORT_COPY_TRAIN}))
        self._add(run)
        self.runs_changed.emit()
        return run

    def fork_run(self, run_dir: str, checkpoint: str, changes: dict, name: str | None = None) -> Run:
        """A run from `checkpoint` of `run_dir`'s with `changes`; a train.target_val_loss the parent had
        reached by then is cleared (the fork would end at its first evaluation) unless `changes` sets one."""
        assert self.workspace is not None
        ctl = self.controller(run_dir)
        if ctl is not None and fork_drops_target(ctl, checkpoint, changes) is not None:
            changes = {**changes, "train.target_val_loss": None}
        run = self.workspace.fork_run(Run(run_dir), checkpoint, changes, name)
        self._add(run)
        self.runs_changed.emit()
        return run

    def finetune_run(self, name: str, config_text: str, base_checkpoint: str) -> Run:
        """The run the Fine-tune dialog creates once its data is prepared (nested under the base's run)."""
        assert self.workspace is not None
        run = self.workspace.finetune_run(name, config_text, base_checkpoint)
        self._add(run)
        self.runs_changed.emit()
        return run

    def fork_defaults(self, run_dir: str) -> tuple[RunController, dict, str, dict[int, tuple[float, bool]]] | None:
        """(controller, its train settings, a free name, {checkpoint step: (the learning rate there, whether
        to go on from it rather than warm up again)}) for the fork dialog; None when it cannot fork."""
        from core.schedule import goes_on, lr_at

        ctl = self.controller(run_dir)
        checkpoints = ctl.run.checkpoints() if ctl is not None else []
        if self.workspace is None or not checkpoints:
            return None
        cfg = ctl.run.config_or_none()
        train = dict(cfg.train.__dict__) if cfg is not None else {}
        rates = {ck.step: (lr_at(ck.step, cfg.train), goes_on(ck.step, cfg.train))
                 for ck in checkpoints} if cfg is not None else {}
        step = checkpoints[-1].step
        return ctl, train, self.workspace.unique_run_name(f"{ctl.run.name}-from-{step}", counted=False), rates

    def default_run_name(self, config_text: str) -> str:
        """`<data set>-N`, the first N free (`run-N` when the config names no data set)."""
        from core.config import ConfigError, loads

        try:
            data = os.path.basename(os.path.normpath(loads(config_text).data.dir)) or "run"
        except ConfigError:
            data = "run"
        return self.workspace.unique_run_name(f"{data}-1") if self.workspace else f"{data}-1"

    def rename_run(self, run_dir: str, new_name: str) -> tuple[str | None, str]:
        """(the new folder, "") or (None, why not): never while it trains; names are validated."""
        ctl = self.controller(run_dir)
        if ctl is None:
            return None, "no such run"
        if ctl.is_running():
            return None, f"{ctl.run.name} is training: stop it before renaming it"
        try:
            new = annotations.rename_run(ctl.run, new_name.strip())
        except (ValueError, OSError) as exc:
            return None, str(exc)
        self._forget(ctl.run.dir)
        if self.workspace is not None and self.workspace.settings().get("current_run") == ctl.run.dir:
            self.workspace.update_settings(current_run=new.dir)
        self.refresh()  # children's lineage changed with it: rebuild the tree
        return new.dir, ""

    def delete_run(self, run_dir: str, trash: str | None = None) -> str:
        """Move the run folder to the desktop's trash; returns why not ("" when done)."""
        ctl = self.controller(run_dir)
        if ctl is None:
            return "no such run"
        if ctl.is_running():
            return f"{ctl.run.name} is training: stop it before deleting it"
        try:
            if sys.platform.startswith("linux") or trash is not None:
                move_to_trash(ctl.run.dir, trash)  # the freedesktop.org layout, restorable from the desktop
            elif not QFile.moveToTrash(ctl.run.dir):  # macOS Finder / Windows Recycle Bin
                raise OSError("the system refused to move it to the trash")
        except OSError as exc:
            return f"could not move {ctl.run.name} to the trash: {exc}"
        self._forget(ctl.run.dir)
        self.runs_changed.emit()
        return ""

    def data_users(self, name: str) -> list[RunController]:
        """The runs whose config trains on the data set WORKSPACE/data/<name>."""
        if self.workspace is None:
            return []
        path = os.path.realpath(os.path.join(self.workspace.data_dir, name))
        return [ctl for ctl in self.controllers.values()
                if (cfg := ctl.run.config_or_none()) is not None and os.path.realpath(cfg.data.dir) == path]

    def delete_data_set(self, name: str, trash: str | None = None) -> str:
        """Move WORKSPACE/data/<name> to the desktop's trash; returns why not ("" when done)."""
        if self.workspace is None:
            return "no workspace is open"
        path = os.path.join(self.workspace.data_dir, name)
        users = self.data_users(name)
        busy = [c.run.name for c in users if c.is_running()]
        if busy:
            return f"{', '.join(busy)} {'is' if len(busy) == 1 else 'are'} training on it: stop first"
        job = self.prepare_job
        if job.is_running() and job.request is not None and os.path.abspath(job.request.out) == os.path.abspath(path):
            return "it is being prepared"
        try:
            if sys.platform.startswith("linux") or trash is not None:
                move_to_trash(path, trash)
            elif not QFile.moveToTrash(path):
                raise OSError("the system refused to move it to the trash")
        except OSError as exc:
            return f"could not move it to the trash: {exc}"
        self.data_changed.emit()
        for ctl in users:  # their start checks now say the data is not prepared
            self.run_updated.emit(ctl.run.dir)
        return ""

    def _forget(self, run_dir: str) -> None:
        ctl = self.controllers.pop(run_dir, None)
        if ctl is not None:
            ctl.detach()
            ctl.deleteLater()

    def annotate(self, run_dir: str, notes: str | None = None, tags: list[str] | None = None) -> None:
        annotations.annotate(run_dir, notes, tags)
        self.run_updated.emit(run_dir)

    def all_tags(self) -> list[str]:
        return sorted({t for d in self.controllers for t in annotations.tags(d)})

    def continue_run(self, run_dir: str, more_steps: int, nproc: int = 1, device: str = "", threads: int = 0,
                     share: bool = False) -> str:
        """Raise train.max_steps of a finished (or stopped) run by `more_steps` and resume it from its
        latest checkpoint; returns why not ("" when the engine was launched)."""
        from core.config import ConfigError
        from core.config_text import apply_changes
        from studio.controllers.run import device_overrides

        ctl = self.controller(run_dir)
        if ctl is None:
            return "no such run"
        if why := ctl.continue_blocker():
            return why
        if more_steps <= 0:
            return "the number of more steps must be positive"
        problems = ctl.resume_problems(raising=True)  # e.g. a shape edit the engine would refuse: said here
        if problems:
            return problems[0]
        step = ctl.run.checkpoints()[-1].step
        changes = {"train.max_steps": max(step, ctl.planned_steps()) + more_steps, **restart_from(ctl.run, step)}
        if reached_target(ctl) is not None:  # kept, it ended the continuation at its first evaluation
            changes["train.target_val_loss"] = None
        try:
            ctl.run.write_config_text(apply_changes(ctl.run.read_config_text(), changes))
        except ConfigError as exc:
            return f"config.yaml cannot be edited: {exc}"
        if not ctl.start(resume=True, nproc=nproc, overrides=device_overrides(device), threads=threads, share=share):
            return ctl.message or "could not start the engine"
        return ""

    def compare(self, run_dirs: list[str]) -> CompareTable:
        ctls = [c for c in (self.controller(d) for d in run_dirs) if c is not None]
        return compare_runs([(c.run, c.history, c.status) for c in ctls])

    def overlays(self, run_dir: str, compared: list[str]) -> list[tuple[str, RunHistory, str]]:
        """Curves drawn behind a run's own: its parent's, then the runs ticked for comparison."""
        out = []
        parent = self.parent_history(run_dir)
        ctl = self.controller(run_dir)
        forked = ctl is not None and ctl.run.lineage().get("kind") == "fork"
        if parent is not None and forked:  # a copy ("New from this") starts afresh: not its parent's curve
            out.append((f"{parent[0]} (parent)", parent[1], "parent"))
        drawn = {os.path.abspath(run_dir)} | ({ctl.run.parent_dir()} if parent is not None and forked else set())
        for d in compared:
            ctl = self.controller(d)
            if ctl is not None and ctl.run.dir not in drawn:  # each run once in the legend
                out.append((ctl.run.name, ctl.history, "compare"))
        return out

    def parent_history(self, run_dir: str):
        """(label, history) of the run this one was copied or forked from, if it is known."""
        ctl = self.controller(run_dir)
        parent = ctl.run.parent_dir() if ctl else None
        pctl = self.controllers.get(parent) if parent else None
        return (pctl.run.name, pctl.history) if pctl is not None and len(pctl.history.steps) else None

    def stop_all(self) -> None:
        for ctl in self.running():
            ctl.stop()

    # ------------------------------------------------------------------ data
    def prepare(self, request: PrepareRequest) -> bool:
        """The Data tab's Prepare intent (the engine works in the workspace folder)."""
        return self.prepare_job.start(request, cwd=self.workspace.root if self.workspace else None)

    def prepare_demo_data(self) -> bool:
        """In the demo workspace, prepare its corpus in the background if it is not there yet (and write
        its examples where a demo workspace from an older version lacks them)."""
        ws = self.workspace
        if ws is None or not demo.is_demo_workspace(ws):
            return False
        demo.write_examples(ws.root)
        if demo.demo_data_ready(ws):
            return False
        if self.demo_job.is_running():
            return False
        self.status_message.emit("Preparing the demo data…", 0)
        return self.demo_job.start(demo.prepare_request(ws))

    def _on_demo_job_progressed(self, stage: str, done: int, total: int) -> None:
        if total:
            self.status_message.emit(f"Preparing the demo data: {stage} {100.0 * done / total:.0f}%", 0)

    def _on_demo_job_finished(self, result: PrepareResult) -> None:
        if result.ok:
            here = self.workspace is not None and demo.is_demo_workspace(self.workspace)  # not switched away
            self.status_message.emit("Demo data ready: press Start (Ctrl+R) to train the demo run" if here
                                     else "Demo data ready (File > Open Demo Workspace)", 15000)
            self.data_changed.emit()
        else:
            why = result.failure.headline if result.failure is not None else result.status
            self.status_message.emit(f"Preparing the demo data failed: {why}", 0)

    def _on_prepare_job_finished(self, result: PrepareResult) -> None:
        if result.ok:
            self.data_changed.emit()

    def give_data(self, out: str) -> list[str]:
        """The runs waiting for data (never started, their data set never prepared: New in a workspace
        without data names the demo's) train on the data set just prepared at `out`; the demo's attention
        probe goes with the demo data. Returns the runs' names."""
        from core.layout import is_data_dir
        from studio.workspace.workspace import with_changes, without_keys

        ws = self.workspace
        if ws is None:
            return []
        data = out if os.path.isabs(out) else os.path.join(ws.root, out)
        given = []
        for run_dir, ctl in self.controllers.items():
            if ctl.status != "new" or ctl.is_running():
                continue
            cfg = ctl.run.config_or_none()
            if cfg is None or is_data_dir(cfg.data.dir):
                continue
            text = with_changes(ctl.run.read_config_text(), {"data.dir": os.path.relpath(data, ctl.run.dir)})
            if cfg.run.attention_probe == demo.DEMO_PROBE_TEXT:
                text = without_keys(text, ("run.attention_probe",))
            ctl.run.write_config_text(text)
            given.append(ctl.run.name)
            self.run_updated.emit(run_dir)
        return given

    # ------------------------------------------------------------------ slots
    def _on_timer_timeout(self) -> None:
        self._ticks += 1
        if self._ticks % RESCAN_TICKS == 0:
            self.rescan()
        dirty, self._dirty = self._dirty, set()
        for d in dirty:
            if d in self.controllers:
                self.run_updated.emit(d)


# "New from this" of an imported model: the importer's train section is the engine's defaults (an evaluation
# every 250 steps, no samples); a run trained from scratch here shows its learning as a new run does
IMPORT_COPY_TRAIN = {"train.eval_interval": 50, "train.checkpoint_interval": 100, "train.sample_tokens": 120}


def reached_target(ctl: RunController, step: int | None = None) -> float | None:
    """The run's train.target_val_loss when a validation loss (up to `step`, else any) has reached it, else
    None: a run continued with it trained 25 of the 87 more steps asked and ended again, "target reached"
    (a fork from a checkpoint before the target keeps it: the time to reach it is what it compares)."""
    cfg = ctl.run.config_or_none()
    target = cfg.train.target_val_loss if cfg is not None else None
    evals = ctl.history.evals
    losses = [v for s, v in zip(evals["step"].tolist(), evals["val_loss"].tolist(), strict=True)
              if step is None or s <= step]
    return target if target is not None and any(v <= target for v in losses) else None  # NaN compares False


def fork_drops_target(ctl: RunController, checkpoint: str, changes: dict) -> float | None:
    """The train.target_val_loss a fork from `checkpoint` with `changes` drops: one reached by then (the fork
    would end at its first evaluation), unless `changes` sets one of its own; None when it drops none."""
    step = checkpoint_step(checkpoint)
    if step is None or "train.target_val_loss" in changes:
        return None
    return reached_target(ctl, step)


def restart_from(run: Run, step: int) -> dict:
    """The config changes that start the run's schedule over at `step` (core.schedule): a fresh warm-up to
    train.lr and a new decay once its decay had begun (that trains further than going on at the rate it had
    reached; see core.schedule.goes_on), going on at its rate while it was at its peak; empty when the config
    cannot be read (the engine then says why)."""
    from core.schedule import goes_on, lr_at

    cfg = run.config_or_none()
    if cfg is None:
        return {}
    rate = float(f"{lr_at(step, cfg.train):.6g}") if goes_on(step, cfg.train) else None
    return {"train.restart_step": step, "train.restart_lr": rate}
