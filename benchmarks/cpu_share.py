"""How a training run should use a small CPU: one core kept free, every core with spinning OpenMP waits,
every core with sleeping waits (OMP_WAIT_POLICY=PASSIVE), or every core with `--share-cores` (on Linux a
short spin, then sleep: GOMP_SPINCOUNT), on an idle machine and beside a busy process.

    python benchmarks/cpu_share.py [--steps 120] [--repeats 2] [--threads N] [--job] [--speedrun]

The real engine trains the studio's benchmark config (4 layers, 128 wide, T=64, batch 16, precision auto),
or with --speedrun the speedrun preset's model and optimiser (RoPE, RMSNorm, QK-norm, Muon, batch 32), on
the demo corpus; the figure is the median of the engine's own tokens_per_s after the first 20 steps.
The ways run in alternation, first with the machine otherwise idle, then beside one process that keeps a
core busy (what a data preparation, a second run or a browser tab does to a training run). The studio's
choice (studio.controllers.generation.share_cores) follows from these figures: on 2-3 cores every core
with --share-cores; from 4 cores all but one, where the free core costs at most a quarter.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

from studio_common import BENCH_CONFIG, ROOT, workspace_with_data

HOG = "while True: pass"
# A one-shot engine job beside the run (an evaluation: forward passes of a small model), counting its passes
JOB = """import time, torch
x, w = torch.randn(64, 512), torch.randn(512, 512)
n, start = 0, time.time()
while True:
    for _ in range(20):
        y = torch.tanh(x @ w) @ w
    n += 1
    print(n / (time.time() - start), flush=True)
"""


SPEEDRUN = """\
model: {{n_layer: 4, n_head: 4, n_embd: 128, block_size: 64, pos_encoding: rope, norm: rmsnorm, bias: false,
        qk_norm: true, activation: swiglu, mlp_ratio: 3.0}}
data: {{dir: ../../data/demo}}
train: {{batch_size: 32, max_steps: {steps}, eval_interval: 100, eval_steps: 4, checkpoint_interval: 0,
        warmup_steps: 10, device: cpu, lr: 7.0e-3, min_lr: 3.0e-4, optimizer: muon, muon_lr: 0.06,
        weight_decay: 0.0}}
run: {{dir: ., save_attention: false}}
"""


def tokens_per_s(ws, name: str, steps: int, args: list[str], extra_env: dict | None = None,
                 config: str = BENCH_CONFIG) -> float:
    from core.protocol import as_float, read_events

    run = ws.create_run(name, config.format(steps=steps))
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env.update(extra_env or {})
    env["PYTHONPATH"] = ROOT
    subprocess.run([sys.executable, "-m", "core", "train", "--config", run.config_path, "--events", *args],
                   check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=run.dir)
    vals = [as_float(e.get("tokens_per_s")) for e in read_events(run.metrics_path) if e.get("event") == "step"]
    return statistics.median(vals[20:])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=120)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="every core (default: all)")
    p.add_argument("--job", action="store_true", help="also: the run beside a one-shot engine job")
    p.add_argument("--speedrun", action="store_true", help="the speedrun preset's model and optimiser")
    a = p.parse_args()
    config = SPEEDRUN if a.speedrun else BENCH_CONFIG
    ws = workspace_with_data()
    n = a.threads
    ways = {f"{max(1, n - 1)} thread(s), one core free": (["--threads", str(max(1, n - 1))], {}),
            f"{n} threads, spinning waits": (["--threads", str(n)], {}),
            f"{n} threads, sleeping waits": (["--threads", str(n)], {"OMP_WAIT_POLICY": "PASSIVE"}),
            f"{n} threads, --share-cores": (["--threads", str(n), "--share-cores"], {})}
    print(f"{os.cpu_count()} cores; engine tokens/s, median of steps 21-{a.steps}, {a.repeats} runs each")
    for load in ("idle machine", "beside 1 busy process"):
        hog = subprocess.Popen([sys.executable, "-c", HOG]) if load != "idle machine" else None
        try:
            seen: dict[str, list[float]] = {w: [] for w in ways}
            for r in range(a.repeats):
                for i, (way, (args, env)) in enumerate(ways.items()):
                    seen[way].append(tokens_per_s(ws, f"{'idle' if hog is None else 'busy'}-{r}-{i}", a.steps, args,
                                                  env, config))
        finally:
            if hog is not None:
                hog.kill()
                hog.wait()
        report(load, seen)
    if a.job:
        beside_a_job(ws, a, n, config)


def report(load: str, seen: dict[str, list[float]]) -> None:
    base = statistics.median(next(iter(seen.values())))
    print(f"{load}:")
    for way, vals in seen.items():
        med = statistics.median(vals)
        runs = " / ".join(f"{v:,.0f}" for v in vals)
        print(f"  {way:34s} {med:9,.0f}  ({runs})  {med / base:.2f}x the first")


def beside_a_job(ws, a, n: int, config: str) -> None:
    """The run (every core, --share-cores) beside a one-shot torch job started with torch's defaults, or
    with what the studio gives a job while runs train (studio.controllers.cores.CoreShare.job_env)."""
    envs = {"job with torch's defaults": {},
            "job with the studio's share": {"OMP_NUM_THREADS": "1", "RAYON_NUM_THREADS": "1",
                                            "OMP_WAIT_POLICY": "PASSIVE"}}
    seen: dict[str, list[float]] = {w: [] for w in envs}
    passes: dict[str, list[float]] = {w: [] for w in envs}
    for r in range(a.repeats):
        for i, (way, extra) in enumerate(envs.items()):
            env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
            job = subprocess.Popen([sys.executable, "-c", JOB], env={**env, **extra}, stdout=subprocess.PIPE,
                                   text=True)
            try:
                seen[way].append(tokens_per_s(ws, f"job-{r}-{i}", a.steps, ["--threads", str(n), "--share-cores"],
                                              config=config))
            finally:
                job.kill()
                out, _ = job.communicate()
            passes[way].append(float((out.split() or ["0"])[-1]))
    report(f"{n} threads, --share-cores, beside a job", seen)
    for way, counts in passes.items():
        print(f"  {way}: {' / '.join(f'{c:.1f}' for c in counts)} passes/s of its own")


if __name__ == "__main__":
    main()
