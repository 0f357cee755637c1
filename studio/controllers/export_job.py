"""ExportJob: one `llm-train export` run (a checkpoint to an HF folder, a GGUF file or an ONNX graph, or a
LoRA fine-tune's adapters to a PEFT adapter folder or a llama.cpp LoRA adapter).

The engine refuses what a format cannot hold (exit 2, a message naming the field); this class owns the
process and turns its end into an ExportResult whose `out` is the written path, for the view to show with
a button that opens its folder.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal

from core import layout
from core.errors import CheckpointError, missing_package_message
from core.export_families import export_formats
from core.protocol import RUN_HINT
from studio.controllers.engine_job import EngineJob
from studio.engine.failure import EngineFailure

FORMATS = ("hf", "gguf", "onnx", "peft", "gguf-lora")
ADAPTER_FORMATS = ("peft", "gguf-lora")  # a LoRA fine-tune's adapters alone
DTYPES = {"hf": ("f32", "f16", "bf16"), "gguf": ("f32", "f16", "bf16", "q8_0"), "onnx": ("f32",),
          "peft": ("f32", "f16", "bf16"), "gguf-lora": ("f32", "f16")}
FOLDERS = ("hf", "peft")  # the formats written as a folder (the others as one file)
NEEDS = {"gguf": ("gguf",), "gguf-lora": ("gguf",), "onnx": ("onnx", "onnxruntime")}  # the optional packages each format imports


def hf_gguf_refusal(checkpoint: str) -> str:
    """Why Hugging Face and GGUF cannot carry the model at `checkpoint` (they have no architecture for some
    configs, core.export_families; ONNX carries every one); "" when they can, and when the checkpoint's
    config cannot be read (the engine then says why)."""
    from core.config import ConfigError, from_dict

    try:
        config = layout.read_checkpoint_meta(checkpoint).get("config")
        model = from_dict({"model": config.get("model")}).model if isinstance(config, dict) else None
    except (ConfigError, CheckpointError, OSError, ValueError):
        return ""
    return export_formats(model)[1] if model is not None else ""


def formats_for(checkpoint: str) -> tuple[str, ...]:
    """The export formats a checkpoint offers: a LoRA fine-tune's adapters go out alone too (PEFT, GGUF)."""
    try:
        lora = layout.read_checkpoint_meta(checkpoint).get("lora")
    except (CheckpointError, OSError, ValueError):
        lora = None
    return FORMATS if lora else tuple(f for f in FORMATS if f not in ADAPTER_FORMATS)


def missing_packages(fmt: str) -> list[str]:
    """The optional packages `fmt`'s export needs that are not installed (the engine runs in this same
    environment: the venv's python, or the bundle itself), so the dialog can say so before Export."""
    return [name for name in NEEDS.get(fmt, ()) if importlib.util.find_spec(name) is None]


def missing_text(fmt: str, missing: list[str]) -> str:
    what = {"gguf-lora": "GGUF LoRA adapter export"}.get(fmt, f"{fmt.upper()} export")
    return missing_package_message(what, missing) + "."


SUFFIX = {"hf": "", "gguf": ".gguf", "onnx": ".onnx", "peft": "", "gguf-lora": ".gguf"}


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
    hint: str = ""  # how to run the export, as the engine says (e.g. llama.cpp's command line)

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
    """RUN_DIR/exports/<run>-step<N>-<fmt>-<dtype>[-2, -3 ...][.gguf|.onnx] next to the checkpoints: named
    after the run, so the file or folder still says what it is once copied elsewhere (or imported again), and
    never one that exists (an export replaces nothing: exporting again would fail on the same name)."""
    run_dir = os.path.dirname(os.path.dirname(os.path.abspath(checkpoint)))
    step = layout.checkpoint_step(checkpoint)
    where = f"step{step}" if step is not None else os.path.basename(os.path.normpath(checkpoint))
    stem = os.path.join(run_dir, "exports", f"{os.path.basename(run_dir)}-{where}-{fmt}-{dtype}")
    path, n = stem + SUFFIX[fmt], 1
    while os.path.exists(path):
        n += 1
        path = f"{stem}-{n}{SUFFIX[fmt]}"
    return path


class ExportJob(EngineJob):
    started = Signal(object)       # the ExportRequest
    finished = Signal(object)      # an ExportResult
    doing = "exporting the model"

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.request: ExportRequest | None = None

    def start(self, request: ExportRequest) -> bool:
        if self.is_running():
            return False
        self.request = request
        os.makedirs(os.path.dirname(os.path.abspath(request.out)), exist_ok=True)
        self._launch("export", request.arguments())
        return True

    def _started(self) -> None:
        self.started.emit(self.request)

    def _finished(self, status: str, close_event: dict | None, failure: EngineFailure | None) -> None:
        assert self.request is not None
        hint = next((line[len(RUN_HINT):].strip() for line in reversed(self.process.stderr_tail)
                     if line.startswith(RUN_HINT)), "")
        self.finished.emit(ExportResult(status, self.request, failure, hint if status == "done" else ""))
