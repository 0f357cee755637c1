"""ExportJob: one `llm-train export` run (a checkpoint to an HF folder, a GGUF file or an ONNX graph).

The engine refuses what a format cannot hold (exit 2, a message naming the field); this class owns the
process and turns its end into an ExportResult whose `out` is the written path, for the view to show with
a button that opens its folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal

from studio.engine.failure import EngineFailure, classify
from studio.engine.process import EngineProcess

FORMATS = ("hf", "gguf", "onnx")
DTYPES = {"hf": ("f32", "f16", "bf16"), "gguf": ("f32", "f16", "bf16", "q8_0"), "onnx": ("f32",)}
SUFFIX = {"hf": "", "gguf": ".gguf", "onnx": ".onnx"}
CANCEL_GRACE_MS = 3000


@dataclass(frozen=True)
class ExportRequest:
    checkpoint: str
    format: str
    out: str
    dtype: str = "f32"

    def arguments(self) -> list[str]:
        return ["--checkpoint", self.checkpoint, "--format", self.format, "--out", self.out,
                "--dtype", self.dtype]


@dataclass(frozen=True)
class ExportResult:
    """status done | cancelled | failed."""

    status: str
    request: ExportRequest
    failure: EngineFailure | None = None

    @property
    def ok(self) -> bool:
        return self.status == "done"

    @property
    def out(self) -> str:
        return self.request.out

    @property
    def folder(self) -> str:
        """What 'Open folder' opens: the HF folder itself, or the folder holding the file."""
        return self.out if os.path.isdir(self.out) else os.path.dirname(os.path.abspath(self.out))


def default_out(checkpoint: str, fmt: str, dtype: str) -> str:
    """RUN_DIR/exports/<step>-<dtype>[.gguf|.onnx] next to the checkpoints."""
    run_dir = os.path.dirname(os.path.dirname(os.path.abspath(checkpoint)))
    name = f"{os.path.basename(os.path.normpath(checkpoint))}-{fmt}-{dtype}{SUFFIX[fmt]}"
    return os.path.join(run_dir, "exports", name)


class ExportJob(QObject):
    started = Signal(object)       # the ExportRequest
    finished = Signal(object)      # an ExportResult

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.request: ExportRequest | None = None
        self._cancelled = False
        self.process = EngineProcess(self)
        self.process.finished.connect(self._on_process_finished)
        self.process.failed_to_start.connect(self._on_process_failed_to_start)

    def is_running(self) -> bool:
        return self.process.is_running()

    def start(self, request: ExportRequest) -> bool:
        if self.is_running():
            return False
        self.request, self._cancelled = request, False
        os.makedirs(os.path.dirname(os.path.abspath(request.out)), exist_ok=True)
        self.process.start("export", request.arguments())
        if self.is_running():
            self.started.emit(request)
        return True

    def cancel(self) -> None:
        if self.is_running():
            self._cancelled = True
            self.process.stop(grace_ms=CANCEL_GRACE_MS)

    def shutdown(self, wait_ms: int = 3000) -> None:
        if self.is_running():
            self.process.kill()
            self.process.wait_for_finished(wait_ms)

    def _on_process_finished(self, exit_code: int, close_event: dict | None) -> None:
        request = self.request
        assert request is not None
        if exit_code == 0 and not self._cancelled:
            result = ExportResult("done", request)
        elif self._cancelled:
            result = ExportResult("cancelled", request)
        else:
            failure = classify(close_event, exit_code, list(self.process.stderr_tail), "exporting the model")
            result = ExportResult("failed", request, failure)
        self.finished.emit(result)

    def _on_process_failed_to_start(self, message: str) -> None:
        if self.request is not None:
            self.finished.emit(ExportResult("failed", self.request, EngineFailure(message)))
