"""LrFindJob: one `llm-train lr-find --events` on a run's config (core.lr_find: a learning-rate range test that
writes nothing). It reports each step's rate and loss as it comes, and its end as an LrFindResult: done (with
the rates, losses, their average and the suggested rate), cancelled, or failed with the engine's message."""

from __future__ import annotations

from dataclasses import dataclass, field

from PySide6.QtCore import QObject, Signal

from studio.controllers.engine_job import EngineJob
from studio.engine.failure import EngineFailure


@dataclass(frozen=True)
class LrFindResult:
    status: str                                  # done | cancelled | failed
    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    smoothed: list[float] = field(default_factory=list)
    suggested_lr: float | None = None            # the steepest fall of the loss
    cautious_lr: float | None = None             # a tenth of the rate at the lowest loss
    how: str = ""                                # how the rate was chosen, or why there is none
    diverged_at: float | None = None
    failure: EngineFailure | None = None

    @property
    def ok(self) -> bool:
        return self.status == "done"


def _floats(value) -> list[float]:
    return [float(v) for v in value if isinstance(v, (int, float))] if isinstance(value, list) else []


def _float(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


class LrFindJob(EngineJob):
    progressed = Signal(int, int, float, float)   # step, steps, rate, loss
    finished = Signal(object)                      # an LrFindResult
    doing = "finding a learning rate"

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.process.event_received.connect(self._on_process_event_received)

    def start(self, config_path: str, steps: int = 60, start: float = 1e-6, end: float = 1.0) -> bool:
        """Launch the test on the run's saved config (False when one is running already)."""
        if self.is_running():
            return False
        self._launch("lr-find", ["--config", config_path, "--steps", str(steps), "--start", repr(start),
                                 "--end", repr(end), "--events"])
        return True

    def _is_done(self, exit_code: int, close_event: dict | None) -> bool:
        return exit_code == 0 and close_event is not None and close_event.get("kind") == "lr_find"

    def _started(self) -> None:
        pass

    def _finished(self, status: str, close_event: dict | None, failure: EngineFailure | None) -> None:
        e = close_event if status == "done" and close_event else {}
        self.finished.emit(LrFindResult(status, _floats(e.get("lrs")), _floats(e.get("losses")),
                                        _floats(e.get("smoothed")), _float(e.get("suggested_lr")),
                                        _float(e.get("cautious_lr")), str(e.get("how") or ""),
                                        _float(e.get("diverged_at")), failure))

    def _on_process_event_received(self, event: dict) -> None:
        if event.get("event") == "progress" and event.get("stage") == "lr_find":
            lr, loss = _float(event.get("lr")), _float(event.get("loss"))
            if lr is not None and loss is not None:
                self.progressed.emit(int(event.get("done") or 0), int(event.get("total") or 0), lr, loss)
