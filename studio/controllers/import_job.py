"""ImportJob: one `llm-train import` run, from the source the user picked to a base model in the workspace.

Where an imported model lives: WORKSPACE/runs/<name>/ as a finished run folder, its weights in
checkpoints/step-000000 (the layout `llm-train import --out DIR` writes) and a config.yaml copied from the
checkpoint's meta. Every picker (runs list, Generate, Attention, Fork, fine-tuning's init_from) already
lists run folders with a config.yaml and resolves their checkpoints, so an imported model needs no special
case anywhere; the studio.json lineage kind "import" names it as a base model rather than a trained run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import yaml
from PySide6.QtCore import QObject, Signal

from core import layout
from core.errors import CheckpointError
from studio.engine.failure import EngineFailure, classify
from studio.engine.process import EngineProcess
from studio.workspace.run import Run

CANCEL_GRACE_MS = 3000


@dataclass(frozen=True)
class ImportResult:
    """How an import ended: status done | cancelled | failed; `run_dir` is the new base model's folder."""

    status: str
    source: str
    run_dir: str
    failure: EngineFailure | None = None

    @property
    def ok(self) -> bool:
        return self.status == "done"

    @property
    def checkpoint(self) -> str:
        return os.path.join(self.run_dir, layout.CHECKPOINTS, "step-000000")


def import_name(source: str) -> str:
    """A default destination name: the folder's or the file's name without .gguf."""
    base = os.path.basename(os.path.normpath(source))
    return base[:-5] if base.lower().endswith(".gguf") else base


class ImportJob(QObject):
    """Runs one import at a time (the engine owns the work; this class owns its process)."""

    started = Signal(str)          # the source
    finished = Signal(object)      # an ImportResult

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.source = self.run_dir = ""
        self._cancelled = False
        self.process = EngineProcess(self)
        self.process.finished.connect(self._on_process_finished)
        self.process.failed_to_start.connect(self._on_process_failed_to_start)

    def is_running(self) -> bool:
        return self.process.is_running()

    def start(self, source: str, run_dir: str) -> bool:
        """Import `source` (an HF folder or a .gguf file) into the new run folder `run_dir`."""
        if self.is_running():
            return False
        self.source, self.run_dir, self._cancelled = source, run_dir, False
        os.makedirs(os.path.dirname(run_dir) or ".", exist_ok=True)
        self.process.start("import", [source, "--out", run_dir])
        if self.is_running():
            self.started.emit(source)
        return True

    def cancel(self) -> None:
        if self.is_running():
            self._cancelled = True
            self.process.stop(grace_ms=CANCEL_GRACE_MS)

    def shutdown(self, wait_ms: int = 3000) -> None:
        if self.is_running():
            self.process.kill()
            self.process.wait_for_finished(wait_ms)

    def _finish_run_folder(self) -> None:
        """config.yaml (from the meta's config, run.dir '.') and lineage: the folder becomes a listed run."""
        result = ImportResult("done", self.source, self.run_dir)
        meta = layout.read_checkpoint_meta(result.checkpoint)
        config = dict(meta.get("config") or {})
        config["run"] = {**(config.get("run") or {}), "dir": "."}
        run = Run(self.run_dir)
        run.write_config_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
        run.set_lineage("import", None, os.path.abspath(self.source))

    # ------------------------------------------------------------------ slots
    def _on_process_finished(self, exit_code: int, close_event: dict | None) -> None:
        if exit_code == 0 and not self._cancelled:
            try:
                self._finish_run_folder()
                result = ImportResult("done", self.source, self.run_dir)
            except (OSError, ValueError, CheckpointError) as exc:
                result = ImportResult("failed", self.source, self.run_dir,
                                      EngineFailure(f"the import wrote no usable checkpoint: {exc}"))
        elif self._cancelled:
            result = ImportResult("cancelled", self.source, self.run_dir)
        else:
            failure = classify(close_event, exit_code, list(self.process.stderr_tail), "importing the model")
            result = ImportResult("failed", self.source, self.run_dir, failure)
        self.finished.emit(result)

    def _on_process_failed_to_start(self, message: str) -> None:
        self.finished.emit(ImportResult("failed", self.source, self.run_dir, EngineFailure(message)))
