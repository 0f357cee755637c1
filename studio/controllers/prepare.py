"""PrepareJob: one `llm-train prepare` run, from its arguments to the message the user reads.

The Data tab and the demo set-up both prepare through this class: it runs a PrepareRequest (whose
`arguments()` are the command line), owns the engine process (a QProcess, never waited on), reports
progress and turns the end of the process into a PrepareResult: done (with the data set's meta.json),
cancelled, or failed with one message built by studio.engine.failure.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, Signal

from studio.controllers.prepare_request import PrepareRequest
from studio.engine.failure import EngineFailure, classify
from studio.engine.process import EngineProcess
from studio.workspace.datasets import read_meta

CANCEL_GRACE_MS = 3000  # a cancelled prepare is killed after this long


@dataclass(frozen=True)
class PrepareResult:
    """How a prepare ended: status done | cancelled | failed."""

    status: str
    request: PrepareRequest
    meta: dict = field(default_factory=dict)     # the data set's meta.json (done)
    failure: EngineFailure | None = None         # why (failed)

    @property
    def ok(self) -> bool:
        return self.status == "done"

    @property
    def out(self) -> str:
        return self.request.out


class PrepareJob(QObject):
    """Runs one prepare at a time; a view shows its progress and result, the owner starts and cancels it."""

    started = Signal(object)             # the PrepareRequest
    progressed = Signal(str, int, int)   # stage, done, total (0: unknown)
    finished = Signal(object)            # a PrepareResult

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.request: PrepareRequest | None = None
        self._cancelled = False
        self.process = EngineProcess(self)
        self.process.event_received.connect(self._on_process_event_received)
        self.process.finished.connect(self._on_process_finished)
        self.process.failed_to_start.connect(self._on_process_failed_to_start)

    def is_running(self) -> bool:
        return self.process.is_running()

    def start(self, request: PrepareRequest, cwd: str | None = None) -> bool:
        """Launch the engine for `request` (False if a prepare is already running)."""
        if self.is_running():
            return False
        self.request, self._cancelled = request, False
        os.makedirs(os.path.dirname(request.out) or ".", exist_ok=True)  # the engine writes below it
        self.process.start("prepare", request.arguments(), cwd=cwd)
        if self.is_running():  # a start that failed at once has already reported a failed result
            self.started.emit(request)
        return True

    def cancel(self) -> None:
        if self.is_running():
            self._cancelled = True
            self.process.stop(grace_ms=CANCEL_GRACE_MS)

    def shutdown(self, wait_ms: int = 3000) -> None:
        """Application exit: end a running prepare now (blocks up to wait_ms)."""
        if self.is_running():
            self.process.kill()
            self.process.wait_for_finished(wait_ms)

    # ------------------------------------------------------------------ slots
    def _on_process_event_received(self, event: dict) -> None:
        if event.get("event") == "progress":
            self.progressed.emit(str(event.get("stage", "")), int(event.get("done") or 0),
                                 int(event.get("total") or 0))

    def _on_process_finished(self, exit_code: int, close_event: dict | None) -> None:
        request = self.request
        assert request is not None
        if close_event is not None and close_event.get("event") == "done" and exit_code == 0:
            meta = close_event.get("meta")
            meta = meta if isinstance(meta, dict) else read_meta(request.out)
            result = PrepareResult("done", request, meta)
        elif self._cancelled:
            result = PrepareResult("cancelled", request)
        else:
            failure = classify(close_event, exit_code, list(self.process.stderr_tail), "preparing the data")
            result = PrepareResult("failed", request, failure=failure)
        self.finished.emit(result)

    def _on_process_failed_to_start(self, message: str) -> None:
        if self.request is not None:
            self.finished.emit(PrepareResult("failed", self.request, failure=EngineFailure(message)))
