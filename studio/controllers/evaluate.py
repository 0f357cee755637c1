"""EvaluateJob: one `llm-train eval --events --save` run on a checkpoint (a text file or a pairs file).

The engine evaluates and keeps the result in the checkpoint's eval/ folder (core.layout.evaluation_path);
this class owns the process, reports its progress events, and turns its end into an EvalResult: done
(with the saved Evaluation, read back through studio.workspace.evaluations), cancelled, or failed with
the engine's own message (a bad pairs line is named by file and line) built by studio.engine.failure.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal

from core import layout
from studio.controllers.engine_job import EngineJob
from studio.engine.failure import EngineFailure
from studio.workspace.evaluations import Evaluation, checkpoint_evaluations, read_evaluation
from studio.workspace.run import Run
from studio.workspace.workspace import run_of

KINDS = ("text", "pairs", "split")  # split: `file` is a data set, its validation split scored (--data)


@dataclass(frozen=True)
class EvalRequest:
    checkpoint: str
    kind: str                   # "text" | "pairs" | "split"
    file: str
    max_new_tokens: int = 128   # pairs
    temperature: float = 0.0    # pairs: 0 = greedy
    seed: int = 0               # pairs, when sampling
    raw: bool = False           # pairs: the prompt as is, no chat template

    def arguments(self) -> list[str]:
        flag = "--data" if self.kind == "split" else f"--{self.kind}"
        args = ["--checkpoint", self.checkpoint, flag, self.file, "--events", "--save"]
        if self.kind == "pairs":
            args += ["--max-new-tokens", str(self.max_new_tokens), "--temperature", repr(float(self.temperature)),
                     "--seed", str(self.seed)] + (["--raw"] if self.raw else [])
        return args


@dataclass(frozen=True)
class EvalResult:
    """status done | cancelled | failed."""

    status: str
    request: EvalRequest
    evaluation: Evaluation | None = None     # done: the saved result
    failure: EngineFailure | None = None     # failed: why

    @property
    def ok(self) -> bool:
        return self.status == "done"


def data_set_of(checkpoint: str) -> str:
    """The prepared plain data set the checkpoint's run trains on, whose validation split `eval --data` can
    score: the run's config.yaml's data.dir (it follows a moved workspace), else the one its meta.json
    recorded; '' when neither is prepared, or it is instruction data."""
    run = run_of(checkpoint) if checkpoint else ""
    cfg = Run(run).config_or_none() if run else None  # None: a config being edited, or no run around it
    found = [cfg.data.dir if cfg is not None else None]
    config = layout.read_json(os.path.join(checkpoint, layout.META)).get("config") if checkpoint else None
    data = config.get("data") if isinstance(config, dict) else None
    found.append(data.get("dir") if isinstance(data, dict) else None)
    for path in found:
        if isinstance(path, str) and layout.is_data_dir(path) and \
                layout.read_json(os.path.join(path, layout.DATA_META)).get("kind") != "sft":
            return os.path.abspath(path)
    return ""


def evaluations_of(checkpoint: str) -> list[Evaluation]:
    """Every saved evaluation of a checkpoint, newest first (what the results view lists)."""
    return checkpoint_evaluations(checkpoint) if checkpoint else []


class EvaluateJob(EngineJob):
    started = Signal(object)          # the EvalRequest
    progressed = Signal(str, int, int)  # stage ("text": bytes, "pairs": pairs), done, total
    finished = Signal(object)         # an EvalResult
    doing = "evaluating the checkpoint"

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.request: EvalRequest | None = None
        self.process.event_received.connect(self._on_process_event_received)

    def start(self, request: EvalRequest) -> bool:
        """Launch the engine for `request` (False if an evaluation is already running)."""
        if self.is_running() or request.kind not in KINDS:
            return False
        self.request = request
        self._launch("eval", request.arguments())
        return True

    def _is_done(self, exit_code: int, close_event: dict | None) -> bool:
        """Done only with the engine's own `done` event naming the saved file."""
        return exit_code == 0 and close_event is not None and close_event.get("event") == "done"

    def _started(self) -> None:
        self.started.emit(self.request)

    def _finished(self, status: str, close_event: dict | None, failure: EngineFailure | None) -> None:
        assert self.request is not None
        evaluation = None
        if status == "done":
            path = close_event.get("path") if close_event else None
            evaluation = read_evaluation(path) if isinstance(path, str) else None
            if evaluation is None:
                status, failure = "failed", EngineFailure(f"the engine saved no readable result ({path})")
        self.finished.emit(EvalResult(status, self.request, evaluation, failure))

    def _on_process_event_received(self, event: dict) -> None:
        if event.get("event") == "progress":
            self.progressed.emit(str(event.get("stage", "")), int(event.get("done") or 0),
                                 int(event.get("total") or 0))
