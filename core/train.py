"""Training: set up -> loop (one optimizer step, log, evaluate, save) -> close. No framework, no callbacks.

`llm-train train --config RUN.yaml` runs it in one process; `torchrun --nproc_per_node N -m core train ...`
runs the same code in DDP (nccl on GPU, gloo on CPU), multi-node through torchrun's rendezvous.

Batches are drawn per optimizer step from one generator seeded alike on every rank: the step's global
batch is (world_size * grad_accum_steps) micro-batches and rank r takes micro-batches
[r * accum, (r + 1) * accum). So N processes with accumulation a see exactly the data of one process with
accumulation N * a, and the generator's state in a checkpoint makes resume exact.

The set-up (config checks, data, model, restoring a checkpoint) is core.trainer_setup; this module is the
loop over its `Trainer` and `TrainState`. The library takes plain values; core.commands.train turns the
command line into them.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
import traceback

import torch
import torch.distributed as dist

from core import checkpoint as ckpt
from core.config import Config, load_config
from core.errors import EXIT_FAIL, EXIT_OK, UsageError
from core.evaluation import estimate_loss, probe
from core.guards import FiniteGuard, is_disk_full
from core.lora import finetune_meta
from core.protocol import make_event
from core.runinfo import StopFlag, ThreadShare, environment_versions
from core.schedule import lr_at
from core.sinks import Sinks
from core.trainer_setup import Trainer, make_sinks, mfu_inputs, set_up


def train(config: str, overrides: list[str] | None = None, *, resume: bool = False, events: bool = False,
          rank: int = 0, world: int = 1) -> int:
    """Train (or resume) the run of `config`; the exit code. Bad input raises UsageError before anything
    is written; a failure during the run is an `error` event and EXIT_FAIL."""
    sinks = Sinks()
    try:
        cfg = load_config(config, list(overrides or []))
        if rank == 0:  # only rank 0 speaks; the other ranks train silently
            sinks = make_sinks(cfg, resume, events)
        return run(cfg, resume=resume, rank=rank, world=world, sinks=sinks, listen_stdin=events and rank == 0,
                   config_path=config, overrides=list(overrides or []))
    finally:
        sinks.close()
        if dist.is_initialized():
            dist.destroy_process_group()


def run(cfg: Config, *, resume: bool, rank: int, world: int, sinks: Sinks, listen_stdin: bool,
        config_path: str, overrides: list[str]) -> int:
    share = ThreadShare(cfg.run.dir, enabled=world == 1)  # before the start event, which the studio answers
    tr = set_up(cfg, resume, rank, world, sinks, config_path, overrides)
    stop = StopFlag(listen_stdin=listen_stdin)
    try:
        return loop(tr, stop, share)
    except UsageError:  # e.g. a validation split too small for one batch, found at the first evaluation
        raise
    except Exception as exc:  # report, keep the last good checkpoint, exit non-zero
        return fail(tr, exc)
    finally:
        stop.close()


def loop(tr: Trainer, stop: StopFlag, share: ThreadShare) -> int:
    """Optimizer steps until max_steps, early stopping or a stop request; each ends in a checkpoint."""
    t, s = tr.cfg.train, tr.state
    meter, guard = StepMeter(tr), FiniteGuard(tr.device)
    share.enabled = share.enabled and tr.dev_type == "cpu"  # the studio's CPU share (control.json)
    while s.step < t.max_steps:
        meter.start()
        lr = lr_at(s.step, t)
        loss_sum, grad_norm = optimizer_step(tr, lr)
        guard.note(loss_sum, grad_norm)  # no sync: read before every checkpoint
        loss, any_rank_stop = reduce_step(tr, loss_sum, stop)
        threads = share.poll()
        if threads:
            tr.sinks.emit(make_event("log", level="info", message=f"CPU threads: {threads} (the studio's share)"))
        final = s.step == t.max_steps
        if (s.step % t.log_interval == 0 or final) and not meter.log(loss, lr, grad_norm):
            return EXIT_FAIL
        reached = False
        if (t.eval_interval and s.step % t.eval_interval == 0) or final:
            reached = evaluate(tr) <= (t.target_val_loss if t.target_val_loss is not None else -math.inf)
        early = bool(t.early_stopping_patience and s.bad_evals >= t.early_stopping_patience)
        if final or reached or early or stop.agreed(any_rank_stop):
            if not guard.ok_to_save(tr):
                return EXIT_FAIL
            return finish(tr, "target" if reached else "final" if final else "early_stop" if early else "stopped",
                          stop)
        if t.checkpoint_interval and s.step % t.checkpoint_interval == 0:
            if not guard.ok_to_save(tr):
                return EXIT_FAIL
            save(tr, "periodic")
    return EXIT_OK


# ----------------------------------------------------------------------------------------- one step
def optimizer_step(tr: Trainer, lr: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step over this rank's grad_accum_steps micro-batches; (summed loss, pre-clip norm)."""
    t = tr.cfg.train
    accum = t.grad_accum_steps
    for group in tr.optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)  # Muon's groups run at train.muon_lr
    starts = tr.batches.draw(tr.world * accum)[tr.rank * accum:(tr.rank + 1) * accum]  # this rank's shard
    loss_sum = torch.zeros((), device=tr.device)
    for micro in range(accum):
        x, y = tr.batches.fetch(starts[micro])
        sync = contextlib.nullcontext()
        if tr.ddp and micro < accum - 1:
            sync = tr.model.no_sync()  # all-reduce gradients only on the last micro-step
        with sync, tr.ctx:
            _, loss, _ = tr.model(x, y)
            loss = loss / accum
        tr.scaler.scale(loss).backward()
        loss_sum += loss.detach()
    tr.scaler.unscale_(tr.optimizer)
    grad_norm = clip_gradients(tr.raw_model, t.grad_clip, t.clip_mode)
    tr.scaler.step(tr.optimizer)
    tr.scaler.update()
    tr.optimizer.zero_grad(set_to_none=True)
    tr.state.step += 1
    tr.state.tokens += tr.tokens_per_step
    return loss_sum, grad_norm


def reduce_step(tr: Trainer, loss_sum: torch.Tensor, stop: StopFlag) -> tuple[torch.Tensor, bool | None]:
    """(the step's loss, mean over ranks; whether any rank was asked to stop, None outside DDP). In DDP the
    loss and the stop flag travel in one tensor: one all-reduce per step."""
    if not tr.ddp:
        return loss_sum, None
    flag = torch.ones((), device=loss_sum.device) if stop.is_set() else torch.zeros((), device=loss_sum.device)
    packed = torch.stack([loss_sum.float(), flag])
    dist.all_reduce(packed)  # gloo has no AVG: sum, then divide
    return packed[0] / tr.world, bool(packed[1].item() > 0)  # the flag read is this step's one sync point


def clip_gradients(model: torch.nn.Module, max_value: float, mode: str) -> torch.Tensor:
    """Returns the global L2 norm of the gradients before clipping (logged as grad_norm)."""
    params = [p for p in model.parameters() if p.grad is not None]
    if mode == "norm" and max_value > 0:
        return torch.nn.utils.clip_grad_norm_(params, max_value)
    norm = torch.nn.utils.get_total_norm([p.grad for p in params])
    if mode == "value" and max_value > 0:
        torch.nn.utils.clip_grad_value_(params, max_value)
    return norm


class StepMeter:
    """Step timing, throughput and MFU for the `step` event; also guards against a non-finite loss."""

    def __init__(self, tr: Trainer):
        self.tr = tr
        self.flops_per_token, self.peak = mfu_inputs(tr)
        self.window_t0 = self.step_t0 = time.perf_counter()

    def start(self) -> None:
        self.step_t0 = time.perf_counter()

    def log(self, loss: torch.Tensor, lr: float, grad_norm: torch.Tensor) -> bool:
        """Emit the `step` event; False (after an `error` event) when the loss is not finite."""
        tr, s, t = self.tr, self.tr.state, self.tr.cfg.train
        loss_value = loss.item()  # CPU-GPU sync point (only on log steps)
        norm_value = float(grad_norm)
        now = time.perf_counter()
        dt = now - self.step_t0
        s.elapsed_s += now - self.window_t0  # wall time since the last log, evaluations included
        self.window_t0 = now
        if not math.isfinite(loss_value):
            tr.sinks.emit(make_event("error", kind="nonfinite", step=s.step, field=None,
                                     message=f"loss became {loss_value} at step {s.step}; stopped. The last "
                                             f"good checkpoint is kept: {tr.last_ckpt or 'none yet'}. Try a "
                                             f"lower train.lr or train.grad_clip.", checkpoint=tr.last_ckpt))
            if tr.info:
                tr.info.ended("failed")
            return False
        tps = tr.tokens_per_step / dt if dt > 0 else 0.0
        ev = make_event("step", step=s.step, tokens=s.tokens, loss=loss_value, lr=lr, grad_norm=norm_value,
                        clipped=bool(t.grad_clip and norm_value > t.grad_clip), tokens_per_s=tps,
                        elapsed_s=s.elapsed_s, step_ms=dt * 1000.0)
        if self.peak:
            ev["mfu"] = self.flops_per_token * tps / (self.peak * tr.world)
        tr.sinks.emit(ev)
        return True


# ----------------------------------------------------------------------------------------- evaluate, save
def evaluate(tr: Trainer) -> float:
    """Mean train/val loss, early-stopping record, `eval` event; then a sample and the attention probe.
    Returns the val loss (the same on every rank: estimate_loss averages across ranks)."""
    s, cfg = tr.state, tr.cfg
    losses = estimate_loss(tr.raw_model, cfg, tr.train_data, tr.val_data, tr.device, tr.ctx, tr.rank, tr.world)
    val = losses["val"]
    improved = val < s.best_val_loss
    if improved:
        s.best_val_loss, s.bad_evals = val, 0
    else:
        s.bad_evals += 1
    tr.sinks.emit(make_event("eval", step=s.step, tokens=s.tokens, train_loss=losses["train"], val_loss=val,
                             val_ppl=math.exp(min(val, 50.0)), best_val_loss=s.best_val_loss,
                             improved=improved, elapsed_s=s.elapsed_s))
    if tr.rank == 0:
        probe(tr)
    return val


def save(tr: Trainer, reason: str) -> str | None:
    """Rank 0 writes a checkpoint; every rank waits so nobody runs ahead of it. Its path (None elsewhere)."""
    path = None
    if tr.rank == 0:
        s = tr.state
        saved_state = {
            "optimizer": tr.optimizer.state_dict(),
            "scaler": tr.scaler.state_dict() if tr.scaler.is_enabled() else None,
            "data_rng": tr.batches.gen.get_state(), "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state() if tr.dev_type == "cuda" else None,
            "progress": {k: float(v) if isinstance(v, float) else v for k, v in s.to_saved().items()},
        }
        meta_out = {"config": tr.resolved, "reason": reason, "params": tr.raw_model.num_params(),
                    "best_val_loss": s.best_val_loss, "tokens": s.tokens,
                    "data_meta": {k: tr.data_meta.get(k) for k in ("vocab_size", "tokenizer", "eot_id")},
                    "parent": tr.parent, "versions": environment_versions(None)}
        meta_out.update(finetune_meta(tr))
        path = ckpt.save_checkpoint(tr.cfg.run.dir, s.step, tr.raw_model, saved_state, meta_out,
                                    tr.tokenizer_path)
        ckpt.prune_checkpoints(tr.cfg.run.dir, tr.cfg.train.keep_checkpoints, protect={path})
        tr.sinks.emit(make_event("checkpoint", step=s.step, path=path, reason=reason))
    if tr.ddp:
        dist.barrier()
    tr.last_ckpt = path
    return path


def finish(tr: Trainer, reason: str, stop: StopFlag) -> int:
    """The last checkpoint and the closing event: `done` at max_steps, else `stopped` (early or asked)."""
    s, t = tr.state, tr.cfg.train
    path = save(tr, reason)
    if reason in ("final", "target"):
        extra = {}
        if reason == "target":
            extra["reason"] = (f"val loss {s.best_val_loss:.4f} reached train.target_val_loss="
                               f"{t.target_val_loss} at step {s.step}")
        tr.sinks.emit(make_event("done", step=s.step, checkpoint=path, best_val_loss=s.best_val_loss, **extra))
        status = "done"
    else:
        why = (f"early stopping: val loss did not improve for {t.early_stopping_patience} evaluations"
               if reason == "early_stop" else stop.reason)
        tr.sinks.emit(make_event("stopped", step=s.step, reason=why, checkpoint=path))
        status = "done" if reason == "early_stop" else "stopped"
    if tr.info:
        tr.info.ended(status)
    return EXIT_OK


def fail(tr: Trainer, exc: Exception) -> int:
    """An `error` event for a failure during the run (the last good checkpoint stays); EXIT_FAIL."""
    kind = "oom" if isinstance(exc, MemoryError) or "out of memory" in str(exc).lower() else "exception"
    kind = "disk_full" if is_disk_full(exc) else kind
    if kind == "disk_full":  # a plain condition, not a bug: one line, no traceback
        print(f"llm-train: error: {exc.strerror if isinstance(exc, OSError) else exc}", file=sys.stderr)
    else:
        traceback.print_exc(file=sys.stderr)
    hint = " Try a smaller train.batch_size or model.block_size." if kind == "oom" else ""
    tr.sinks.emit(make_event("error", kind=kind, step=tr.state.step, field=None,
                             message=f"{type(exc).__name__}: {exc}{hint}", checkpoint=tr.last_ckpt))
    if tr.info:
        tr.info.ended("failed")
    return EXIT_FAIL

