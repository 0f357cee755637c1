"""Setting up a training run: config, run folder, data, device, model, optimizer and state (fresh, resumed
or forked from a checkpoint), gathered in one `Trainer` that core.train's loop works on.

Every check that can fail on bad input runs here, before the first step, and raises UsageError naming the
config field (exit code 2); nothing is written to the run folder until the checks have passed.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

from core import checkpoint as ckpt
from core import guards, layout
from core import precision as precision_rules
from core.config import Config, ModelConfig, flops_per_token
from core.config_text import save_run_configs
from core.device import resolve_device
from core.errors import UsageError, quote
from core.model import GPT
from core.protocol import make_event
from core.runinfo import RunInfo, environment_versions
from core.shape import shape_problems
from core.sinks import FileSink, JsonlSink, ProgressSink, Sinks

PEAK_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L40S": 362e12, "4090": 165e12, "3090": 71e12}


@dataclass
class TrainState:
    """The run's progress: saved in every checkpoint (state.pt "progress") and restored on resume."""

    step: int = 0
    tokens: int = 0
    elapsed_s: float = 0.0
    best_val_loss: float = math.inf
    bad_evals: int = 0

    def to_saved(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_saved(cls, progress: dict) -> TrainState:
        return cls(**{f.name: progress[f.name] for f in fields(cls) if f.name in progress})


@dataclass
class Trainer:
    """What one training process works with; built by `set_up`, advanced by core.train."""

    cfg: Config
    rank: int
    world: int
    device: str
    precision: str
    sinks: Sinks
    data_meta: dict
    train_data: np.ndarray
    val_data: np.ndarray
    raw_model: GPT                       # the module itself: checkpoints, evaluation, samples
    model: torch.nn.Module               # what the step calls: raw_model, compiled and/or DDP-wrapped
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    batches: Batches
    state: TrainState
    resume_from: str | None              # the checkpoint this run continues exactly
    parent: str | None                   # the checkpoint this run was forked from (train.init_from)
    resolved: dict                       # the resolved config, as written to events and checkpoints
    info: RunInfo | None                 # run.json (rank 0 only)
    last_ckpt: str | None = None
    tokenizer: Any = None                # loaded on the first sample/attention probe
    ctx: Any = field(default_factory=contextlib.nullcontext)
    precision_reason: str = ""           # why this precision (the start event says it)

    @property
    def ddp(self) -> bool:
        """Several processes, or one launched by torchrun (the process group and DDP's all-reduces then run
        on a single GPU too: `torchrun --nproc_per_node 1` checks the NCCL path on a one-GPU machine)."""
        return self.world > 1 or dist.is_initialized()

    @property
    def dev_type(self) -> str:
        return self.device.split(":")[0]

    @property
    def tokens_per_step(self) -> int:
        t = self.cfg.train
        return t.batch_size * self.cfg.model.block_size * t.grad_accum_steps * self.world

    @property
    def tokenizer_path(self) -> str:
        return os.path.join(self.cfg.data.dir, layout.TOKENIZER)


# ----------------------------------------------------------------------------------------- pieces
def resolve_precision(name: str, device: str, n_embd: int) -> tuple[str, str]:
    """(precision, why) for train.precision on `device`; `auto` on a CPU depends on native bf16 and the
    model's width (core.precision)."""
    kind = device.split(":")[0]
    if name == "auto" and kind == "cuda":
        return precision_rules.gpu_precision(torch.cuda.is_bf16_supported())
    if name == "fp16" and kind == "cpu":
        raise UsageError("train.precision: fp16 is not supported on the CPU; use bf16 or fp32",
                         "train.precision")
    return precision_rules.explain(name, kind, n_embd)


class Batches:
    """Random contiguous windows of the token stream, (x, y) shifted by one; state is a torch Generator."""

    def __init__(self, data: np.ndarray, block_size: int, batch_size: int, seed: int, device: str):
        if len(data) <= block_size + 1:
            raise UsageError(f"data.dir: the split has {len(data)} tokens, fewer than block_size+2 = "
                             f"{block_size + 2}; use more text or a smaller model.block_size", "data.dir")
        self.data, self.T, self.B, self.device = data, block_size, batch_size, device
        self.gen = torch.Generator().manual_seed(seed)

    def draw(self, n_micro: int) -> torch.Tensor:
        """Window start offsets for n_micro micro-batches: (n_micro, B)."""
        return torch.randint(len(self.data) - self.T - 1, (n_micro, self.B), generator=self.gen)

    def fetch(self, starts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rows = np.stack([self.data[i:i + self.T + 1] for i in starts.tolist()]).astype(np.int64)
        xy = torch.from_numpy(rows)
        if str(self.device).startswith("cuda"):  # DDP ranks train on "cuda:N"
            xy = xy.pin_memory().to(self.device, non_blocking=True)
        else:
            xy = xy.to(self.device)
        return xy[:, :-1], xy[:, 1:]


LOW_PRECISION = {"bf16": torch.bfloat16, "fp16": torch.float16}  # train precision -> autocast dtype


def autocast_ctx(device: str, precision: str):
    if precision in LOW_PRECISION and device in ("cuda", "cpu", "mps"):
        return torch.autocast(device_type=device, dtype=LOW_PRECISION[precision])
    return contextlib.nullcontext()


def make_batches(data, block_size: int, batch_size: int, seed: int, device: str):
    """Windows of a token stream, or whole padded examples of an SFT split (core.sft)."""
    from core.sft import SftBatches, SftSplit

    if isinstance(data, SftSplit):
        return SftBatches(data, block_size, batch_size, seed, device)
    return Batches(data, block_size, batch_size, seed, device)


def open_data(cfg: Config):
    from core.data import check_folder, open_split, read_meta
    from core.sft import open_sft_split

    try:
        meta = read_meta(cfg.data.dir)
        if meta.get("kind") == "sft":  # ids + loss masks per example (core/sft.py checks its own files)
            opener = open_sft_split
        else:
            check_folder(cfg.data.dir, meta)
            opener = open_split
        train, val = opener(cfg.data.dir, "train"), opener(cfg.data.dir, "val")
    except (UsageError, OSError, ValueError) as exc:
        raise UsageError(f"data.dir: {exc}", "data.dir") from None
    return meta, train, val


def with_vocab(cfg: Config, vocab_size: int) -> Config:
    m = cfg.model
    if m.vocab_size is not None and m.vocab_size < vocab_size:
        raise UsageError(f"model.vocab_size: {m.vocab_size} is smaller than the data's vocabulary "
                         f"({vocab_size} in {cfg.data.dir})", "model.vocab_size")
    return replace(cfg, model=replace(m, vocab_size=m.vocab_size or vocab_size))


def model_from_meta(meta: dict) -> ModelConfig:
    return ModelConfig(**meta["config"]["model"])


def check_same_shape(new: ModelConfig, old: ModelConfig, source: str) -> None:
    problems = shape_problems(new, asdict(old), source)
    if problems:
        raise UsageError(problems[0].message, problems[0].path)


def peak_flops(device: str) -> float | None:
    """Dense bf16 peak of the GPU, for MFU; None when unknown."""
    try:
        name = torch.cuda.get_device_name(device)
    except Exception:
        return None
    for key, value in PEAK_FLOPS.items():
        if key in name:
            return value
    return None


def make_sinks(cfg: Config, resume: bool, events: bool) -> Sinks:
    """Check the run folder may be written, then open stdout + metrics.jsonl (+ progress) sinks."""
    run_dir = cfg.run.dir
    metrics = os.path.join(run_dir, layout.METRICS)
    if os.path.exists(run_dir) and not os.path.isdir(run_dir):
        raise UsageError(f"run.dir: {run_dir} exists and is not a folder", "run.dir")
    guards.lock_run_dir(run_dir, create=False)  # before any check or write: a second engine is refused
    if os.path.exists(metrics) and os.path.getsize(metrics) > 0 and not resume:
        raise UsageError(f"run.dir: {run_dir} already holds a run; pass --resume to continue it, or choose "
                         f"another run.dir (nothing was overwritten)", "run.dir")
    if resume and layout.latest_checkpoint(run_dir) is None and not guards.restart_if_no_checkpoint(run_dir):
        raise UsageError(f"run.dir: nothing to resume in {run_dir} (no checkpoint)", "run.dir")
    out = [FileSink(metrics), guards.LockRelease(run_dir)]
    out.append(JsonlSink(sys.stdout) if events else ProgressSink(sys.stderr))
    return Sinks(out)


# ----------------------------------------------------------------------------------------- set-up
def init_device(cfg: Config, world: int) -> tuple[str, str, str]:
    """(device, precision, why); joins the process group under torchrun (nccl on GPU, gloo on CPU), with a
    single process too."""
    device = resolve_device(cfg.train.device, "train.device", "train.device")
    precision, why = resolve_precision(cfg.train.precision, device, cfg.model.n_embd)
    if world > 1 or "TORCHELASTIC_RUN_ID" in os.environ:  # torchrun sets it; plain `llm-train train` does not
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
        if device == "cuda":
            torch.cuda.set_device(local_rank)
            device = f"cuda:{local_rank}"
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    if device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return device, precision, why


def restore(tr: Trainer, source: str) -> None:
    """Weights, optimizer, scaler, data position and progress from a checkpoint; the RNG streams too when
    resuming (exact continuation), a fresh early-stopping record when forking."""
    resuming = source == tr.resume_from
    try:
        layout.resolve_checkpoint(source)  # names a run folder given instead of one of its checkpoints
        check_same_shape(tr.cfg.model, ckpt.model_config(ckpt.verify(source), source), source)
        from core.lora import load_weights_any

        load_weights_any(tr.raw_model, source, tr.device)
        if resuming or os.path.isfile(os.path.join(source, layout.STATE)):
            saved = ckpt.load_state(source)
        else:  # an imported checkpoint (llm-train import): weights only, fresh optimizer and data position
            saved = {"optimizer": tr.optimizer.state_dict(), "data_rng": tr.batches.gen.get_state(),
                     "progress": {}}
    except ckpt.CheckpointError as exc:
        raise UsageError(str(exc), None if resuming else "train.init_from") from None
    try:
        tr.optimizer.load_state_dict(saved["optimizer"])
    except (ValueError, KeyError, TypeError) as exc:  # e.g. train.optimizer changed since the checkpoint
        raise UsageError(f"train.optimizer: the checkpoint's optimizer state does not fit "
                         f"train.optimizer={tr.cfg.train.optimizer}: {quote(str(exc))}", "train.optimizer") from None
    try:  # a state.pt that loads but does not fit (edited, damaged): name it, exit 2
        if saved.get("scaler") and tr.scaler.is_enabled():
            tr.scaler.load_state_dict(saved["scaler"])
        tr.batches.gen.set_state(saved["data_rng"])
        tr.state = TrainState.from_saved(saved["progress"])
        if resuming:
            torch.set_rng_state(saved["torch_rng"])
            if tr.dev_type == "cuda" and saved.get("cuda_rng") is not None:
                torch.cuda.set_rng_state(saved["cuda_rng"])
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
        raise UsageError(f"{os.path.join(source, layout.STATE)}: training state does not fit this run "
                         f"({quote(str(exc))})", None if resuming else "train.init_from") from None
    if not resuming:
        tr.state.best_val_loss, tr.state.bad_evals = math.inf, 0


def set_up(cfg: Config, resume: bool, rank: int, world: int, sinks: Sinks, config_path: str,
           overrides: list[str], record: bool = True) -> Trainer:
    """Everything before the first step; ends with the `start` event. `cfg` is `config_path` loaded with
    `overrides` (the run folder records both). `record=False` (a learning-rate range test, core.lr_find)
    writes nothing: no run folder, no lock, no base's list of LoRA children."""
    t = cfg.train
    device, precision, why = init_device(cfg, world)
    if t.optimizer == "muon" and precision == "fp16":
        raise UsageError("train.optimizer: muon does not work with fp16 (this GPU has no bf16); use "
                         "train.precision: fp32 or train.optimizer: adamw", "train.optimizer")
    meta, train_data, val_data = open_data(cfg)
    cfg = with_vocab(cfg, int(meta["vocab_size"]))
    resume_from = guards.newest_loadable_checkpoint(cfg.run.dir) if resume else None
    torch.manual_seed(t.seed)
    from core.lora import build_model  # fine-tuning: the base's shape and weights, adapters (core.lora)

    cfg, model = build_model(cfg, device, fresh=resume_from is None)
    if t.finetune == "lora" and precision in LOW_PRECISION:
        from core.lora import frozen_to

        frozen_to(model, LOW_PRECISION[precision])
    if t.finetune == "lora" and rank == 0 and record:
        from core.lora import note_lora_child

        note_lora_child(t.init_from, cfg.run.dir)
    dev_type = device.split(":")[0]
    tr = Trainer(
        cfg=cfg, rank=rank, world=world, device=device, precision=precision, sinks=sinks, data_meta=meta,
        train_data=train_data, val_data=val_data, raw_model=model, model=model,
        optimizer=model.make_optimizer(t.lr, t.weight_decay, t.betas, t.eps, dev_type, t.optimizer, t.muon_lr),
        scaler=torch.amp.GradScaler(dev_type, enabled=(precision == "fp16")),
        batches=make_batches(train_data, cfg.model.block_size, t.batch_size, t.seed, device),
        state=TrainState(),
        resume_from=resume_from, parent=None if resume_from else t.init_from, resolved=cfg.to_dict(),
        info=RunInfo(cfg.run.dir) if rank == 0 and record else None, ctx=autocast_ctx(dev_type, precision),
        precision_reason=why)
    if t.eval_interval:  # evaluations draw from the validation split too: refuse it now, not at the first one
        try:
            make_batches(val_data, cfg.model.block_size, t.batch_size, 1234, device)
        except UsageError as exc:
            raise UsageError(f"the validation split is too small to evaluate: {exc}", exc.field) from None
    if resume_from or (tr.parent and t.finetune == "none"):  # full/lora: weights only, from step 0
        restore(tr, resume_from or tr.parent)
    if tr.state.step >= t.max_steps:
        raise UsageError(f"train.max_steps: {t.max_steps} is not beyond the checkpoint's step "
                         f"{tr.state.step}; raise train.max_steps to train further", "train.max_steps")
    if t.compile:
        tr.model = torch.compile(tr.model)
    if tr.ddp:
        tr.model = DDP(tr.model, device_ids=[int(device.split(":")[1])] if dev_type == "cuda" else None)
    announce(tr, config_path, overrides)
    if resume_from and rank == 0:
        from core.schedule import resume_jump

        saved = (ckpt.read_meta(resume_from).get("config") or {}).get("train")  # restore() verified it
        if jump := resume_jump(tr.state.step, saved if isinstance(saved, dict) else {}, t):
            sinks.emit(make_event("log", level="warning", message=jump))
    return tr


def announce(tr: Trainer, config_path: str, overrides: list[str]) -> None:
    """run.json, config.yaml and config.resolved.yaml (rank 0), then the `start` event."""
    cfg, t = tr.cfg, tr.cfg.train
    if tr.info:
        guards.lock_run_dir(cfg.run.dir)  # set-up succeeded: now the folder may be created (and locked)
        tr.info.started(bool(tr.resume_from), parent=tr.parent or (tr.resume_from and tr.info.parent()),
                        config=tr.resolved)
        save_run_configs(cfg, config_path, overrides)  # config.yaml as used (comments kept), resolved
    tr.sinks.emit(make_event(
        "start", run_dir=cfg.run.dir, config=tr.resolved, params=tr.raw_model.num_params(), device=tr.device,
        precision=tr.precision, precision_reason=tr.precision_reason, world_size=tr.world,
        local_world_size=int(os.environ.get("LOCAL_WORLD_SIZE", tr.world)),  # torchrun's, on this node
        backend=dist.get_backend() if dist.is_initialized() else None, tokens_per_step=tr.tokens_per_step,
        max_steps=t.max_steps, start_step=tr.state.step, resumed=bool(tr.resume_from), parent=tr.parent,
        compile=t.compile, versions=environment_versions(cfg.data.dir), pid=os.getpid()))


def mfu_inputs(tr: Trainer) -> tuple[float, float | None]:
    """(training FLOPs per token, the GPU's peak FLOP/s or None) for the step event's `mfu`."""
    flops = flops_per_token(tr.cfg.model, tr.cfg.model.vocab_size)
    return flops, peak_flops(tr.device) if tr.dev_type == "cuda" else None
