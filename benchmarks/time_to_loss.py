"""Wall time to a good model: nanoGPT's CPU recipe against the `speedrun` preset, in one session.

Both train on character-level tiny Shakespeare (90/10 split, `llm-train prepare --tokenizer char
--val-fraction 0.1`) and stop at the first evaluation with val loss <= the target (1.89, nanoGPT's figure
for its CPU recipe). Prints, per config: wall seconds from process start to that evaluation, its step,
ms per step, and the ratio baseline / speedrun. Steps-to-target is deterministic; seconds depend on load.

    python benchmarks/time_to_loss.py [--text ../shared/data/tinyshakespeare.txt] [--target 1.89]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRESET = os.path.join(ROOT, "resources", "presets", "speedrun-shakespeare-char.yaml")

# nanoGPT README, "I only have a macbook": 4 layers, 4 heads, 128 wide, T=64, batch 12, 2000 iters,
# lr 1e-3 cosine to 1e-4 (lr_decay_iters = max_iters), dropout 0; warm-up as nanoGPT's
# train_shakespeare_char.py (100 iterations); AdamW betas (0.9, 0.99), weight decay 0.1, clip 1.
BASELINE = {
    "model": {"n_layer": 4, "n_head": 4, "n_embd": 128, "block_size": 64, "dropout": 0.0, "bias": False,
              "pos_encoding": "learned", "norm": "layernorm", "activation": "gelu"},
    "train": {"batch_size": 12, "max_steps": 2000, "lr": 1.0e-3, "min_lr": 1.0e-4, "warmup_steps": 100,
              "schedule": "cosine", "betas": [0.9, 0.99], "weight_decay": 0.1, "grad_clip": 1.0,
              "eval_interval": 50, "eval_steps": 20, "checkpoint_interval": 0, "device": "cpu",
              "precision": "fp32"},
}


def default_text() -> str:
    """../shared/data/tinyshakespeare.txt beside the checkout (or beside its parent, for a git worktree)."""
    for up in ("..", os.path.join("..", "..")):
        path = os.path.normpath(os.path.join(ROOT, up, "shared", "data", "tinyshakespeare.txt"))
        if os.path.isfile(path):
            return path
    return os.path.normpath(os.path.join(ROOT, "..", "shared", "data", "tinyshakespeare.txt"))


def prepare(text: str, out: str) -> None:
    subprocess.run([sys.executable, "-m", "core", "prepare", "--input", text, "--out", out, "--tokenizer", "char",
                    "--val-fraction", "0.1"], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)


def sample(checkpoint: str) -> str:
    """300 characters from a checkpoint, after the race (so neither side pays for samples): nanoGPT's
    sample.py settings (temperature 0.8, top-k 200), the same seed and prompt for both."""
    done = subprocess.run([sys.executable, "-m", "core", "generate", "--checkpoint", checkpoint, "--prompt", "\n",
                           "--max-new-tokens", "300", "--temperature", "0.8", "--top-k", "200", "--seed", "1337"],
                          cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ROOT})
    return done.stdout if done.returncode == 0 else f"(generate failed: {done.stderr.strip()[-300:]})"


def race(name: str, cfg: dict, work: str, target: float) -> dict:
    """Train `cfg` in a fresh process; seconds from its start to the first eval with val loss <= target."""
    cfg = {**cfg, "train": {**cfg["train"], "target_val_loss": target}, "run": {"dir": f"runs/{name}",
                                                                                  "save_attention": False}}
    path = os.path.join(work, f"{name}.yaml")
    with open(path, "w", encoding="utf-8") as fh:
        yaml.safe_dump(cfg, fh)
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "core", "train", "--config", path, "--events"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, "PYTHONPATH": ROOT})
    hit, steps, step_ms, start, best, last_ckpt = None, 0, [], {}, float("inf"), ""
    for line in proc.stdout:
        ev = json.loads(line)
        if ev["event"] == "start":
            start = ev
        elif ev["event"] == "step":
            steps, _ = ev["step"], step_ms.append(ev["step_ms"])
        elif ev["event"] == "eval":
            best = min(best, ev["val_loss"])
            if hit is None and ev["val_loss"] <= target:
                hit = {"seconds": time.perf_counter() - t0, "step": ev["step"], "val_loss": ev["val_loss"]}
        elif ev["event"] == "checkpoint":
            last_ckpt = ev["path"]
    proc.wait()
    seconds = time.perf_counter() - t0
    last_sample = sample(last_ckpt) if last_ckpt else ""
    ms = sorted(step_ms)[len(step_ms) // 2] if step_ms else float("nan")
    return {"name": name, "hit": hit, "steps_run": steps, "median_step_ms": ms, "best_val": best, "last_sample": last_sample,
            "seconds": seconds, "precision": start.get("precision"), "params": start.get("params")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--text", default=default_text())
    ap.add_argument("--target", type=float, default=1.89)
    ap.add_argument("--only", choices=("baseline", "speedrun"), default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as work:
        data = os.path.join(work, "data")
        prepare(os.path.abspath(args.text), data)
        with open(PRESET, encoding="utf-8") as fh:
            speedrun = yaml.safe_load(fh)
        configs = {"baseline": BASELINE, "speedrun": speedrun}
        results = []
        for name, cfg in configs.items():
            if args.only in (None, name):
                results.append(race(name, {**cfg, "data": {"dir": data}}, work, args.target))
    for r in results:
        hit = r["hit"]
        when = (f"{hit['seconds']:.1f} s at step {hit['step']} (val {hit['val_loss']:.3f})" if hit
                else f"not reached in {r['steps_run']} steps, {r['seconds']:.1f} s (best val {r['best_val']:.3f})")
        print(f"{r['name']:9s} {r['params']:,} params, {r['precision']}, {r['median_step_ms']:.1f} ms/step: "
              f"val <= {args.target} after {when}")
    if len(results) == 2 and all(r["hit"] for r in results):
        print(f"ratio baseline/speedrun: {results[0]['hit']['seconds'] / results[1]['hit']['seconds']:.2f}x wall, "
              f"{results[0]['hit']['step'] / results[1]['hit']['step']:.2f}x steps")
    elif len(results) == 2 and results[1]["hit"]:  # the baseline ran out of steps: its whole run is a floor
        print(f"ratio baseline/speedrun: more than {results[0]['seconds'] / results[1]['hit']['seconds']:.2f}x wall "
              f"(the baseline did not reach the target in its {results[0]['steps_run']} steps)")
    for r in results:  # from the checkpoint the run ended with: at the target, or after its last step
        at = f"val {r['hit']['val_loss']:.3f}" if r["hit"] else f"the end, best val {r['best_val']:.3f}"
        print(f"\n--- {r['name']} sample at {at} (step {r['steps_run']}) ---\n{r['last_sample']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
