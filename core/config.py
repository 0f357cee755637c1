"""Run configuration: typed, frozen dataclasses loaded from YAML, validated and saved (sizes: core.estimate).

This module is imported by the GUI process, so it must stay pure Python: no torch, no Qt.

A run config has four sections (`model`, `data`, `train`, `run`). Each field carries its meaning and
unit in `metadata["doc"]` (the studio turns these into tooltips) and, for enumerations, its allowed
values in `metadata["choices"]` (the studio turns these into combo boxes).

Loading rejects unknown keys, checks every type and cross-field rule, and raises a single
`ConfigError` that lists every problem by dotted path, e.g.
``model.n_embd: 100 is not divisible by model.n_head=3``.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import re
from dataclasses import dataclass, field, fields
from typing import Any

import yaml

from core.errors import UsageError, quote
from core.schedule import schedule_problems

#: A run config is a few hundred bytes; a cap keeps a huge file from stalling the YAML parser for minutes.
MAX_CONFIG_BYTES = 1 << 20

SECTIONS = ("model", "data", "train", "run")
_FLOAT_TEXT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _f(default: Any, doc: str, choices: tuple | None = None, minimum: float | None = None,
       maximum: float | None = None, path: bool = False):
    """A dataclass field with its documentation and constraints in metadata."""
    meta: dict[str, Any] = {"doc": doc}
    if choices is not None:
        meta["choices"] = choices
    if minimum is not None:
        meta["min"] = minimum
    if maximum is not None:
        meta["max"] = maximum
    if path:
        meta["path"] = True
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class ModelConfig:
    """Shape of the decoder-only transformer."""

    n_layer: int = _f(6, "Number of transformer blocks.", minimum=1, maximum=256)
    n_head: int = _f(6, "Attention heads per block; n_embd must be divisible by it.", minimum=1, maximum=256)
    n_embd: int = _f(384, "Width of the residual stream (embedding size), in features.", minimum=1, maximum=65536)
    block_size: int = _f(256, "Context length in tokens (longest sequence the model sees).", minimum=1,
                         maximum=1 << 20)
    vocab_size: int | None = _f(None, "Vocabulary size; empty = taken from the data folder's meta.json.",
                                minimum=2, maximum=1 << 22)
    dropout: float = _f(0.0, "Dropout probability on attention, residual and embeddings (0 = off).",
                        minimum=0.0, maximum=0.9)
    bias: bool = _f(False, "Use bias terms in Linear layers and norms.")
    pos_encoding: str = _f("learned", "Positional encoding: learned table, fixed sinusoids, or rotary (RoPE).",
                           choices=("learned", "sinusoidal", "rope"))
    norm: str = _f("layernorm", "Normalisation layer (pre-norm).", choices=("layernorm", "rmsnorm"))
    activation: str = _f("gelu", "Feed-forward activation; swiglu uses a gated 8/3-wide hidden layer.",
                         choices=("gelu", "relu", "swiglu"))
    mlp_ratio: float = _f(4.0, "Feed-forward hidden width as a multiple of n_embd (swiglu scales it by 2/3).",
                          minimum=0.25, maximum=64.0)
    tie_embeddings: bool = _f(True, "Share the token embedding matrix with the output projection.")
    n_kv_head: int | None = _f(None, "Key/value heads (grouped-query attention): each serves n_head/n_kv_head "
                               "query heads and the KV cache keeps only these; empty = n_head (plain "
                               "multi-head attention).", minimum=1, maximum=256)
    rope_theta: float = _f(10000.0, "RoPE base: rotation angles are pos * rope_theta^(-2i/head_size); "
                           "larger bases suit longer contexts. Used only with pos_encoding=rope.",
                           minimum=1.0, maximum=1.0e12)
    norm_eps: float = _f(1.0e-5, "Epsilon added inside every LayerNorm/RMSNorm for numerical stability.",
                         minimum=1.0e-12, maximum=1.0)
    qkv_bias: bool = _f(False, "Bias on the query/key/value projections even when bias is off (Qwen2 "
                        "style); with bias on they have one anyway.")
    intermediate_size: int | None = _f(None, "Feed-forward hidden width in features; overrides mlp_ratio when "
                                       "set (imported models); empty = derived from mlp_ratio.",
                                       minimum=1, maximum=1 << 20)
    qk_norm: bool = _f(False, "RMS-normalise queries and keys per head before attention (QK-norm): steadier "
                       "training at higher learning rates.")
    qk_norm_weight: bool = _f(False, "Give QK-norm a learned weight per head feature, one for the queries and "
                              "one for the keys (Qwen3); off: parameter-free. Needs qk_norm.")
    head_dim: int | None = _f(None, "Width of each attention head; empty = n_embd/n_head. Set where the heads "
                              "are wider or narrower than that (Qwen3): queries are n_head x head_dim wide.",
                              minimum=2, maximum=4096)


@dataclass(frozen=True)
class DataConfig:
    """Where the prepared tokens live."""

    dir: str = _f("data", "Folder written by `llm-train prepare` (tokenizer.json, train.bin, val.bin, "
                  "meta.json); relative to the config file.", path=True)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation, evaluation, checkpointing and hardware."""

    batch_size: int = _f(12, "Sequences per micro-batch (per process).", minimum=1, maximum=1 << 16)
    grad_accum_steps: int = _f(1, "Micro-batches accumulated per optimizer step (per process).", minimum=1,
                               maximum=1 << 12)
    max_steps: int = _f(1000, "Optimizer steps to train for.", minimum=1, maximum=1 << 31)
    lr: float = _f(1.0e-3, "Peak learning rate (after warm-up).", minimum=0.0, maximum=10.0)
    min_lr: float = _f(1.0e-4, "Learning rate at the end of the decay.", minimum=0.0, maximum=10.0)
    warmup_steps: int | None = _f(None, "Steps of linear warm-up from 0 to lr; empty = a tenth of max_steps, "
                                  "at most 100.", minimum=0)
    schedule: str = _f("cosine", "Decay after warm-up, from lr to min_lr at max_steps; wsd = warm-up, stable "
                       "at lr, then a linear decay to min_lr over the last decay_fraction of the steps.",
                       choices=("cosine", "linear", "constant", "wsd"))
    decay_fraction: float = _f(0.2, "With schedule=wsd: the fraction of max_steps spent decaying to min_lr.",
                               minimum=0.0, maximum=1.0)
    restart_step: int = _f(0, "Start the schedule over at this step (a fork or a continued run): from restart_lr "
                           "down to min_lr at max_steps, in the same shape; 0 = no restart.", minimum=0)
    restart_lr: float | None = _f(None, "With restart_step: the learning rate the schedule starts over from, "
                                  "without warm-up (the rate the run had reached); empty = warm up to lr again.",
                                  minimum=0.0, maximum=10.0)
    optimizer: str = _f("adamw", "adamw for every parameter, or muon: Muon (orthogonalised momentum, "
                        "torch.optim.Muon) for the 2-D matrices inside the blocks, AdamW for embeddings, "
                        "head, norms and biases.", choices=("adamw", "muon"))
    muon_lr: float = _f(0.02, "With optimizer=muon: peak learning rate of the Muon matrices (scaled by the "
                        "schedule like lr).", minimum=0.0, maximum=10.0)
    target_val_loss: float | None = _f(None, "Stop (a `done` event saying so) at the first evaluation whose val "
                                       "loss is at or below this; empty = train to max_steps.", minimum=0.0)
    weight_decay: float = _f(0.1, "AdamW decoupled weight decay (matrices only; not biases, norms).",
                             minimum=0.0, maximum=10.0)
    betas: list = _f([0.9, 0.95], "AdamW (beta1, beta2).")
    eps: float = _f(1.0e-8, "AdamW epsilon.", minimum=0.0, maximum=1.0)
    grad_clip: float = _f(1.0, "Clip threshold (global L2 norm, or per element with clip_mode=value); "
                          "0 = off.", minimum=0.0)
    clip_mode: str = _f("norm", "Clip by global gradient norm, or each gradient element by value.",
                        choices=("norm", "value"))
    eval_interval: int = _f(250, "Evaluate every this many optimizer steps (0 = only at the end).", minimum=0)
    eval_steps: int = _f(50, "Validation batches per evaluation.", minimum=1, maximum=100_000)
    early_stopping_patience: int = _f(0, "Stop after this many evaluations without a val-loss improvement "
                                      "(0 = never).", minimum=0)
    checkpoint_interval: int = _f(500, "Write a checkpoint every this many steps (0 = only at the end).",
                                  minimum=0)
    keep_checkpoints: int = _f(0, "Keep only the newest N periodic checkpoints (0 = keep all).", minimum=0)
    sample_tokens: int = _f(0, "Tokens to generate as a sample at each evaluation (0 = off).", minimum=0)
    sample_prompt: str = _f("\n", "Prompt for the evaluation sample.")
    log_interval: int = _f(1, "Emit a step event every this many optimizer steps.", minimum=1)
    seed: int = _f(1337, "Random seed (weights init, batch order, dropout).", minimum=0,
                   maximum=2**63 - 1)
    device: str = _f("auto", "Where to train: auto picks cuda, then mps, then cpu.",
                     choices=("auto", "cpu", "cuda", "mps"))
    precision: str = _f("auto", "Number format: auto = bf16 on GPUs that support it, else fp16 on GPU; on a CPU "
                        "bf16 autocast where the CPU has native bf16 and the model is wide enough (AMX: model.n_embd >= 64, "
                        "AVX512-BF16: >= 256), "
                        "else fp32. The start event says which and why.",
                        choices=("auto", "fp32", "bf16", "fp16"))
    compile: bool = _f(False, "Compile the model with torch.compile (slow start, faster steps on GPU).")
    init_from: str | None = _f(None, "Start from this checkpoint's weights and optimizer state "
                               "(fork); empty = fresh init.", path=True)
    finetune: str = _f("none", "With init_from: none = fork (weights, optimizer and progress continue); "
                       "full = weights only, fresh optimizer from step 0; lora = frozen base + adapters.",
                       choices=("none", "full", "lora"))
    lora_rank: int = _f(8, "LoRA adapter rank r.", minimum=1, maximum=4096)
    lora_alpha: float = _f(16.0, "LoRA scale numerator: the update is (alpha / rank) * B @ A.", minimum=0.0)
    lora_dropout: float = _f(0.0, "Dropout on the LoRA branch's input.", minimum=0.0, maximum=0.9)
    lora_targets: list = _f(["attn_qkv", "attn_out"], "Projections that get adapters: attn_qkv, attn_out, "
                            "mlp_in, mlp_out.")
    grad_checkpointing: bool = _f(False, "Recompute each block's activations in the backward pass "
                                  "(less memory, ~30% more compute).")


@dataclass(frozen=True)
class RunConfig:
    """Where a run writes, and what it records for inspection."""

    dir: str = _f("runs/run", "Run folder: metrics.jsonl, checkpoints/, config; relative to the config file.",
                  path=True)
    attention_probe: str = _f("", "Text whose attention maps are saved at each evaluation, to watch patterns "
                              "form; empty = the start of the validation data (text in the data's own vocabulary).")
    save_attention: bool = _f(True, "Save the probe text's attention at each evaluation.")


@dataclass(frozen=True)
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def replace(self, **sections) -> Config:
        return dataclasses.replace(self, **sections)


SECTION_TYPES = {"model": ModelConfig, "data": DataConfig, "train": TrainConfig, "run": RunConfig}


# ----------------------------------------------------------------------------------------- errors
@dataclass(frozen=True)
class Problem:
    path: str       # dotted path, e.g. "model.n_embd"; "" for the file itself
    message: str    # full sentence naming the field and the value

    def __str__(self) -> str:
        return self.message


class ConfigError(UsageError, ValueError):
    """Every problem found in a config, each naming its field by dotted path (`field`: the first one)."""

    def __init__(self, problems: list[Problem], source: str | None = None):
        self.problems = list(problems)
        self.source = source
        head = f"{source}: " if source else ""
        if len(self.problems) == 1:
            text = head + str(self.problems[0])
        else:
            text = head + f"{len(self.problems)} problems:\n" + "\n".join(f"  {p}" for p in self.problems)
        super().__init__(text, self.problems[0].path if self.problems else None)

    @property
    def fields(self) -> list[str]:
        return [p.path for p in self.problems]


# ----------------------------------------------------------------------------------------- parsing
def field_docs() -> dict[str, dict]:
    """{"model.n_layer": {"doc", "type", "default", "choices"?, "min"?, "max"?}} for every field."""
    out = {}
    for sname, cls in SECTION_TYPES.items():
        for f in fields(cls):
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            out[f"{sname}.{f.name}"] = {"type": _type_name(f.type), "default": default, **dict(f.metadata)}
    return out


def _type_name(t: Any) -> str:
    s = t if isinstance(t, str) else getattr(t, "__name__", str(t))
    return s.replace(" ", "")


def _check_value(path: str, value: Any, type_name: str, meta: dict, problems: list[Problem]) -> Any:
    """Check one value against its declared type and constraints; returns the coerced value."""
    optional = type_name.endswith("|None")
    base = type_name.replace("|None", "")
    if value is None:
        if optional:
            return None
        problems.append(Problem(path, f"{path}: must not be empty (expected {base})"))
        return None
    ok = True
    if base == "bool":
        ok = isinstance(value, bool)
    elif base == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif base == "float":
        if isinstance(value, str) and _FLOAT_TEXT.match(value.strip()):
            value = float(value)  # YAML 1.1 reads `3e-4` (no dot) as a string; people mean a number
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok:
            value = float(value)
            if not math.isfinite(value):
                problems.append(Problem(path, f"{path}: must be a finite number, got {quote(value)}"))
                return value
    elif base == "str":
        ok = isinstance(value, str)
    elif base == "list":
        ok = isinstance(value, (list, tuple))
        value = list(value) if ok else value
    if not ok:
        problems.append(Problem(path, f"{path}: expected {base}, got {quote(value)} ({type(value).__name__})"))
        return value
    if "choices" in meta and value not in meta["choices"]:
        choices = ", ".join(meta["choices"])
        problems.append(Problem(path, f"{path}: must be one of {choices}; got {quote(value)}"))
    if base in ("int", "float"):
        if "min" in meta and value < meta["min"]:
            problems.append(Problem(path, f"{path} must be >= {meta['min']}, got {quote(value)}"))
        if "max" in meta and value > meta["max"]:
            problems.append(Problem(path, f"{path} must be <= {meta['max']}, got {quote(value)}"))
    return value


def from_dict(raw: Any, source: str | None = None) -> Config:
    """Build a validated Config from plain data (as read from YAML). Raises ConfigError."""
    problems: list[Problem] = []
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError([Problem("", f"expected a mapping with sections {', '.join(SECTIONS)}, "
                                        f"got {type(raw).__name__}")], source)
    sections = {}
    for key in raw:
        if key not in SECTION_TYPES:
            problems.append(Problem(str(key), f"{key}: unknown section (expected one of {', '.join(SECTIONS)})"))
    for sname, cls in SECTION_TYPES.items():
        sraw = raw.get(sname) or {}
        if not isinstance(sraw, dict):
            problems.append(Problem(sname, f"{sname}: expected a mapping, got {quote(sraw)}"))
            sections[sname] = cls()
            continue
        known = {f.name: f for f in fields(cls)}
        kwargs = {}
        for key, value in sraw.items():
            path = f"{sname}.{key}"
            if key not in known:
                hint = _closest(str(key), list(known))
                problems.append(Problem(path, f"{path}: unknown key" + (f" (did you mean {sname}.{hint}?)"
                                                                        if hint else "")))
                continue
            f = known[key]
            kwargs[key] = _check_value(path, value, _type_name(f.type), dict(f.metadata), problems)
        try:
            sections[sname] = cls(**kwargs)
        except TypeError as exc:  # should not happen after the checks above
            problems.append(Problem(sname, f"{sname}: {exc}"))
            sections[sname] = cls()
    cfg = Config(**sections)
    # Cross-field rules too, so every problem shows at once; skip those touching an already-bad field.
    bad = {p.path for p in problems}
    try:
        problems.extend(p for p in cross_field_problems(cfg) if p.path not in bad and not _touches(p, bad))
    except (TypeError, ValueError, ZeroDivisionError):
        pass
    if problems:
        raise ConfigError(problems, source)
    return cfg


def _touches(problem: Problem, bad: set[str]) -> bool:
    """Whether a cross-field problem's message mentions a field that already has a problem."""
    return any(path and path in problem.message for path in bad)


def _closest(word: str, options: list[str]) -> str | None:
    import difflib

    hits = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return hits[0] if hits else None


#: Names of the projections LoRA can adapt (train.lora_targets); core.lora maps them to modules.
LORA_TARGETS = ("attn_qkv", "attn_out", "mlp_in", "mlp_out")


def cross_field_problems(cfg: Config) -> list[Problem]:
    """Rules that involve more than one field."""
    m, t = cfg.model, cfg.train
    out: list[Problem] = []
    if m.head_dim is None and m.n_embd % m.n_head:
        out.append(Problem("model.n_embd", f"model.n_embd: {m.n_embd} is not divisible by "
                                           f"model.n_head={m.n_head} (or set model.head_dim)"))
    elif m.pos_encoding == "rope" and head_size(m) % 2:
        field = "model.head_dim" if m.head_dim is not None else "model.n_head"
        out.append(Problem(field, f"{field}: rope needs an even head size, got "
                                  + (f"{m.head_dim}" if m.head_dim is not None else
                                     f"n_embd/n_head = {m.n_embd // m.n_head}")))
    elif m.pos_encoding == "sinusoidal" and m.n_embd % 2:
        out.append(Problem("model.n_embd", f"model.n_embd: sinusoidal encoding needs an even width, "
                                           f"got {m.n_embd}"))
    if m.n_kv_head is not None and (m.n_kv_head > m.n_head or m.n_head % m.n_kv_head):
        out.append(Problem("model.n_kv_head", f"model.n_kv_head: model.n_head={m.n_head} must be a multiple "
                                              f"of model.n_kv_head={m.n_kv_head} (each key/value head serves "
                                              f"a whole group of query heads)"))
    if m.qk_norm_weight and not m.qk_norm:
        out.append(Problem("model.qk_norm_weight", "model.qk_norm_weight: a weight for QK-norm needs "
                                                   "model.qk_norm: true"))
    out += [Problem(path, message) for path, message in schedule_problems(t)]
    if t.optimizer == "muon" and t.precision == "fp16":
        out.append(Problem("train.optimizer", "train.optimizer: muon does not work with train.precision=fp16 "
                                              "(the grad scaler); use bf16, fp32 or auto on a bf16 GPU"))
    betas = t.betas
    if len(betas) != 2 or not all(isinstance(b, (int, float)) and 0.0 <= b < 1.0 for b in betas):
        out.append(Problem("train.betas", f"train.betas: expected two numbers in [0, 1), got {quote(betas)}"))
    targets = t.lora_targets
    if not targets or not all(isinstance(x, str) and x in LORA_TARGETS for x in targets):
        out.append(Problem("train.lora_targets", f"train.lora_targets: expected a non-empty list of "
                                                 f"{', '.join(LORA_TARGETS)}; got {quote(targets)}"))
    if t.finetune != "none" and not t.init_from:
        out.append(Problem("train.init_from", f"train.init_from: train.finetune={t.finetune} needs the "
                                              f"checkpoint to fine-tune"))
    if not cfg.data.dir:
        out.append(Problem("data.dir", "data.dir: must name the prepared data folder"))
    if not cfg.run.dir:
        out.append(Problem("run.dir", "run.dir: must name the run folder"))
    return out


def set_override(raw: dict, assignment: str) -> None:
    """Apply one `section.key=value` override (value parsed as YAML) to raw config data."""
    if "=" not in assignment:
        raise ConfigError([Problem("", f"--set {quote(assignment)}: expected section.key=value")])
    key, _, text = assignment.partition("=")
    parts = key.strip().split(".")
    if len(parts) != 2 or not all(parts):
        raise ConfigError([Problem(key, f"--set {quote(assignment)}: expected section.key=value")])
    try:
        value = safe_yaml(text) if text.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError([Problem(key, f"--set {key}: cannot parse value {quote(text)}: {exc}")]) from exc
    section = raw.setdefault(parts[0], {})
    if not isinstance(section, dict):
        raise ConfigError([Problem(parts[0], f"{parts[0]}: expected a mapping")])
    section[parts[1]] = value


def safe_yaml(text: str):
    """yaml.safe_load, refusing anchors and aliases first: a few lines of aliases expand to gigabytes
    (a "billion laughs"), and a config has no use for them. yaml.YAMLError (with a line) when refused."""
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise yaml.YAMLError(f"line {event.start_mark.line + 1}: YAML anchors and aliases (&name, *name) "
                                 f"are not allowed in a config")
    return yaml.safe_load(text)


def read_yaml(path: str) -> dict:
    """Read a YAML file into plain data (safe_load); ConfigError names the file and the line on failure."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_CONFIG_BYTES + 1)
        if len(data) > MAX_CONFIG_BYTES:
            raise ConfigError([Problem("", f"{path}: config file larger than {MAX_CONFIG_BYTES} bytes; "
                                           f"a run config is a few hundred bytes")])
        raw = safe_yaml(data.decode("utf-8"))
    except FileNotFoundError:
        raise ConfigError([Problem("", f"config file not found: {path}")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([Problem("", f"cannot read config file {path}: {exc}")]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([Problem("", f"{path}: invalid YAML: {exc}")]) from None
    return raw if raw is not None else {}


def load_config(path: str, overrides: list[str] | None = None, resolve: bool = True) -> Config:
    """Load, override, validate and (optionally) resolve relative paths against the file's folder."""
    raw = read_yaml(path)
    for assignment in overrides or []:
        if not isinstance(raw, dict):
            break
        set_override(raw, assignment)
    cfg = from_dict(raw, source=path)
    return resolve_paths(cfg, os.path.dirname(os.path.abspath(path))) if resolve else cfg


def loads(text: str, base_dir: str | None = None, source: str | None = None) -> Config:
    """Validate config text (the studio's YAML tab); resolve paths when base_dir is given."""
    if len(text) > MAX_CONFIG_BYTES:
        raise ConfigError([Problem("", f"config text larger than {MAX_CONFIG_BYTES} characters")], source)
    try:
        raw = safe_yaml(text)
    except yaml.YAMLError as exc:
        raise ConfigError([Problem("", f"invalid YAML: {exc}")], source) from None
    cfg = from_dict(raw, source)
    return resolve_paths(cfg, base_dir) if base_dir else cfg


def resolve_paths(cfg: Config, base_dir: str) -> Config:
    """Make every path field absolute, relative paths resolving against base_dir."""
    new = {}
    for sname, cls in SECTION_TYPES.items():
        section = getattr(cfg, sname)
        changes = {}
        for f in fields(cls):
            value = getattr(section, f.name)
            if f.metadata.get("path") and value:
                changes[f.name] = os.path.normpath(os.path.join(base_dir, os.path.expanduser(value)))
        new[sname] = dataclasses.replace(section, **changes)
    return Config(**new)


# Sizes and estimates live in core.estimate (also torch-free); re-exported for the studio and the engine.
from core.estimate import (  # noqa: E402
    data_vocab_size,
    estimate,
    ffn_hidden,
    flops_per_token,
    head_size,
    human_bytes,
    human_count,
    lora_params,
    mlp_hidden,
    param_count,
)

__all__ = ["SECTIONS", "SECTION_TYPES", "Config", "ConfigError", "DataConfig", "ModelConfig", "Problem",
           "RunConfig", "TrainConfig", "cross_field_problems", "data_vocab_size", "estimate",
           "ffn_hidden", "field_docs", "flops_per_token", "from_dict", "head_size", "human_bytes", "human_count",
           "load_config", "loads", "lora_params", "mlp_hidden", "param_count", "read_yaml", "resolve_paths",
           "set_override"]
