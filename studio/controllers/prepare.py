"""PrepareJob: one `llm-train prepare` run, from its arguments to the message the user reads.

The Data tab and the demo set-up both prepare through this class: it runs a PrepareRequest (whose
`arguments()` are the command line), owns the engine process (a QProcess, never waited on), reports
progress and turns the end of the process into a PrepareResult: done (with the data set's meta.json),
cancelled, or failed with one message built by studio.engine.failure (through EngineJob).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, Signal

from studio.controllers.engine_job import EngineJob
from studio.controllers.prepare_request import PrepareRequest
from studio.engine.failure import EngineFailure
from studio.workspace.datasets import read_meta


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


class PrepareJob(EngineJob):
    """Runs one prepare at a time; a view shows its progress and result, the owner starts and cancels it."""

    started = Signal(object)             # the PrepareRequest
    progressed = Signal(str, int, int)   # stage, done, total (0: unknown)
    finished = Signal(object)            # a PrepareResult
    doing = "preparing the data"

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.request: PrepareRequest | None = None
        self.process.event_received.connect(self._on_process_event_received)

    def start(self, request: PrepareRequest, cwd: str | None = None) -> bool:
        """Launch the engine for `request` (False if a prepare is already running)."""
        if self.is_running():
            return False
        self.request = request
        os.makedirs(os.path.dirname(request.out) or ".", exist_ok=True)  # the engine writes below it
        self._launch("prepare", request.arguments(), cwd=cwd)
        return True

    def _is_done(self, exit_code: int, close_event: dict | None) -> bool:
        """Done only with the engine's own `done` event (a finished prepare wins over a late cancel)."""
        return close_event is not None and close_event.get("event") == "done" and exit_code == 0

    def _started(self) -> None:
        self.started.emit(self.request)

    def _finished(self, status: str, close_event: dict | None, failure: EngineFailure | None) -> None:
        request = self.request
        assert request is not None
        meta: dict = {}
        if status == "done":
            meta = close_event.get("meta") if close_event else None
            meta = meta if isinstance(meta, dict) else read_meta(request.out)
        self.finished.emit(PrepareResult(status, request, meta, failure))

    def _on_process_event_received(self, event: dict) -> None:
        if event.get("event") == "progress":
            self.progressed.emit(str(event.get("stage", "")), int(event.get("done") or 0),
                                 int(event.get("total") or 0))
