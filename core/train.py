"""Training: set up -> loop -> evaluate -> checkpoint. Reads top to bottom; no framework, no callbacks.

`llm-train train --config RUN.yaml` runs it in one process; `torchrun --nproc_per_node N -m core train ...`
runs the same code in DDP (nccl on GPU, gloo on CPU), multi-node through torchrun's rendezvous.

Batches are drawn per optimizer step from one generator seeded alike on every rank: the step's global
batch is (world_size * grad_accum_steps) micro-batches and rank r takes micro-batches
[r * accum, (r + 1) * accum). So N processes with accumulation a see exactly the data of one process with
accumulation N * a, and the generator's state in a checkpoint makes resume exact.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
import traceback
from dataclasses import replace

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

from core import checkpoint as ckpt
from core.config import Config, ConfigError, ModelConfig, flops_per_token, load_config
from core.config_text import save_run_configs
from core.model import GPT
from core.protocol import make_event
from core.runinfo import RunInfo, StopFlag, environment_versions
from core.sinks import FileSink, JsonlSink, ProgressSink, Sinks

EXIT_OK, EXIT_FAIL, EXIT_BAD_INPUT = 0, 1, 2
PEAK_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L40S": 362e12, "4090": 165e12, "3090": 71e12}


class SetupError(Exception):
    """Bad input found while setting up (exit code 2); `field` names the config field when there is one."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


# ----------------------------------------------------------------------------------------- helpers
def lr_at(step: int, t) -> float:
    """Learning rate for optimizer step `step` (0-based): linear warm-up, then decay to min_lr."""
    if t.warmup_steps and step < t.warmup_steps:
        return t.lr * (step + 1) / t.warmup_steps
    if t.schedule == "constant":
        return t.lr
    span = max(1, t.max_steps - t.warmup_steps)
    progress = min(1.0, (step - t.warmup_steps) / span)
    if t.schedule == "linear":
        return t.lr + (t.min_lr - t.lr) * progress
    return t.min_lr + 0.5 * (t.lr - t.min_lr) * (1.0 + math.cos(math.pi * progress))


def resolve_device(name: str) -> str:
    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise SetupError("train.device: cuda was asked for but no CUDA GPU is available", "train.device")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise SetupError("train.device: mps was asked for but is not available", "train.device")
    return name


def resolve_precision(name: str, device: str) -> str:
    if name == "auto":
        if device == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "fp32"
    if name == "fp16" and device == "cpu":
        raise SetupError("train.precision: fp16 is not supported on the CPU; use bf16 or fp32",
                         "train.precision")
    return name


class Batches:
    """Random contiguous windows of the token stream, (x, y) shifted by one; state is a torch Generator."""

    def __init__(self, data: np.ndarray, block_size: int, batch_size: int, seed: int, device: str):
        if len(data) <= block_size + 1:
            raise SetupError(f"data.dir: the split has {len(data)} tokens, fewer than block_size+2 = "
                             f"{block_size + 2}; use more text or a smaller model.block_size", "data.dir")
        self.data, self.T, self.B, self.device = data, block_size, batch_size, device
        self.gen = torch.Generator().manual_seed(seed)

    def draw(self, n_micro: int) -> torch.Tensor:
        """Window start offsets for n_micro micro-batches: (n_micro, B)."""
        return torch.randint(len(self.data) - self.T - 1, (n_micro, self.B), generator=self.gen)

    def fetch(self, starts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rows = np.stack([self.data[i:i + self.T + 1] for i in starts.tolist()]).astype(np.int64)
        xy = torch.from_numpy(rows)
        if self.device == "cuda":
            xy = xy.pin_memory().to(self.device, non_blocking=True)
        else:
            xy = xy.to(self.device)
        return xy[:, :-1], xy[:, 1:]


def autocast_ctx(device: str, precision: str):
    if precision in ("bf16", "fp16") and device in ("cuda", "cpu", "mps"):
        dtype = torch.bfloat16 if precision == "bf16" else torch.float16
        return torch.autocast(device_type=device, dtype=dtype)
    return contextlib.nullcontext()


# ----------------------------------------------------------------------------------------- setup
def load_run_config(args) -> Config:
    try:
        return load_config(args.config, args.set)
    except ConfigError as exc:
        raise SetupError(str(exc), exc.fields[0] if exc.fields else None) from None


def open_data(cfg: Config):
    from core.data import PrepareError, open_split, read_meta

    try:
        meta = read_meta(cfg.data.dir)
        train, val = open_split(cfg.data.dir, "train"), open_split(cfg.data.dir, "val")
    except (PrepareError, OSError, ValueError) as exc:
        raise SetupError(f"data.dir: {exc}", "data.dir") from None
    return meta, train, val


def with_vocab(cfg: Config, vocab_size: int) -> Config:
    m = cfg.model
    if m.vocab_size is not None and m.vocab_size < vocab_size:
        raise SetupError(f"model.vocab_size: {m.vocab_size} is smaller than the data's vocabulary "
                         f"({vocab_size} in {cfg.data.dir})", "model.vocab_size")
    return replace(cfg, model=replace(m, vocab_size=m.vocab_size or vocab_size))


def model_from_meta(meta: dict) -> ModelConfig:
    return ModelConfig(**meta["config"]["model"])


# ----------------------------------------------------------------------------------------- main
def train_main(args) -> int:
    rank = int(os.environ.get("RANK", 0))
    world = int(os.environ.get("WORLD_SIZE", 1))
    sinks = Sinks()
    try:
        cfg = load_run_config(args)
        if rank == 0:
            sinks = make_sinks(cfg, args)
        return run(cfg, args, rank, world, sinks)
    except SetupError as exc:
        if rank == 0:  # bad input is not part of the run's history: stdout only, never metrics.jsonl
            if args.events:
                JsonlSink(sys.stdout).emit(make_event("error", kind="usage", message=str(exc), field=exc.field))
            print(f"llm-train: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    finally:
        sinks.close()
        if dist.is_initialized():
            dist.destroy_process_group()


def make_sinks(cfg: Config, args) -> Sinks:
    """Check the run folder may be written, then open stdout + metrics.jsonl (+ progress) sinks."""
    run_dir = cfg.run.dir
    metrics = os.path.join(run_dir, "metrics.jsonl")
    if os.path.exists(run_dir) and not os.path.isdir(run_dir):
        raise SetupError(f"run.dir: {run_dir} exists and is not a folder", "run.dir")
    if os.path.exists(metrics) and os.path.getsize(metrics) > 0 and not args.resume:
        raise SetupError(f"run.dir: {run_dir} already holds a run; pass --resume to continue it, or choose "
                         f"another run.dir (nothing was overwritten)", "run.dir")
    if args.resume and ckpt.latest_checkpoint(run_dir) is None:
        raise SetupError(f"run.dir: nothing to resume in {run_dir} (no checkpoint)", "run.dir")
    out = [FileSink(metrics)]
    out.append(JsonlSink(sys.stdout) if args.events else ProgressSink(sys.stderr))
    return Sinks(out)


def run(cfg: Config, args, rank: int, world: int, sinks: Sinks) -> int:
    t = cfg.train
    ddp = world > 1
    device = resolve_device(t.device)
    precision = resolve_precision(t.precision, device)
    if ddp:
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
        if device == "cuda":
            torch.cuda.set_device(local_rank)
            device = f"cuda:{local_rank}"
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    dev_type = device.split(":")[0]
    if dev_type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    meta, train_data, val_data = open_data(cfg)
    cfg = with_vocab(cfg, int(meta["vocab_size"]))
    tokenizer_path = os.path.join(cfg.data.dir, "tokenizer.json")

    # ---- model, optimizer, state (fresh, resumed, or forked from a checkpoint)
    resume_from = ckpt.latest_checkpoint(cfg.run.dir) if args.resume else None
    parent = None if resume_from else t.init_from
    torch.manual_seed(t.seed)
    model = GPT(cfg.model).to(device)
    optimizer = model.make_optimizer(t.lr, t.weight_decay, t.betas, t.eps, dev_type)
    scaler = torch.amp.GradScaler(dev_type, enabled=(precision == "fp16"))
    batches = Batches(train_data, cfg.model.block_size, t.batch_size, t.seed, device)
    state = {"step": 0, "tokens": 0, "elapsed_s": 0.0, "best_val_loss": math.inf, "bad_evals": 0}
    source = resume_from or parent
    if source:
        try:
            src_meta = ckpt.read_meta(source)
            check_same_shape(cfg.model, model_from_meta(src_meta), source)
            ckpt.load_weights(model, source, device)
            saved = ckpt.load_state(source) if resume_from or os.path.isfile(os.path.join(source, "state.pt")) else \
                {"optimizer": optimizer.state_dict(), "data_rng": batches.gen.get_state(), "progress": {}}  # imported
        except ckpt.CheckpointError as exc:
            raise SetupError(str(exc), None if resume_from else "train.init_from") from None
        optimizer.load_state_dict(saved["optimizer"])
        if saved.get("scaler") and scaler.is_enabled():
            scaler.load_state_dict(saved["scaler"])
        batches.gen.set_state(saved["data_rng"])
        state.update({k: saved["progress"][k] for k in state if k in saved["progress"]})
        if resume_from:  # exact continuation: also the dropout RNG streams
            torch.set_rng_state(saved["torch_rng"])
            if dev_type == "cuda" and saved.get("cuda_rng") is not None:
                torch.cuda.set_rng_state(saved["cuda_rng"])
        else:
            state["best_val_loss"], state["bad_evals"] = math.inf, 0
    if state["step"] >= t.max_steps:
        raise SetupError(f"train.max_steps: {t.max_steps} is not beyond the checkpoint's step {state['step']}; "
                         f"raise train.max_steps to train further", "train.max_steps")

    raw_model = model
    if t.compile:
        model = torch.compile(model)
    if ddp:
        model = DDP(model, device_ids=[int(device.split(":")[1])] if dev_type == "cuda" else None)

    accum = t.grad_accum_steps
    tokens_per_step = t.batch_size * cfg.model.block_size * accum * world
    flops_tok = flops_per_token(cfg.model, cfg.model.vocab_size)
    peak = peak_flops(device) if dev_type == "cuda" else None
    info = RunInfo(cfg.run.dir) if rank == 0 else None
    resolved = cfg.to_dict()
    if info:
        info.started(args, parent=parent or (resume_from and info.parent()), config=resolved)
        save_run_configs(cfg, args.config, args.set)  # config.yaml as used (comments kept), resolved
    sinks.emit(make_event(
        "start", run_dir=cfg.run.dir, config=resolved, params=raw_model.num_params(), device=device,
        precision=precision, world_size=world, tokens_per_step=tokens_per_step, max_steps=t.max_steps,
        start_step=state["step"], resumed=bool(resume_from), parent=parent, compile=t.compile,
        versions=environment_versions(cfg.data.dir), pid=os.getpid()))

    stop = StopFlag(listen_stdin=bool(getattr(args, "events", False)) and rank == 0)
    ctx = autocast_ctx(dev_type, precision)
    tokenizer = None

    def save(step: int, reason: str) -> str | None:
        """Rank 0 writes; every rank waits so nobody runs ahead of a checkpoint."""
        path = None
        if rank == 0:
            progress = dict(state)
            saved_state = {
                "optimizer": optimizer.state_dict(),
                "scaler": scaler.state_dict() if scaler.is_enabled() else None,
                "data_rng": batches.gen.get_state(), "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state() if dev_type == "cuda" else None,
                "progress": {k: float(v) if isinstance(v, float) else v for k, v in progress.items()},
            }
            meta_out = {"config": resolved, "reason": reason, "params": raw_model.num_params(),
                        "best_val_loss": state["best_val_loss"], "tokens": state["tokens"],
                        "data_meta": {k: meta.get(k) for k in ("vocab_size", "tokenizer", "eot_id")},
                        "parent": parent, "versions": environment_versions(None)}
            path = ckpt.save_checkpoint(cfg.run.dir, step, raw_model, saved_state, meta_out, tokenizer_path)
            ckpt.prune_checkpoints(cfg.run.dir, t.keep_checkpoints, protect={path})
            sinks.emit(make_event("checkpoint", step=step, path=path, reason=reason))
        if ddp:
            dist.barrier()
        return path

    def evaluate(step: int) -> None:
        nonlocal tokenizer
        losses = estimate_loss(raw_model, cfg, train_data, val_data, device, ctx, rank, world)
        val = losses["val"]
        improved = val < state["best_val_loss"]
        if improved:
            state["best_val_loss"], state["bad_evals"] = val, 0
        else:
            state["bad_evals"] += 1
        sinks.emit(make_event("eval", step=step, tokens=state["tokens"], train_loss=losses["train"],
                              val_loss=val, val_ppl=math.exp(min(val, 50.0)),
                              best_val_loss=state["best_val_loss"], improved=improved,
                              elapsed_s=state["elapsed_s"]))
        if rank == 0 and (t.sample_tokens or cfg.run.save_attention):
            from core.data import load_tokenizer
            from core.generate import probe_attention, sample_text

            tokenizer = tokenizer or load_tokenizer(cfg.data.dir)
            if t.sample_tokens:
                text = sample_text(raw_model, tokenizer, t.sample_prompt, t.sample_tokens, device, seed=t.seed)
                sinks.emit(make_event("sample", step=step, prompt=t.sample_prompt, text=text))
            if cfg.run.save_attention and cfg.run.attention_probe:
                path = os.path.join(cfg.run.dir, "attention", f"{ckpt.step_dir_name(step)}.npz")
                probe_attention(raw_model, tokenizer, cfg.run.attention_probe, path, device)
                sinks.emit(make_event("attention", step=step, path=path))

    # ---- the loop
    step = state["step"]
    last_ckpt: str | None = None
    window_t0 = time.perf_counter()
    try:
        while step < t.max_steps:
            t0 = time.perf_counter()
            lr = lr_at(step, t)
            for group in optimizer.param_groups:
                group["lr"] = lr
            starts = batches.draw(world * accum)[rank * accum:(rank + 1) * accum]  # this rank's shard
            loss_sum = torch.zeros((), device=device)
            for micro in range(accum):
                x, y = batches.fetch(starts[micro])
                sync = contextlib.nullcontext()
                if ddp and micro < accum - 1:
                    sync = model.no_sync()  # all-reduce gradients only on the last micro-step
                with sync, ctx:
                    _, loss, _ = model(x, y)
                    loss = loss / accum
                scaler.scale(loss).backward()
                loss_sum += loss.detach()
            scaler.unscale_(optimizer)
            grad_norm = clip_gradients(raw_model, t.grad_clip, t.clip_mode)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            state["step"] = step
            state["tokens"] += tokens_per_step

            if ddp:  # the logged loss is the mean over all ranks (gloo has no AVG: sum, then divide)
                dist.all_reduce(loss_sum)
                loss_sum /= world
            if step % t.log_interval == 0 or step == t.max_steps:
                loss_value = loss_sum.item()  # CPU-GPU sync point (only on log steps)
                norm_value = float(grad_norm)
                now = time.perf_counter()
                dt = now - t0
                state["elapsed_s"] += now - window_t0
                window_t0 = now
                if not math.isfinite(loss_value):
                    sinks.emit(make_event("error", kind="nonfinite", step=step, field=None,
                                          message=f"loss became {loss_value} at step {step}; stopped. The last "
                                                  f"good checkpoint is kept: {last_ckpt or 'none yet'}. Try a "
                                                  f"lower train.lr or train.grad_clip.", checkpoint=last_ckpt))
                    if info:
                        info.ended("failed")
                    return EXIT_FAIL
                tps = tokens_per_step / dt if dt > 0 else 0.0
                ev = make_event("step", step=step, tokens=state["tokens"], loss=loss_value, lr=lr,
                                grad_norm=norm_value, clipped=bool(t.grad_clip and norm_value > t.grad_clip),
                                tokens_per_s=tps, elapsed_s=state["elapsed_s"], step_ms=dt * 1000.0)
                if peak:
                    ev["mfu"] = flops_tok * tps / (peak * world)
                sinks.emit(ev)

            final = step == t.max_steps
            if (t.eval_interval and step % t.eval_interval == 0) or final:
                evaluate(step)
            early = bool(t.early_stopping_patience and state["bad_evals"] >= t.early_stopping_patience)
            stopping = stop.agreed(ddp)
            if final or early or stopping:
                last_ckpt = save(step, "final" if final else ("early_stop" if early else "stopped"))
                if final:
                    sinks.emit(make_event("done", step=step, checkpoint=last_ckpt,
                                          best_val_loss=state["best_val_loss"]))
                    status = "done"
                else:
                    reason = f"early stopping: val loss did not improve for {t.early_stopping_patience} " \
                             f"evaluations" if early else stop.reason
                    sinks.emit(make_event("stopped", step=step, reason=reason, checkpoint=last_ckpt))
                    status = "done" if early else "stopped"
                if info:
                    info.ended(status)
                return EXIT_OK
            if t.checkpoint_interval and step % t.checkpoint_interval == 0:
                last_ckpt = save(step, "periodic")
        return EXIT_OK
    except SetupError:
        raise
    except Exception as exc:  # report, keep the last good checkpoint, exit non-zero
        traceback.print_exc(file=sys.stderr)
        kind = "oom" if "out of memory" in str(exc).lower() else "exception"
        hint = " Try a smaller train.batch_size or model.block_size." if kind == "oom" else ""
        sinks.emit(make_event("error", kind=kind, step=step, field=None,
                              message=f"{type(exc).__name__}: {exc}{hint}", checkpoint=last_ckpt))
        if info:
            info.ended("failed")
        return EXIT_FAIL
    finally:
        stop.close()


def check_same_shape(new: ModelConfig, old: ModelConfig, source: str) -> None:
    for name in ("n_layer", "n_head", "n_embd", "block_size", "vocab_size", "bias", "pos_encoding", "norm",
                 "activation", "mlp_ratio", "tie_embeddings", "n_kv_head", "rope_theta", "norm_eps", "qkv_bias",
                 "intermediate_size"):
        a, b = getattr(new, name), getattr(old, name)
        if a != b:
            raise SetupError(f"model.{name}: {a!r} differs from {b!r} in the checkpoint {source}; "
                             f"the model shape cannot change when resuming or forking", f"model.{name}")


def clip_gradients(model: torch.nn.Module, max_value: float, mode: str) -> torch.Tensor:
    """Returns the global L2 norm of the gradients before clipping (logged as grad_norm)."""
    params = [p for p in model.parameters() if p.grad is not None]
    if mode == "norm" and max_value > 0:
        return torch.nn.utils.clip_grad_norm_(params, max_value)
    norm = torch.nn.utils.get_total_norm([p.grad for p in params])
    if mode == "value" and max_value > 0:
        torch.nn.utils.clip_grad_value_(params, max_value)
    return norm


@torch.no_grad()
def estimate_loss(model, cfg: Config, train_data, val_data, device, ctx, rank: int, world: int) -> dict:
    """Mean loss over eval_steps fixed batches per split (same batches every eval), split across ranks."""
    t = cfg.train
    was_training = model.training
    model.eval()
    out = {}
    for split, data in (("train", train_data), ("val", val_data)):
        sampler = Batches(data, cfg.model.block_size, t.batch_size, seed=1234, device=device)
        starts = sampler.draw(t.eval_steps)
        total = torch.zeros(2, device=device)  # (sum of losses, count)
        for k in range(rank, t.eval_steps, world):
            x, y = sampler.fetch(starts[k])
            with ctx:
                _, loss, _ = model(x, y)
            total += torch.stack([loss.float(), torch.ones((), device=device)])
        if world > 1:
            dist.all_reduce(total)
        out[split] = (total[0] / total[1].clamp(min=1)).item()
    model.train(was_training)
    return out


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
