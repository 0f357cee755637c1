"""Fine-tuning from the studio: the choices of the Fine-tune dialog, the data set and run config they make,
their estimates, and the engine job that previews how the data will be trained.

The flow: a base checkpoint (an imported model or any run's checkpoint) and a data file (`.jsonl`
instruction data, or plain text for continued pre-training) -> `llm-train prepare --preview` shows the first
examples tokenized by the base's tokenizer and chat template, trained and masked tokens marked ->
`llm-train prepare --format sft|text --tokenizer-from BASE` writes WORKSPACE/data/<name> -> a new run whose
config has `train.init_from: BASE` and `train.finetune: full | lora` (the model section is the base's).
Pure data and config work here; the engine does the tokenizing, in subprocesses (PreviewJob, PrepareJob).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, Signal

from core import layout
from core.config import LORA_TARGETS, Config, ConfigError, estimate, loads
from core.config_text import dump_new
from core.errors import CheckpointError, UsageError
from core.recipe import recipe
from studio.controllers.engine_job import EngineJob
from studio.controllers.prepare_request import NAME_RE, PrepareRequest
from studio.engine.failure import EngineFailure
from studio.workspace.datasets import data_sets, read_meta, sft_sample_prompt
from studio.workspace.workspace import run_of, safe_name, unique_name

SFT_SUFFIXES = (".jsonl", ".json")
PREVIEW_EXAMPLES = 6
METHODS = ("lora", "full")
SAMPLE_TOKENS = 48  # a fine-tune's sample at each evaluation: its answer to the first held-out prompt
DEFAULT_LR = {"full": 1e-4, "lora": 1e-3}  # LoRA adapters start at zero and want a larger step


def data_format(path: str) -> str:
    """"sft" for JSON Lines instruction data, "text" for anything else (continued pre-training)."""
    return "sft" if path.lower().endswith(SFT_SUFFIXES) else "text"


@dataclass(frozen=True)
class BaseModel:
    """What the dialog shows of a base checkpoint (read from its meta.json, no torch)."""

    checkpoint: str
    model: dict          # the checkpoint's model section
    vocab_size: int
    chat_template: bool  # the model's own template (else the built-in one is used for instruction data)

    def summary(self) -> str:
        m = self.model
        kv = m.get("n_kv_head")
        heads = f"{m.get('n_head')} heads" + (f" ({kv} key/value)" if kv and kv != m.get("n_head") else "")
        template = "its own chat template" if self.chat_template else "the built-in chat template"
        return (f"{m.get('n_layer')} layers × {m.get('n_embd')} wide, {heads}, vocabulary {self.vocab_size:,}, "
                f"context {m.get('block_size')}; instruction data uses {template}")


def read_base(checkpoint: str) -> BaseModel:
    """The base model at `checkpoint`; UsageError (naming the folder and why) when it cannot be a base."""
    problem = layout.checkpoint_problem(checkpoint)
    if problem:
        raise UsageError(problem, "base")
    if not os.path.isfile(os.path.join(checkpoint, layout.TOKENIZER)):
        raise UsageError(f"the checkpoint has no {layout.TOKENIZER}, so its vocabulary is unknown: {checkpoint}",
                         "base")
    try:
        meta = layout.read_checkpoint_meta(checkpoint)
    except CheckpointError as exc:
        raise UsageError(str(exc), "base") from None
    config = meta.get("config")
    model = config.get("model") if isinstance(config, dict) else None
    if not isinstance(model, dict):
        raise UsageError(f"{os.path.join(checkpoint, layout.META)}: no model config recorded", "base")
    vocab = meta.get("vocab_size") or model.get("vocab_size") or 0
    return BaseModel(os.path.abspath(checkpoint), model, int(vocab) if isinstance(vocab, int) else 0,
                     bool(meta.get("chat_template")))


@dataclass(frozen=True)
class FinetuneChoices:
    """Everything the Fine-tune dialog asks."""

    base: str                       # checkpoint folder
    data_file: str
    data_name: str                  # becomes WORKSPACE/data/<data_name>
    run_name: str
    method: str = "lora"            # "lora" | "full"
    lora_rank: int = 8
    lora_alpha: float = 16.0
    lora_targets: tuple[str, ...] = ("attn_qkv", "attn_out")
    lr: float = DEFAULT_LR["lora"]
    max_steps: int = 300
    batch_size: int = 8
    grad_checkpointing: bool = False
    reuse: bool = False             # data_name is a data set prepared already from this file and base
    extra: dict = field(default_factory=dict)  # further dotted config values (tests, presets)

    @property
    def format(self) -> str:
        return data_format(self.data_file)

    def prepare_request(self, data_root: str) -> PrepareRequest:
        return PrepareRequest((os.path.abspath(self.data_file),), os.path.join(data_root, self.data_name),
                              tokenizer="bpe", format=self.format, tokenizer_from=self.base)

    def config_dict(self, base: BaseModel, data_dir: str, run_dir: str) -> dict:
        """The new run's config: the base's model section, the prepared data, the fine-tuning settings.
        Paths are relative to the run folder so the workspace can move."""
        steps = self.max_steps
        train = {"init_from": os.path.relpath(self.base, run_dir), "finetune": self.method,
                 "batch_size": self.batch_size, "max_steps": steps, "lr": self.lr, "min_lr": self.lr / 10,
                 "warmup_steps": max(1, steps // 20), "schedule": "cosine", "optimizer": "adamw",
                 "weight_decay": 0.0 if self.method == "lora" else 0.1,
                 "eval_interval": max(5, steps // 10), "eval_steps": 20,
                 "checkpoint_interval": max(10, steps // 2), "grad_checkpointing": self.grad_checkpointing}
        if self.method == "lora":
            train.update({"lora_rank": self.lora_rank, "lora_alpha": self.lora_alpha,
                          "lora_targets": list(self.lora_targets)})
        prompt = sft_sample_prompt(data_dir)  # once the data is prepared: the answer to a held-out prompt
        if prompt:
            train.update({"sample_prompt": prompt, "sample_tokens": SAMPLE_TOKENS})
        out = {"model": dict(base.model), "data": {"dir": os.path.relpath(data_dir, run_dir)}, "train": train,
               "run": {"dir": "."}}
        for path, value in self.extra.items():
            section, key = path.split(".", 1)
            out.setdefault(section, {})[key] = value
        return out

    def config_text(self, base: BaseModel, data_dir: str, run_dir: str) -> str:
        return dump_new(self.config_dict(base, data_dir, run_dir))

    def config(self, base: BaseModel, data_dir: str, run_dir: str) -> Config:
        """The config as the engine will read it; ConfigError names every bad field."""
        return loads(self.config_text(base, data_dir, run_dir))


def problems(choices: FinetuneChoices, data_root: str, runs_root: str) -> list[tuple[str, str]]:
    """(field, why) for every choice that cannot work yet, in the dialog's order; empty when ready."""
    out: list[tuple[str, str]] = []
    try:
        read_base(choices.base) if choices.base else out.append(("base", "choose a base model"))
    except UsageError as exc:
        out.append(("base", str(exc)))
    if not choices.data_file:
        out.append(("data", "choose a data file (.jsonl instruction data or a text file)"))
    elif not os.path.isfile(choices.data_file):
        out.append(("data", f"no such file: {choices.data_file}"))
    if not NAME_RE.match(choices.data_name):
        out.append(("data_name", "name the data set with letters, digits, '.', '_' or '-'"))
    elif choices.reuse:
        if not os.path.isdir(os.path.join(data_root, choices.data_name)):
            out.append(("data_name", f"the data set {choices.data_name} is gone: prepare the file again"))
    elif os.path.exists(os.path.join(data_root, choices.data_name)):
        out.append(("data_name", f"a data set named {choices.data_name} exists already: choose another name"))
    if not NAME_RE.match(choices.run_name):
        out.append(("run_name", "name the run with letters, digits, '.', '_' or '-'"))
    elif os.path.exists(os.path.join(runs_root, choices.run_name)):
        out.append(("run_name", f"a run named {choices.run_name} exists already: choose another name"))
    if choices.method == "lora" and not choices.lora_targets:
        out.append(("lora_targets", "LoRA needs at least one projection to adapt"))
    return out


def sizes(choices: FinetuneChoices, base: BaseModel) -> dict:
    """core.estimate's figures for this fine-tune (parameters, trainable, memory by component); a
    ConfigError names the first bad field."""
    cfg = choices.config(base, "data", "run")
    return estimate(cfg, base.vocab_size or None)


_RECIPES: dict[tuple, str | None] = {}  # (file, size, mtime, base, its tokenizer's mtime) -> digest


def prepared_already(data_root: str, data_file: str, base: str) -> tuple[str, dict] | None:
    """(name, meta) of a data set in `data_root` that `llm-train prepare` made from these very bytes with
    this base's tokenizer and chat template (core.recipe), the newest; None when there is none. The file
    is read only when some data set records a recipe, and once per version of it."""
    candidates = [(name, meta) for name in data_sets(data_root)
                  if isinstance((meta := read_meta(os.path.join(data_root, name))).get("recipe"), str)]
    if not candidates or not (data_file and base):
        return None
    try:
        st, tok = os.stat(data_file), os.stat(os.path.join(base, layout.TOKENIZER))
    except OSError:
        return None
    key = (data_file, st.st_size, st.st_mtime_ns, base, tok.st_mtime_ns)
    if key not in _RECIPES:
        _RECIPES[key] = recipe([data_file], data_format(data_file), base)
    digest = _RECIPES[key]
    same = [(name, meta) for name, meta in candidates if meta["recipe"] == digest]
    return max(same, key=lambda nm: str(nm[1].get("created") or "")) if digest and same else None


def suggested_names(data_file: str, base: str, taken_data: set[str], taken_runs: set[str]) -> tuple[str, str]:
    """(data set name, run name): `<file stem>-sft` / `<base run>-ft-<file stem>`, made unique."""
    stem = safe_name(os.path.splitext(os.path.basename(data_file))[0]) or "data"
    data = unique_name(f"{stem}-{'sft' if data_format(data_file) == 'sft' else 'text'}", taken_data)
    run = safe_name(os.path.basename(run_of(base))) or "base"
    return data, unique_name(f"{run}-ft-{stem}", taken_runs)


# ---------------------------------------------------------------------------------------------- preview
@dataclass(frozen=True)
class Preview:
    """How the engine tokenized the first examples: status done | cancelled | failed."""

    status: str
    base: str
    data_file: str
    examples: list = field(default_factory=list)   # {"where", "ids", "pieces", "trained", "truncated"}
    template: str | None = None
    failure: EngineFailure | None = None
    unknown: int = 0                                # tokens the base's vocabulary maps to <unk>

    @property
    def ok(self) -> bool:
        return self.status == "done"

    def tokens(self) -> tuple[list[int], list[str], list[int]]:
        """The examples one after another (ids, pieces, trained), as the data tab's preview shows them."""
        ids: list[int] = []
        pieces: list[str] = []
        trained: list[int] = []
        for ex in self.examples:
            ids += ex["ids"]
            pieces += ex["pieces"]
            trained += ex["trained"]
        return ids, pieces, trained

    def counts(self) -> tuple[int, int, int]:
        """(examples, trained tokens, tokens) of the preview."""
        _, _, trained = self.tokens()
        return len(self.examples), sum(trained), len(trained)


class PreviewJob(EngineJob):
    """`llm-train prepare --preview`: one at a time; a new request cancels a running one and starts after it."""

    finished = Signal(object)  # a Preview
    doing = "reading the data"

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.request: tuple[str, str] | None = None
        self.pending: tuple[str, str] | None = None

    def start(self, base: str, data_file: str) -> None:
        if self.is_running():
            self.pending = (base, data_file)
            self.cancel()
            return
        self.request, self.pending = (base, data_file), None
        self._launch("prepare", ["--input", os.path.abspath(data_file), "--format", data_format(data_file),
                                 "--tokenizer-from", base, "--preview", str(PREVIEW_EXAMPLES), "--events"])

    def _is_done(self, exit_code: int, close_event: dict | None) -> bool:
        return (exit_code == 0 and not self._cancelled and close_event is not None
                and close_event.get("kind") == "preview")

    def _started(self) -> None:
        pass

    def _finished(self, status: str, close_event: dict | None, failure: EngineFailure | None) -> None:
        if self.pending is not None:  # superseded: run the newer request, report nothing for this one
            self.start(*self.pending)
            return
        base, data_file = self.request or ("", "")
        if status == "done" and close_event is not None:
            examples = [ex for ex in close_event.get("examples") or [] if _well_formed(ex)]
            unknown = close_event.get("unknown")
            self.finished.emit(Preview("done", base, data_file, examples, close_event.get("template"),
                                       unknown=unknown if isinstance(unknown, int) else 0))
        else:
            self.finished.emit(Preview(status, base, data_file, failure=failure))


def _well_formed(ex) -> bool:
    return (isinstance(ex, dict) and all(isinstance(ex.get(k), list) for k in ("ids", "pieces", "trained"))
            and len(ex["ids"]) == len(ex["pieces"]) == len(ex["trained"]))


__all__ = ["LORA_TARGETS", "METHODS", "BaseModel", "ConfigError", "FinetuneChoices", "Preview", "PreviewJob",
           "data_format", "problems", "read_base", "sizes", "suggested_names"]
