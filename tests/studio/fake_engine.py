"""A torch-free stand-in for `llm-train` that replays scripted protocol events (tests and benchmarks).

Use it through LLM_STUDIO_ENGINE="python tests/studio/fake_engine.py". It honours the real engine's
contract for `train --config C --events [--resume] [--set k=v]` and `prepare --out DIR --events`:
events on stdout and appended to RUN_DIR/metrics.jsonl, run.json, checkpoints/step-NNNNNN/ (named and
shaped through core.layout), graceful stop on SIGTERM or a `stop` line, exactly one close event.
FAKE_ENGINE_MODE picks a script:
  normal   steps until max_steps (default)
  setup    refused during set-up (a usage error on stdout, nothing in metrics.jsonl), exit 2
  crash    dies with a traceback and no close event after FAKE_ENGINE_CRASH_AT steps
  error    emits an error event (kind runtime) and exits 1 after FAKE_ENGINE_CRASH_AT steps
  odd      mixes in garbage lines, unknown events and "nan"/"inf" values
Tests never pace it with sleeps (a loaded machine turns those into stop/done races): FAKE_ENGINE_HOLD_AT
("5" or "3,8") makes it wait after those steps until it is stopped, or until the test creates
RUN_DIR/fake-release-<step>; otherwise it runs flat out. FAKE_ENGINE_EVENTS_PER_S paces it for benchmarks.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import yaml  # noqa: E402

from core import layout  # noqa: E402
from core.protocol import encode, make_event  # noqa: E402

STOP = threading.Event()
HOLD_LIMIT_S = 300.0  # a held engine gives up (error event) if nobody stops or releases it


def release_path(run_dir: str, step: int) -> str:
    """The file a test creates to let an engine held at `step` go on."""
    return os.path.join(run_dir, f"fake-release-{step}")


def hold(run_dir: str, step: int) -> bool:
    """Wait until stopped (True) or released (False); an event wait, not a pacing sleep."""
    deadline = time.monotonic() + HOLD_LIMIT_S
    while time.monotonic() < deadline:
        if STOP.wait(0.02):
            return True
        if os.path.exists(release_path(run_dir, step)):
            return False
    raise TimeoutError(f"fake engine held at step {step} for {HOLD_LIMIT_S:.0f} s without a stop")


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
    meta = {"format": 1, "vocab_size": 65, "tokenizer": "char", "train_tokens": 9000, "val_tokens": 1000}
    for split in layout.SPLITS:
        with open(os.path.join(out, f"{split}.bin"), "wb") as fh:
            fh.write(b"\0" * 64)
    layout.atomic_write_json(os.path.join(out, layout.DATA_META), meta)
    sink.emit("done", kind="prepare", out=out, meta=meta)
    return 0


def train(args: dict) -> int:
    mode = os.environ.get("FAKE_ENGINE_MODE", "normal")
    per_s = float(os.environ.get("FAKE_ENGINE_EVENTS_PER_S", "0") or 0)
    pause = 1.0 / per_s if per_s > 0 else 0.0
    holds = {int(s) for s in os.environ.get("FAKE_ENGINE_HOLD_AT", "").split(",") if s.strip()}
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
    metrics = os.path.join(run_dir, layout.METRICS)
    if os.path.exists(metrics) and not args.get("resume"):
        Sink(None).emit("error", kind="usage", message=f"{run_dir} already has metrics.jsonl; use --resume",
                        field="run.dir")
        return 2
    if mode == "setup":  # refused before the first step, as core.train's SetupError: stdout only
        Sink(None).emit("error", kind="usage", message="train.max_steps: 100 is not beyond the checkpoint's "
                        "step 100; raise train.max_steps to train further", field="train.max_steps")
        return 2
    if not layout.is_data_dir(data_dir):
        msg = f"data.dir: no prepared data in {data_dir} (meta.json missing)"
        print(f"llm-train: error: {msg}", file=sys.stderr)
        Sink(metrics).emit("error", kind="data", message=msg, field="data.dir", step=None)
        return 2
    max_steps = int(train_cfg.get("max_steps", 100))
    eval_interval = int(train_cfg.get("eval_interval", 20))
    ckpt_interval = int(train_cfg.get("checkpoint_interval", 50))
    lr_peak = float(train_cfg.get("lr", 1e-3))
    start_step = 0
    if args.get("resume"):
        start_step = max((step for step, _ in layout.list_checkpoints(run_dir)), default=0)
    sink = Sink(metrics)
    layout.atomic_write_json(os.path.join(run_dir, layout.RUN_JSON),
                             {"pid": os.getpid(), "status": "running", "started": time.time()})
    print(f"fake engine: training {run_dir} from step {start_step}", file=sys.stderr, flush=True)
    sink.emit("start", run_dir=run_dir, config=raw, params=12345, device="cpu", precision="fp32",
              world_size=1, tokens_per_step=256, max_steps=max_steps, start_step=start_step,
              resumed=bool(args.get("resume")), parent=train_cfg.get("init_from"))
    t0 = time.time()

    def checkpoint(step: int) -> str:
        path = os.path.join(run_dir, layout.CHECKPOINTS, layout.step_dir_name(step))
        os.makedirs(path, exist_ok=True)
        for name in (layout.WEIGHTS, layout.STATE):
            with open(os.path.join(path, name), "wb") as fh:
                fh.write(b"")
        layout.atomic_write_json(os.path.join(path, layout.META), {"format": 1, "step": step})  # last
        sink.emit("checkpoint", step=step, path=path)
        return path

    def close(status: str) -> None:
        layout.atomic_write_json(os.path.join(run_dir, layout.RUN_JSON),
                                 {"pid": os.getpid(), "status": status, "ended": time.time()})

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
        if STOP.is_set() or (step in holds and hold(run_dir, step)):
            path = checkpoint(step)
            sink.emit("stopped", step=step, reason="requested", checkpoint=path)
            close("stopped")
            return 0
        if pause:
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
