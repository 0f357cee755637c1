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

from PySide6.QtCore import QObject, Signal

from core import layout
from core.config_text import dump_new
from core.errors import CheckpointError, missing_package_message
from core.import_config import is_adapter, read_peft_config
from studio.controllers.engine_job import EngineJob
from studio.engine.failure import EngineFailure
from studio.workspace.run import Run


def missing_for_source(source: str) -> str:
    """What the import of `source` needs that is not installed, said as the engine would ("" when nothing):
    a .gguf file needs the optional 'gguf' package; a Hugging Face folder needs only the plain install."""
    from studio.controllers.export_job import missing_packages  # the same check the Export dialog makes

    missing = missing_packages("gguf") if source.strip().lower().endswith(".gguf") else []
    return missing_package_message("Importing a .gguf file", missing) + "." if missing else ""


def describe_source(source: str) -> tuple[str, str]:
    """(what a Hugging Face folder holds, why it cannot be imported), read from its config.json as the engine
    reads it (core.import_config), before an engine starts: a folder of an unsupported architecture was
    refused only after Import. A .gguf file is described from its header (_describe_gguf); ("", "") for a path
    that is neither (yet)."""
    from core.errors import UsageError
    from core.estimate import head_size, param_count
    from core.import_config import read_hf_config

    path = source.strip()
    if path.lower().endswith(".gguf") and os.path.isfile(path):
        return _describe_gguf(path)
    if not path or not os.path.isdir(path):
        return "", ""
    if is_adapter(path):
        return _describe_adapter(path)
    try:
        cfg, _family, raw = read_hf_config(path)
    except UsageError as exc:
        return "", f"Cannot import this folder: {exc}"
    arch = (raw.get("architectures") or [raw.get("model_type")])[0]
    return _summary(arch, cfg.n_layer, cfg.n_head, head_size(cfg), cfg.n_kv_head, cfg.qk_norm, cfg.n_embd,
                    cfg.vocab_size, cfg.block_size, param_count(cfg, cfg.vocab_size)), ""


def _describe_adapter(path: str) -> tuple[str, str]:
    """describe_source of a PEFT LoRA adapter folder: rank, scale and projections, and the model it is for."""
    from core.errors import UsageError

    try:
        cfg = read_peft_config(path)
    except UsageError as exc:
        return "", f"Cannot import this adapter: {exc}"
    targets = cfg.get("target_modules")
    targets = ", ".join(sorted(targets)) if isinstance(targets, list) else str(targets or "?")
    base = cfg.get("base_model_name_or_path") or "a model it does not name"
    return (f"A LoRA adapter (PEFT): rank {cfg['r']}, alpha {cfg.get('lora_alpha', 8)}, on {targets}; trained on "
            f"{base}. It goes on that model's import: the Base model below."), ""


def adapter_base(source: str, checkpoints: list[str]) -> str:
    """The checkpoint (of `checkpoints`) imported from the model a PEFT adapter names as its base: the same
    folder, or the same last name (a hub id "org/Model" and a local folder "Model"); "" when none is."""
    from core.errors import UsageError

    try:
        named = read_peft_config(source.strip()).get("base_model_name_or_path") or ""
    except UsageError:  # describe_source says why; here there is simply no match
        return ""
    if not named:
        return ""
    want_path = os.path.abspath(named) if os.path.isabs(named) else ""
    want_name = os.path.basename(os.path.normpath(named)).lower()
    for path in checkpoints:
        try:
            origin = layout.read_checkpoint_meta(path).get("imported_from") or {}
        except (CheckpointError, OSError, ValueError):
            continue
        if origin.get("format") == "peft" or not isinstance(origin.get("path"), str):
            continue
        if (want_path and os.path.abspath(origin["path"]) == want_path) or \
                os.path.basename(os.path.normpath(origin["path"])).lower() == want_name:
            return path
    return ""


def _describe_gguf(path: str) -> tuple[str, str]:
    """describe_source of a .gguf file: its header read without the gguf package (core.import_config)."""
    import math

    from core.errors import UsageError
    from core.import_config import FILE_TYPES, GGUF_ARCHITECTURES, read_gguf_header

    try:
        fields, tensors = read_gguf_header(path)
    except UsageError as exc:
        return "", f"Cannot import this file: {exc}"
    arch = fields.get("general.architecture")
    if arch not in GGUF_ARCHITECTURES:
        return "", (f"Cannot import this file: GGUF architecture {arch!r} is not supported; supported: "
                    f"{', '.join(GGUF_ARCHITECTURES)}")
    hp = {k.removeprefix(f"{arch}."): v for k, v in fields.items() if isinstance(v, (int, float))}
    heads, width = hp.get("attention.head_count") or 1, hp.get("embedding_length") or 0
    kv = hp.get("attention.head_count_kv")
    tokens = fields.get("tokenizer.ggml.tokens")
    vocab = len(tokens) if isinstance(tokens, list) else tokens if isinstance(tokens, int) else 0
    kind = FILE_TYPES.get(fields.get("general.file_type"), "")
    return _summary(f"{arch} (GGUF{', ' + kind if kind else ''})", hp.get("block_count", 0), heads,
                    hp.get("attention.key_length") or width // heads, kv if kv != heads else None,
                    any(n.endswith("attn_q_norm.weight") for n, _ in tensors), width, vocab,
                    hp.get("context_length", 0), sum(math.prod(shape) for _, shape in tensors)), ""


def _summary(arch: str, layers: int, heads: int, head_size: int, kv_heads: int | None, qk_norm: bool, width: int,
             vocab: int, context: int, params: int) -> str:
    """The Import dialog's one sentence on a model, the same for a folder and a file."""
    from core.estimate import human_count

    return (f"{arch}: {layers} layers, {heads} heads of {head_size}" + (f" ({kv_heads} key/value)" if kv_heads else "")
            + (" with QK-norm" if qk_norm else "") + f", width {width}, vocabulary {vocab:,}, context {context:,}: "
            f"{human_count(params)} parameters.")


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
        return os.path.join(self.run_dir, layout.CHECKPOINTS, layout.step_dir_name(0))


def import_name(source: str) -> str:
    """A default destination name: the folder's or the file's name without .gguf."""
    base = os.path.basename(os.path.normpath(source))
    return base[:-5] if base.lower().endswith(".gguf") else base


class ImportJob(EngineJob):
    """Runs one import at a time (the engine owns the work; this class owns its process)."""

    started = Signal(str)          # the source
    finished = Signal(object)      # an ImportResult
    doing = "importing the model"

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.source = self.run_dir = self.base = ""

    def start(self, source: str, run_dir: str, base: str = "") -> bool:
        """Import `source` (an HF folder, a .gguf file, or a PEFT adapter folder on the checkpoint `base`)
        into the new run folder `run_dir`."""
        if self.is_running():
            return False
        self.source, self.run_dir, self.base = source, run_dir, base
        os.makedirs(os.path.dirname(run_dir) or ".", exist_ok=True)
        self._launch("import", [source, "--out", run_dir] + (["--base", base] if base else []))
        return True

    def _finish_run_folder(self) -> None:
        """config.yaml (from the meta's config, run.dir '.') and lineage: the folder becomes a listed run."""
        result = ImportResult("done", self.source, self.run_dir)
        meta = layout.read_checkpoint_meta(result.checkpoint)
        config = dict(meta.get("config") or {})
        config["run"] = {**(config.get("run") or {}), "dir": "."}
        run = Run(self.run_dir)
        run.write_config_text(dump_new(config))
        # an adapter nests under the run of its base model, as a fine-tune trained here does
        base_run = os.path.relpath(os.path.dirname(os.path.dirname(self.base)), self.run_dir) if self.base else None
        run.set_lineage("import", base_run, os.path.abspath(self.source))

    def _started(self) -> None:
        self.started.emit(self.source)

    def _finished(self, status: str, close_event: dict | None, failure: EngineFailure | None) -> None:
        if status == "done":
            try:
                self._finish_run_folder()
            except (OSError, ValueError, CheckpointError) as exc:
                status, failure = "failed", EngineFailure(f"the import wrote no usable checkpoint: {exc}")
        self.finished.emit(ImportResult(status, self.source, self.run_dir, failure))
