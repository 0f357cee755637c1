"""EngineInfoQuery: asks the engine for its build (`llm-train version --json`) without importing torch.

It runs through EngineProcess, so from a bundle it is the bundle's own engine. The answer is kept for the
session (`known()`): torch's import costs seconds, and the engine does not change while the studio runs.
"""

from __future__ import annotations

import json

from PySide6.QtCore import QObject, Signal

from studio.engine.process import EngineProcess

_ANSWER: dict | None = None  # the engine's `version --json` answer, once known


def known() -> dict | None:
    """The engine's answer if an earlier query got one this session."""
    return _ANSWER


def remember(answer: dict | None) -> None:
    """Set (or forget, with None) the kept answer; tests use it to stand in for an engine."""
    global _ANSWER
    _ANSWER = answer


class EngineInfoQuery(QObject):
    """One `version --json` run; emits `answered(dict)` or `failed(str)` (the reason, for the user)."""

    answered = Signal(object)
    failed = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._answer: dict | None = None
        self.process = EngineProcess(self)
        self.process.text_received.connect(self._on_process_text)
        self.process.finished.connect(self._on_process_finished)
        self.process.failed_to_start.connect(self.failed.emit)

    def start(self) -> None:
        self.process.start("version", ["--json"])

    def cancel(self) -> None:
        if self.process.is_running():
            self.process.kill()  # a version query holds nothing worth a graceful stop

    def _on_process_text(self, line: str) -> None:
        try:
            answer = json.loads(line)
        except ValueError:
            return
        if isinstance(answer, dict) and "torch" in answer:
            self._answer = answer

    def _on_process_finished(self, code: int, _close_event) -> None:
        if self._answer is not None:
            remember(self._answer)
            self.answered.emit(self._answer)
            return
        tail = self.process.stderr_tail[-1] if self.process.stderr_tail else ""
        self.failed.emit(f"did not answer (exit code {code}) {tail}".strip())
