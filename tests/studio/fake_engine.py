"""A torch-free stand-in for `llm-train` that replays scripted protocol events (tests and benchmarks).

Use it through LLM_STUDIO_ENGINE="python tests/studio/fake_engine.py". It honours the real engine's
contract for `train --config C --events [--resume] [--set k=v]` and `prepare --out DIR --events`:
events on stdout and appended to RUN_DIR/metrics.jsonl, run.json, checkpoints/step-NNNNNN/, graceful
stop on SIGTERM or a `stop` line, exactly one close event. FAKE_ENGINE_MODE picks a script:
  normal   steps until max_steps (default)
  crash    dies with a traceback and no close event after FAKE_ENGINE_CRASH_AT steps
  error    emits an error event (kind runtime) and exits 1 after FAKE_ENGINE_CRASH_AT steps
  odd      mixes in garbage lines, unknown events and "nan"/"inf" values
FAKE_ENGINE_STEP_S is the pause per step (default 0.01 s); FAKE_ENGINE_EVENTS_PER_S overrides it.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import yaml  # noqa: E402

from core.protocol import encode, make_event  # noqa: E402

STOP = threading.Event()


class Sink:
    def __init__(self, metrics_path: str | None) -> None:
        self.metrics = open(metrics_path, "a", encoding="utf-8") if metrics_path else None

    def emit(self, event: str, **fields) -> None:
        line = encode(make_event(event, **fields))
        try:
            sys.stdout.write(line)
            sys.stdout.flush()
        except (BrokenPipeError, ValueError):
            pass  # like the real engine: survive the GUI closing the pipe
        if self.metrics:
            self.metrics.write(line)
            self.metrics.flush()


def _watch_stdin() -> None:
    try:
        for line in sys.stdin:
            if line.strip() == "stop":
                STOP.set()
                return
    except (OSError, ValueError):
        pass


def _args(argv: list[str]) -> dict:
    out: dict = {"set": []}
    it = iter(argv)
    for a in it:
        if a in ("--config", "--out", "--tokenizer"):
            out[a[2:]] = next(it)
        elif a == "--set":
            out["set"].append(next(it))
        elif a == "--input":
            out["input"] = next(it)
        elif a.startswith("--"):
            out[a[2:]] = True
    return out


def prepare(args: dict) -> int:
    sink = Sink(None)
    out = args["out"]
    sink.emit("start", kind="prepare", out=out, inputs=[args.get("input")])
    os.makedirs(out, exist_ok=True)
    for i in range(1, 4):
        sink.emit("progress", stage="encode", done=i, total=3)
    meta = {"vocab_size": 65, "tokenizer": "char", "train_tokens": 9000, "val_tokens": 1000}
    for name in ("train.bin", "val.bin"):
        with open(os.path.join(out, name), "wb") as fh:
            fh.write(b"\0" * 64)
    with open(os.path.join(out, "meta.json"), "w") as fh:
        json.dump(meta, fh)
    sink.emit("done", kind="prepare", out=out, meta=meta)
    return 0


def train(args: dict) -> int:
    mode = os.environ.get("FAKE_ENGINE_MODE", "normal")
    per_s = float(os.environ.get("FAKE_ENGINE_EVENTS_PER_S", "0") or 0)
    pause = 1.0 / per_s if per_s > 0 else float(os.environ.get("FAKE_ENGINE_STEP_S", "0.01"))
    crash_at = int(os.environ.get("FAKE_ENGINE_CRASH_AT", "5"))
    cfg_path = os.path.abspath(args["config"])
    base = os.path.dirname(cfg_path)
    with open(cfg_path, encoding="utf-8") as fh:
        raw = yaml.safe_load(fh) or {}
    for assignment in args["set"]:
        key, _, value = assignment.partition("=")
        section, _, name = key.partition(".")
        raw.setdefault(section, {})[name] = yaml.safe_load(value)
    train_cfg = raw.get("train") or {}
    run_dir = os.path.normpath(os.path.join(base, (raw.get("run") or {}).get("dir", ".")))
    data_dir = os.path.normpath(os.path.join(base, (raw.get("data") or {}).get("dir", "data")))
    os.makedirs(run_dir, exist_ok=True)
    metrics = os.path.join(run_dir, "metrics.jsonl")
    if os.path.exists(metrics) and not args.get("resume"):
        Sink(None).emit("error", kind="usage", message=f"{run_dir} already has metrics.jsonl; use --resume",
                        field="run.dir")
        return 2
    if not os.path.exists(os.path.join(data_dir, "meta.json")):
        msg = f"data.dir: no prepared data in {data_dir} (meta.json missing)"
        print(f"llm-train: error: {msg}", file=sys.stderr)
        Sink(metrics).emit("error", kind="data", message=msg, field="data.dir", step=None)
        return 2
    max_steps = int(train_cfg.get("max_steps", 100))
    eval_interval = int(train_cfg.get("eval_interval", 20))
    ckpt_interval = int(train_cfg.get("checkpoint_interval", 50))
    lr_peak = float(train_cfg.get("lr", 1e-3))
    ckpts = os.path.join(run_dir, "checkpoints")
    start_step = 0
    if args.get("resume") and os.path.isdir(ckpts):
        steps = [int(n.split("-")[1]) for n in os.listdir(ckpts) if n.startswith("step-")]
        start_step = max(steps, default=0)
    sink = Sink(metrics)
    with open(os.path.join(run_dir, "run.json"), "w") as fh:
        json.dump({"pid": os.getpid(), "status": "running", "started": time.time()}, fh)
    print(f"fake engine: training {run_dir} from step {start_step}", file=sys.stderr, flush=True)
    sink.emit("start", run_dir=run_dir, config=raw, params=12345, device="cpu", precision="fp32",
              world_size=1, tokens_per_step=256, max_steps=max_steps, start_step=start_step,
              resumed=bool(args.get("resume")), parent=train_cfg.get("init_from"))
    t0 = time.time()

    def checkpoint(step: int) -> str:
        path = os.path.join(ckpts, f"step-{step:06d}")
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, "meta.json"), "w") as fh:
            json.dump({"step": step}, fh)
        sink.emit("checkpoint", step=step, path=path)
        return path

    def close(status: str) -> None:
        with open(os.path.join(run_dir, "run.json"), "w") as fh:
            json.dump({"pid": os.getpid(), "status": status, "ended": time.time()}, fh)

    best = math.inf
    step = start_step
    while step < max_steps:
        step += 1
        loss = 4.0 * math.exp(-step / 60.0) + 1.2 + 0.05 * math.sin(step)
        lr = lr_peak * min(1.0, step / 10.0)
        value = "nan" if mode == "odd" and step % 7 == 0 else loss
        sink.emit("step", step=step, tokens=step * 256, loss=value, lr=lr, grad_norm=0.5 + 1.0 / step,
                  clipped=step < 3, tokens_per_s=25600.0, elapsed_s=time.time() - t0, step_ms=pause * 1e3)
        if mode == "odd" and step % 5 == 0:
            sys.stdout.write("not json at all {\n{\"broken\": \n")
            sink.emit("mystery", payload=[1, 2, 3])
        if eval_interval and step % eval_interval == 0:
            val = loss + 0.1
            best = min(best, val)
            sink.emit("eval", step=step, tokens=step * 256, train_loss=loss, val_loss=val,
                      val_ppl=math.exp(val), best_val_loss=best, elapsed_s=time.time() - t0)
        if ckpt_interval and step % ckpt_interval == 0:
            checkpoint(step)
        if mode == "crash" and step >= crash_at:
            print("Traceback (most recent call last):\n  File \"train.py\", line 1\n"
                  "RuntimeError: simulated crash", file=sys.stderr, flush=True)
            os._exit(3)
        if mode == "error" and step >= crash_at:
            sink.emit("error", kind="runtime", message=f"loss became nan at step {step}", field=None,
                      step=step)
            close("failed")
            return 1
        if STOP.is_set():
            path = checkpoint(step)
            sink.emit("stopped", step=step, reason="requested", checkpoint=path)
            close("stopped")
            return 0
        time.sleep(pause)
    path = checkpoint(step)
    sink.emit("done", step=step, checkpoint=path, best_val_loss=best if best < math.inf else None)
    close("done")
    return 0


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: STOP.set())
    threading.Thread(target=_watch_stdin, daemon=True).start()
    argv = sys.argv[1:]
    if not argv:
        return 2
    args = _args(argv[1:])
    if argv[0] == "prepare":
        return prepare(args)
    if argv[0] == "train":
        return train(args)
    print(f"fake engine: unsupported command {argv[0]}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
