"""EngineJob: the part every one-shot engine job shares (prepare, import, export).

It owns one EngineProcess (a QProcess, never waited on except at exit), runs one job at a time, can be
cancelled (a graceful stop, then a kill) and turns the end of the process into one of three outcomes:
done, cancelled, or failed with the message studio.engine.failure builds. Subclasses say what to launch
and how to build their result from the outcome.
"""

from __future__ import annotations

import weakref

from PySide6.QtCore import QObject

from studio.engine.failure import EngineFailure, classify
from studio.engine.process import EngineProcess

CANCEL_GRACE_MS = 3000  # a cancelled job is killed after this long


class EngineJob(QObject):
    """Base of PrepareJob, ImportJob and ExportJob. Subclasses set `doing` ("preparing the data", ...)
    and implement `_finished(status, close_event, failure)` and `_started()`."""

    doing = "running the engine"
    # What a job adds to its environment, asked at each launch: the window's CoreShare.job_env (a weak
    # reference: a closed window's share is not kept alive), so a job started while runs train leaves
    # them their cores.
    env_source: weakref.WeakMethod | None = None

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._cancelled = False
        self._active = False  # a job was launched and has not reported its end yet
        self.process = EngineProcess(self)
        self.process.finished.connect(self._on_process_finished)
        self.process.failed_to_start.connect(self._on_process_failed_to_start)

    def is_running(self) -> bool:
        return self.process.is_running()

    def cancel(self) -> None:
        if self.is_running():
            self._cancelled = True
            self.process.stop(grace_ms=CANCEL_GRACE_MS)

    def shutdown(self, wait_ms: int = 3000) -> None:
        """Application exit: end a running job now (blocks up to wait_ms)."""
        if self.is_running():
            self.process.kill()
            self.process.wait_for_finished(wait_ms)

    def _launch(self, subcommand: str, args: list[str], cwd: str | None = None) -> None:
        """Start the engine; `_started()` follows unless the start failed at once (then the failure has
        already been reported through `_finished`)."""
        self._cancelled, self._active = False, True
        source = EngineJob.env_source() if EngineJob.env_source is not None else None
        self.process.start(subcommand, args, cwd=cwd, env=source() if source is not None else None)
        if self.is_running():
            self._started()

    # ------------------------------------------------------------------ for subclasses
    def _is_done(self, exit_code: int, close_event: dict | None) -> bool:
        """Whether the job succeeded; a cancel that came too late to stop it counts as not done."""
        return exit_code == 0 and not self._cancelled

    def _started(self) -> None:
        raise NotImplementedError

    def _finished(self, status: str, close_event: dict | None, failure: EngineFailure | None) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ slots
    def _on_process_finished(self, exit_code: int, close_event: dict | None) -> None:
        self._active = False
        if self._is_done(exit_code, close_event):
            self._finished("done", close_event, None)
        elif self._cancelled:
            self._finished("cancelled", close_event, None)
        else:
            failure = classify(close_event, exit_code, list(self.process.stderr_tail), self.doing)
            self._finished("failed", close_event, failure)

    def _on_process_failed_to_start(self, message: str) -> None:
        if self._active:
            self._active = False
            self._finished("failed", None, EngineFailure(message))
