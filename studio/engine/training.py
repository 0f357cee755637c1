"""TrainingJob: one training run, launched detached and followed by tailing its run folder.

A live run the studio just started and a run it finds still running when it reopens are followed by the
same code: a QTimer polls RUN_DIR/metrics.jsonl (events) and RUN_DIR/engine.log (stderr) from an offset.
The engine is started through studio.engine.launcher (a detached QProcess), so closing the studio never
kills it; a graceful stop is SIGTERM to the engine's pid recorded in launcher.json (the engine finishes
its step, writes a checkpoint, emits `stopped`). A pid is followed or signalled only while the process
behind it is provably the one launched (its start time, and command line, as recorded: see
studio.workspace.proc); a reused pid is somebody else's process and is left alone. File tailing adds no back-pressure on the engine: it
never waits on a pipe the GUI is slow to drain.
"""

from __future__ import annotations

import os
import signal
import time
import weakref

from PySide6.QtCore import QObject, QProcess, QTimer, Signal

from core import layout
from core.protocol import is_close
from studio.engine.command import engine_command, launcher_command, train_args
from studio.workspace.proc import fingerprint, pid_alive, same_process, same_start, valid_pid
from studio.workspace.run import Run
from studio.workspace.tail import EventTail, FileTail, file_size

_LIVE: weakref.WeakSet = weakref.WeakSet()


def running_jobs() -> list[TrainingJob]:
    """Jobs of this process whose engine is still running (tests check none is left behind)."""
    return [job for job in list(_LIVE) if job.is_running()]


class TrainingJob(QObject):
    """Launch (or re-attach to) one run's engine and stream what it writes."""

    started = Signal()
    event_received = Signal(object)  # a dict, passed through as the Python object
    stderr_received = Signal(str)
    finished = Signal(int, object)   # exit code (-1 unknown/died), the close event or None
    failed_to_start = Signal(str)

    POLL_MS = 100          # how often the run folder is read; events are shown at most this late
    PROVE_S = 1.0          # how often a followed process is proven to be still ours (start time, cmdline)
    STOP_GRACE_MS = 180_000

    def __init__(self, run: Run, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.run = run
        self.close_event: dict | None = None
        self.argv: list[str] = []
        self._launcher_pid = 0
        self._engine_pid = 0
        self._launcher_fp: dict | None = None  # what proves a pid is still our process (proc.fingerprint)
        self._engine_fp: dict | None = None
        self._proven_at = 0.0                   # time.monotonic() of the last proof
        self._running = False
        self._stop_pending = False
        self._events: EventTail | None = None
        self._log: FileTail | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(self.POLL_MS)
        self._timer.timeout.connect(self._on_timer_timeout)
        self._kill_timer = QTimer(self)
        self._kill_timer.setSingleShot(True)
        self._kill_timer.timeout.connect(self.kill)
        _LIVE.add(self)

    # ------------------------------------------------------------------ control
    def start(self, resume: bool = False, nproc: int = 1, overrides: list[str] | tuple[str, ...] = (),
              threads: int = 0, share: bool = False) -> bool:
        """Launch `llm-train train` for this run; False (and failed_to_start) when it cannot start."""
        if self._running:
            raise RuntimeError("this run is already running")
        run = self.run
        for name in (layout.LAUNCHER_JSON, layout.EXIT_JSON):
            try:
                os.remove(run.path(name))
            except OSError:
                pass
        engine_argv = engine_command("train", *train_args(run.config_path, resume, overrides, threads, share), nproc=nproc)
        self.argv = launcher_command(run.dir, engine_argv)
        ok, pid = QProcess.startDetached(self.argv[0], self.argv[1:], run.dir)
        if not ok:
            self.failed_to_start.emit(f"could not start the engine: {' '.join(self.argv[:4])} ...")
            return False
        self._launcher_pid, self._engine_pid, self._engine_fp = int(pid), 0, None
        # Its start time only: the command line may still be ours if the child has not exec'd yet.
        fp = fingerprint(self._launcher_pid)
        self._launcher_fp = {k: v for k, v in fp.items() if k != "cmdline"} if fp else None
        self._follow(file_size(run.metrics_path), file_size(run.log_path))
        self.started.emit()
        return True

    def attach(self, metrics_offset: int | None = None, log_offset: int | None = None) -> bool:
        """Follow this run's engine if it is running (started by an earlier studio); False if not."""
        engine, launcher = self.run.live_pids()
        if not (engine or launcher):
            return False
        # Proven now: from here on the process must stay the same one (a fingerprint of it, taken now).
        self._engine_pid, self._engine_fp = engine, fingerprint(engine) if engine else None
        self._launcher_pid, self._launcher_fp = launcher, fingerprint(launcher) if launcher else None
        argv = self.run.launcher().get("argv")
        self.argv = list(argv) if isinstance(argv, list) else []
        self._follow(file_size(self.run.metrics_path) if metrics_offset is None else metrics_offset,
                     file_size(self.run.log_path) if log_offset is None else log_offset)
        return True

    def _follow(self, metrics_offset: int, log_offset: int) -> None:
        self.close_event = None
        self._proven_at = 0.0
        self._stop_pending = False
        self._events = EventTail(self.run.metrics_path, metrics_offset)
        self._log = FileTail(self.run.log_path, log_offset)
        self._running = True
        self._timer.start()

    def is_running(self) -> bool:
        return self._running

    def is_stopping(self) -> bool:
        return self._stop_pending or self._kill_timer.isActive()

    def pid(self) -> int:
        """The engine's pid (0 until the launcher has recorded it, or when it is not provably ours)."""
        if not self._engine_pid and self._launcher_pid and self._ours(self._launcher_pid, self._launcher_fp):
            info = self.run.launcher()
            pid, fp = valid_pid(info.get("pid")), info.get("pid_fingerprint")
            lfp = info.get("launcher_fingerprint")
            # The record must be our launcher's (same start time) and name a live engine matching it.
            if pid and same_start(self._launcher_fp, lfp) and same_process(pid, fp):
                self._engine_pid, self._engine_fp = pid, fp
        return self._engine_pid if self._ours(self._engine_pid, self._engine_fp) else 0

    @staticmethod
    def _ours(pid: int, fp: dict | None) -> bool:
        return bool(pid) and same_process(pid, fp)

    def stop(self, grace_ms: int | None = None) -> None:
        """Graceful stop (SIGTERM to the engine: finish the step, checkpoint, `stopped`); kill after grace."""
        if not self._running:
            return
        self._stop_pending = True
        self._send_stop()
        self._kill_timer.start(self.STOP_GRACE_MS if grace_ms is None else grace_ms)

    def _send_stop(self) -> None:
        pid = self.pid()
        if pid:
            try:
                os.kill(pid, signal.SIGTERM)
                self._stop_pending = False
            except OSError:
                pass

    def kill(self) -> None:
        """Hard kill of the engine and its launcher (no checkpoint)."""
        for pid in (self.pid(), self._launcher_pid if self._ours(self._launcher_pid, self._launcher_fp) else 0):
            if pid:
                try:
                    os.kill(pid, getattr(signal, "SIGKILL", signal.SIGTERM))
                except OSError:
                    pass

    def detach(self) -> None:
        """Stop following (the engine keeps running; a later attach() picks it up again)."""
        self._timer.stop()
        self._kill_timer.stop()
        self._running = False

    # ------------------------------------------------------------------ polling
    def poll(self) -> None:
        """Read what the engine wrote since the last poll; notice when it has exited."""
        if not self._running:
            return
        if self._stop_pending:
            self._send_stop()  # the launcher had not recorded the engine's pid yet
        now = time.monotonic()
        if now - self._proven_at < self.PROVE_S and (pid_alive(self._launcher_pid) or pid_alive(self._engine_pid)):
            alive = True  # proven ours less than PROVE_S ago and still there (cheap: no ps on macOS)
        else:
            alive = self._ours(self._launcher_pid, self._launcher_fp) or bool(self.pid())
            self._proven_at = now if alive else 0.0
        self._drain(final=not alive)
        if not alive:
            self._finish()

    def _on_timer_timeout(self) -> None:
        self.poll()

    def _drain(self, final: bool = False) -> None:
        assert self._events is not None and self._log is not None
        for line in self._log.read_lines() + (self._log.flush() if final else []):
            self.stderr_received.emit(line)
        for ev in self._events.read_events() + (self._events.flush() if final else []):
            self._emit_event(ev)

    def _emit_event(self, ev: dict) -> None:
        if is_close(ev):
            self.close_event = ev
        self.event_received.emit(ev)

    def _finish(self) -> None:
        self._timer.stop()
        self._kill_timer.stop()
        self._running = False
        had = self.close_event
        close_event, code = self.run.ended(had)
        if had is None and close_event is not None:  # only on stdout (found before metrics.jsonl opened)
            self._emit_event(close_event)
        self.finished.emit(code, self.close_event)

    def wait_until_finished(self, timeout_s: float) -> bool:
        """Only for shutdown paths and benchmarks: blocks while polling the process."""
        deadline = time.monotonic() + timeout_s
        while self._running and time.monotonic() < deadline:
            self.poll()
            if self._running:
                time.sleep(0.05)
        return not self._running
