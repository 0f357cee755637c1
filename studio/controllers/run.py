"""RunController: one run's model (history, status, console) kept up to date from its engine.

It owns the business rules of running: what can be started or resumed, saving the edited config before a
start, starting, stopping, re-attaching to an engine left running, and what a failure says (through
studio.engine.failure). The engine process itself is a studio.engine.training.TrainingJob. Views observe
the controller's signals; the main window routes their intents to it.
"""

from __future__ import annotations

import collections
import math
import os
import threading
from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal, Slot

from core import layout
from core.config import Config, ConfigError, Problem, loads
from core.shape import shape_problems
from studio.controllers import engine_info
from studio.engine.command import torchrun_command, train_args
from studio.engine.failure import classify
from studio.engine.training import TrainingJob
from studio.workspace import validate
from studio.workspace.metrics import RunHistory, event_line
from studio.workspace.run import Run, format_duration, status_of_close
from studio.workspace.tail import EventTail, file_size, read_last_lines
from studio.workspace.workspace import device_problem, launch_problems

LOG_TAIL_BYTES = 16384  # of engine.log, read back when a past run is loaded
# A metrics.jsonl bigger than this is replayed in a worker thread, so that opening a workspace with long runs
# never freezes the window (100k steps at log_interval 1 are ~20 MB and take seconds to parse and fold in);
# smaller ones (a few thousand events) are read at once.
ASYNC_REPLAY_BYTES = 2 * 1024 * 1024


@dataclass
class Replay:
    """A run's metrics.jsonl read and folded in: pure Python, built in the GUI thread or a worker thread."""

    history: RunHistory
    console: list[str]   # the console lines of the last CONSOLE_KEEP notable events
    tail: EventTail      # where the file was read to (a follower continues there), its unterminated tail


def replay(metrics_path: str, keep: int) -> Replay:
    tail = EventTail(metrics_path)
    events = tail.read_all() if validate.file_problem(metrics_path) is None else []
    history = RunHistory()
    history.apply_all(events)
    lines: collections.deque[str] = collections.deque(maxlen=keep)
    for ev in reversed(events):  # only the last `keep` lines are kept: build no more than those
        line = event_line(ev)
        if line:
            lines.appendleft(line)
            if len(lines) == keep:
                break
    return Replay(history, list(lines), tail)


class RunController(QObject):
    """One run: its history (replayed from metrics.jsonl, then live) and its engine job."""

    history_changed = Signal()            # new events were folded in (views coalesce redraws)
    event_received = Signal(object)  # a dict, passed through as the Python object
    status_changed = Signal(str)          # new | running | done | stopped | failed
    stderr_received = Signal(str)
    console_line = Signal(str)            # a stderr line, or a notable event in words
    run_started = Signal()
    run_finished = Signal(str, str)       # final status, a message for the user ("" when all went well)
    _replayed = Signal(int, object)       # (load generation, Replay), from the replay thread

    STDERR_KEEP = 400
    CONSOLE_KEEP = 2000

    def __init__(self, run: Run, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.run = run
        self.history = RunHistory()
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=self.STDERR_KEEP)
        self.console: collections.deque[str] = collections.deque(maxlen=self.CONSOLE_KEEP)
        self.status = "new"
        self.message = ""
        self.problems: list[str] = []         # what is damaged in the run folder (studio.workspace.validate)
        self.job: TrainingJob | None = None
        self.stopping = False
        self.loading = False                  # a long history is being replayed in a worker thread
        self._shape_cache: tuple[str, dict] = ("", {})  # the last checkpoint's model section read
        self._generation = 0
        self._replayed.connect(self._on_replayed)
        self.reload()

    # ------------------------------------------------------------------ loading
    def reload(self) -> None:
        """Replay metrics.jsonl and, when the run is still running, follow it (re-attach). A long history is
        replayed in a worker thread: meanwhile the status is "loading" and the history empty; the views are
        told with history_changed / status_changed when it is in."""
        if self.job is not None and self.job.is_running():
            return
        log_offset = file_size(self.run.log_path)
        self._generation += 1
        self.history = RunHistory()
        self.stderr_tail.clear()
        self.console.clear()
        self._load_log_tail()
        path, keep = self.run.metrics_path, self.CONSOLE_KEEP
        if file_size(path) <= ASYNC_REPLAY_BYTES:
            self._apply_replay(replay(path, keep), log_offset)
            return
        self.loading = True
        self._set_status("loading")
        generation = self._generation

        def work() -> None:
            try:
                result = replay(path, keep)
            except Exception as exc:  # noqa: BLE001 - reported in the console, never a traceback
                result = exc
            try:
                self._replayed.emit(generation, (result, log_offset))
            except RuntimeError:  # the controller was deleted meanwhile (workspace closed)
                pass

        threading.Thread(target=work, name=f"replay {self.run.name}", daemon=True).start()
        self.history_changed.emit()

    @Slot(int, object)
    def _on_replayed(self, generation: int, payload) -> None:
        if generation != self._generation:  # a newer reload (or a start) superseded this one
            return
        result, log_offset = payload
        self.loading = False
        if isinstance(result, Exception):
            path = self.run.metrics_path
            result = Replay(RunHistory(), [f"[studio] could not read {path}: {result}"],
                            EventTail(path, file_size(path)))
        self._apply_replay(result, log_offset)

    def _apply_replay(self, result: Replay, log_offset: int) -> None:
        """Adopt a replayed history; re-attach to the engine when it still runs, else read the file's torn
        last line and settle the status."""
        tail = result.tail
        self.history = result.history
        self.console.extend(result.console)
        job = self._new_job()
        attached = job.attach(tail.complete_offset, log_offset)  # a follower continues at the first line not read
        if not attached:  # the run has ended: its unterminated last line (if any) is all there will be
            for ev in tail.flush():
                self.history.apply(ev)
                line = event_line(ev)
                if line:
                    self.console.append(line)
        self.history.note_bad_lines(tail.bad)
        self.problems = self.run.problems(self.history)
        if attached:
            self._set_status("running")
        else:
            self._set_status("damaged" if self.problems else self.run.status(self.history))
            if self.status == "failed":  # the same words as when it failed in front of the user
                self.message = classify(*self.run.ended(self.history.close), list(self.stderr_tail)).text()
            elif self.status == "damaged":
                self.message = damage_text(self.problems)
        self.history_changed.emit()

    def _load_log_tail(self) -> None:
        lines = read_last_lines(self.run.log_path, LOG_TAIL_BYTES)
        self.stderr_tail.extend(lines[-self.STDERR_KEEP:])
        self.console.extend(lines[-self.STDERR_KEEP:])

    def _new_job(self) -> TrainingJob:
        if self.job is not None:
            self.job.deleteLater()
        job = TrainingJob(self.run, self)
        job.event_received.connect(self._on_job_event_received)
        job.stderr_received.connect(self._on_job_stderr_received)
        job.finished.connect(self._on_job_finished)
        job.failed_to_start.connect(self._on_job_failed_to_start)
        self.job = job
        return job

    # ------------------------------------------------------------------ facts for views
    def is_running(self) -> bool:
        return self.job is not None and self.job.is_running()

    def failed_in_setup(self) -> bool:
        """The engine refused the run before its first step (bad config, max_steps not beyond the
        checkpoint, ...): nothing was trained, so the run stays editable and may be started again."""
        return (self.status == "failed" and self.history.start is None and not len(self.history.steps)
                and not self.run.checkpoints())

    def startable(self) -> bool:
        """Whether Start (not Resume) applies: a new run, or one the engine refused during set-up."""
        return not self.is_running() and (self.status == "new" or self.failed_in_setup())

    def save_config_text(self, text: str) -> bool:
        """Keep the edited config (the editor's exact text, comments and all) in config.yaml, atomically;
        False when there was nothing to write or the run is training (its config is then in use)."""
        if self.is_running() or not text.strip() or text == self.run.read_config_text():
            return False
        self.run.write_config_text(text)
        return True

    def continue_blocker(self) -> str:
        """Why Continue for More Steps does not apply to this run now ("" when it does)."""
        name = self.run.name
        if self.is_running():
            return f"{name} is training"
        if self.status == "imported":
            return (f"{name} is an imported model, not trained here: fine-tune it on your data instead "
                    f"(Run → Fine-tune on My Data…)")
        if self.status not in ("done", "stopped", "failed"):
            return f"{name} has not trained yet: Start trains it"
        return "" if self.run.checkpoints() else f"{name} has no checkpoint to continue from"

    def can_resume(self) -> bool:
        return not self.is_running() and self.status in ("stopped", "failed") and bool(self.run.checkpoints())

    def edit_lock(self) -> str | None:
        """Why the config cannot be edited now (None when it can): a training run's config is in use, or the
        run is an imported model (its config describes weights trained elsewhere; nothing trains here)."""
        if self.status == "imported":
            return (f"{self.run.name} is a pretrained model imported from elsewhere: this is its architecture, "
                    f"read-only. To train it on your data: Run → Fine-tune on My Data… (Ctrl+Shift+U); New "
                    f"from this makes a new run of this shape, trained from scratch.")
        if not self.is_running():
            return None
        return (f"{self.run.name} is training with this config, so it cannot be edited now. Stop it to change "
                f"what a resume may change (steps, learning rate, evaluation), or use New from this for a "
                f"changed copy.")

    def shape_problems(self, cfg: Config) -> list[Problem]:
        """Where `cfg`'s model differs from the shape the engine will hold it to (core.shape): the run's
        latest checkpoint once it has one (a resume keeps it), else train.init_from's (a fork or a
        fine-tune starts from those weights); empty when neither applies or the checkpoint is unreadable."""
        checkpoints = self.run.checkpoints()
        if checkpoints:
            path = checkpoints[-1].path
            source = f"{self.run.name}/{layout.CHECKPOINTS}/{os.path.basename(path)}"
            rule = "a trained run keeps its shape; New from this makes a run with the new one"
        elif cfg.train.init_from:
            path = source = cfg.train.init_from
            rule = "a fork or fine-tune starts from those weights, so it keeps their shape"
        else:
            return []
        model = self._checkpoint_model(path)
        return shape_problems(cfg.model, model, source, unset_vocab_ok=True, rule=rule) if model else []

    def _checkpoint_model(self, path: str) -> dict | None:
        """The model section of a checkpoint's meta.json (None when unreadable: a missing or damaged
        checkpoint is reported where it is used). A complete checkpoint does not change, and the editor asks
        at every edit: what was read is kept, per path."""
        if self._shape_cache[0] == path:
            return self._shape_cache[1]
        try:
            model = layout.read_checkpoint_meta(path).get("config", {}).get("model")
        except (ValueError, OSError, AttributeError):
            return None
        if not isinstance(model, dict):
            return None
        self._shape_cache = (path, model)
        return model

    def resume_problems(self, config_text: str | None = None, device: str = "", raising: bool = False) -> list[str]:
        """Why Resume would be refused by the engine's set-up (`device`: the Training bar's choice); `raising`:
        the caller raises train.max_steps before it resumes (Continue), so its value now is not checked."""
        try:
            cfg = loads(self.run.read_config_text() if config_text is None else config_text, base_dir=self.run.dir)
        except ConfigError as exc:
            return [p.message for p in exc.problems][:3]
        no_device = device_problem(device or cfg.train.device, engine_info.known())
        if no_device:
            return [no_device]
        checkpoints = self.run.checkpoints()
        if checkpoints and not raising and cfg.train.max_steps <= checkpoints[-1].step:  # the engine's rule
            return [f"train.max_steps: {cfg.train.max_steps} is not beyond the checkpoint's step "
                    f"{checkpoints[-1].step}; raise train.max_steps to train further"]
        return [p.message for p in self.shape_problems(cfg)]

    def resume_note(self, config_text: str | None = None) -> str:
        """What Resume will do to the learning rate when the schedule's settings changed since the latest
        checkpoint (core.schedule.resume_jump: a lowered max_steps drops the rate at once), said beside it
        before anything is launched; empty otherwise."""
        if not self.can_resume():
            return ""
        try:
            cfg = loads(self.run.read_config_text() if config_text is None else config_text, base_dir=self.run.dir)
        except ConfigError:
            return ""
        from core.schedule import resume_jump

        latest = self.run.checkpoints()[-1]
        saved = (layout.read_checkpoint_meta(latest.path).get("config") or {}).get("train")
        jump = resume_jump(latest.step, saved if isinstance(saved, dict) else {}, cfg.train)
        return f"Resume: {jump}." if jump else ""

    def start_problems(self, config_text: str | None = None, device: str = "") -> list[str]:
        """Why Start is not possible right now (empty when it is)."""
        if self.is_running():
            return ["the run is already running"]
        if self.history.start is not None or file_size(self.run.metrics_path) > 0:
            return ["this run has already been started: resume it, or make a new run from it"]
        return (launch_problems(self.run, config_text, device, engine_info.known())
                or self._init_from_problems(config_text))

    def _init_from_problems(self, config_text: str | None) -> list[str]:
        """The engine's set-up rules for a fork or fine-tune, checked before launching (core.train refuses
        otherwise, after the user pressed Start): the checkpoint's shape, and a fork must train beyond its
        checkpoint's step."""
        try:
            cfg = loads(self.run.read_config_text() if config_text is None else config_text, base_dir=self.run.dir)
        except ConfigError:
            return []
        shape = [p.message for p in self.shape_problems(cfg)]
        if shape:
            return shape
        step = fork_step(cfg)
        if step is not None and cfg.train.max_steps <= step:
            return [f"train.max_steps: {cfg.train.max_steps} is not beyond the checkpoint's step {step}; "
                    f"raise train.max_steps to train further"]
        return []

    def planned_steps(self, config_text: str | None = None) -> int:
        """train.max_steps of the run's saved config, or of `config_text` (the editor's), 0 when it does not
        load: the progress bar's end before the engine's `start` event says it."""
        if config_text is None:
            cfg = self.run.config_or_none()
            return cfg.train.max_steps if cfg is not None else 0
        try:
            return loads(config_text, base_dir=self.run.dir).train.max_steps
        except ConfigError:
            return 0

    def planned_start(self) -> int:
        """The step a new run starts at: a fork's checkpoint step (it keeps the step count, as the engine
        does for train.init_from without fine-tuning), else 0; the progress bar's start before the engine's
        `start` event says it."""
        cfg = self.run.config_or_none()
        return (fork_step(cfg) or 0) if cfg is not None else 0

    def start_blockers(self, config_text: str | None = None, device: str = "") -> list[str]:
        """What the Start or Resume button shows while disabled: start_problems() of a startable run,
        resume_problems() of a resumable one, else nothing."""
        if self.startable():
            return self.start_problems(config_text, device)
        return self.resume_problems(config_text, device) if self.can_resume() else []

    def summary(self) -> dict:
        """The figures a run list shows."""
        h = self.history
        return {"name": self.run.name, "status": self.status, "step": h.step, "max_steps": h.max_steps,
                "best_val_loss": h.best_val_loss, "duration": format_duration(h.elapsed_s) if len(h.steps)
                else "–", "lineage": self.run.lineage(), "problems": list(self.problems)}

    # ------------------------------------------------------------------ intents
    def request_start(self, config_text: str | None = None, resume: bool = False, nproc: int = 1,
                      device: str = "", threads: int = 0, share: bool = False) -> list[str]:
        """The Start/Resume intent: save `config_text` (the edited config) and start or resume; returns
        why it could not (empty when the engine was launched). `device` overrides train.device; `threads`
        is the engine's --threads (0 = torch's default), `share` its --share-cores."""
        if resume:
            if not self.can_resume():
                return ["nothing to resume: the run is running, new or has no checkpoint"]
            if config_text is not None:  # an edit still waiting for the autosave: the engine reads the file
                self.save_config_text(config_text)
            problems = self.resume_problems(device=device)
            if problems:
                return problems
        else:
            problems = self.start_problems(config_text, device)
            if problems:
                return problems
            if config_text is not None:
                self.run.write_config_text(config_text)
        if not self.start(resume=resume, nproc=nproc, overrides=device_overrides(device), threads=threads,
                          share=share):
            return [self.message or "could not start the engine"]
        return []

    def start(self, resume: bool = False, nproc: int = 1, overrides: list[str] | tuple[str, ...] = (),
              threads: int = 0, share: bool = False) -> bool:
        if self.is_running():
            return False
        self.message = ""
        self.stopping = False
        if resume:
            self.stderr_tail.clear()
        job = self._new_job()
        if not job.start(resume=resume, nproc=nproc, overrides=overrides, threads=threads, share=share):
            return False
        self._set_status("running")
        self.run_started.emit()
        return True

    def stop(self) -> None:
        """Graceful: the engine finishes its step and writes a checkpoint before it exits."""
        if self.is_running():
            self.stopping = True
            self.job.stop()

    def kill(self) -> None:
        if self.is_running():
            self.job.kill()

    def detach(self) -> None:
        """Stop following without stopping the engine (the studio is closing; 'leave it running')."""
        if self.job is not None:
            self.job.detach()

    # ------------------------------------------------------------------ slots
    def _on_job_event_received(self, ev: dict) -> None:
        self.history.apply(ev)
        self.event_received.emit(ev)
        self.history_changed.emit()
        line = event_line(ev)
        if line:
            self.console.append(line)
            self.console_line.emit(line)

    def _on_job_stderr_received(self, line: str) -> None:
        self.stderr_tail.append(line)
        self.console.append(line)
        self.stderr_received.emit(line)
        self.console_line.emit(line)

    def _on_job_finished(self, exit_code: int, close_event: dict | None) -> None:
        self.stopping = False
        if close_event is not None:
            status = status_of_close(close_event)
            if status == "done" and exit_code not in (0, -1):
                status = "failed"
        else:
            status = "failed"
        failed = status not in ("done", "stopped")
        self.message = classify(close_event, exit_code, list(self.stderr_tail)).text() if failed else ""
        self._set_status(status)
        self.run_finished.emit(status, self.message)

    def _on_job_failed_to_start(self, message: str) -> None:
        self.message = message
        self._set_status("failed")
        self.run_finished.emit("failed", message)

    def _set_status(self, status: str) -> None:
        if status != self.status:
            self.status = status
            self.status_changed.emit(status)


def damage_text(problems: list[str]) -> str:
    """What the studio says about a damaged run folder (the first few problems)."""
    shown = problems[:5] + ([f"… and {len(problems) - 5} more"] if len(problems) > 5 else [])
    return "This run folder is damaged; what was read is shown, the rest is skipped:\n" + "\n".join(shown)


def device_overrides(device: str) -> list[str]:
    """`--set` assignments for a device chosen in the GUI ("" = as the config says)."""
    return [f"train.device={device}"] if device else []


def node_commands(config_path: str, overrides: list[str], nproc: int, nnodes: int, master_addr: str,
                  master_port: int, resume: bool = False) -> list[list[str]]:
    """The torchrun command to run on each node of a multi-node run (node 0 first)."""
    args = train_args(config_path, resume=resume, overrides=overrides)
    return [torchrun_command(nproc, nnodes, rank, master_addr, master_port, "train", *args)
            for rank in range(nnodes)]


def multinode_plan(ctl: RunController) -> tuple[bool, str]:
    """(resume, notice) for the multi-node commands of the selected run: a new run starts, a stopped or
    failed one with checkpoints resumes (--resume); a finished one would be refused by the engine, which
    never trains into a run folder that has trained, and the notice says what to do instead."""
    if ctl.startable():
        return False, ""
    if ctl.can_resume():
        return True, f"{ctl.run.name} {ctl.status} at step {ctl.history.step}: each command resumes it (--resume)."
    return False, (f"{ctl.run.name} is {ctl.status}: the engine never trains into a run folder that has trained, "
                   "so it would refuse these commands. Make a run to train on several nodes with New from this "
                   "or Fork…, then open this again on it.")


def fork_step(cfg: Config) -> int | None:
    """The step a run with train.init_from continues from: its checkpoint's step for a fork
    (finetune: none); None for a fine-tune, which the engine starts at step 0 (core.trainer_setup)."""
    if not cfg.train.init_from or cfg.train.finetune != "none":
        return None
    return layout.checkpoint_step(cfg.train.init_from)


def eta_text(history: RunHistory) -> str:
    """'ETA 1m 20s' or '' when unknown."""
    eta = history.eta_s()
    return "" if not math.isfinite(eta) else f"ETA {format_duration(eta)}"
