"""How good is `llm-train lr-find`'s suggestion? The range test on a config, then short runs at a sweep of
rates and at the suggested one, each scored by its validation loss at the end (a figure, not a test).

    python benchmarks/lr_find_sweep.py                          # char-level tiny Shakespeare (../shared/data)
    python benchmarks/lr_find_sweep.py --steps 400 --rates 3e-4 1e-3 3e-3 1e-2 3e-2

Each run: the demo's 4 x 128 model, T=64, batch 16, AdamW, warm-up 20 steps then cosine to lr/10, seed 1,
one evaluation of 20 batches at the end. Prints each rate's val loss and where the suggestion ranks.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(os.path.dirname(ROOT), "shared", "data", "tinyshakespeare.txt")


def engine(*args: str, cwd: str) -> str:
    out = subprocess.run([sys.executable, "-m", "core", *args], cwd=cwd, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": ROOT})
    if out.returncode != 0:
        sys.exit(f"llm-train {args[0]} failed:\n{out.stderr[-2000:]}")
    return out.stdout


def val_loss(folder: str, lr: float) -> float:
    stdout = engine("train", "--config", "run.yaml", "--events", "--set", f"train.lr={lr}",
                    "--set", f"train.min_lr={lr / 10}", "--set", f"run.dir=runs/lr{lr:g}", cwd=folder)
    evals = [e for e in map(json.loads, stdout.splitlines()) if e.get("event") == "eval"]
    return float(evals[-1]["val_loss"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", default=CORPUS)
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--rates", type=float, nargs="+", default=[3e-4, 1e-3, 2.3e-3, 5e-3, 1e-2, 3e-2])
    a = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="lr-sweep-") as folder:
        engine("prepare", "--input", a.corpus, "--tokenizer", "char", "--out", "data", cwd=folder)
        config = {"model": {"n_layer": 4, "n_head": 4, "n_embd": 128, "block_size": 64}, "data": {"dir": "data"},
                  "train": {"batch_size": 16, "max_steps": a.steps, "device": "cpu", "eval_interval": a.steps,
                            "eval_steps": 20, "checkpoint_interval": 0, "warmup_steps": 20, "seed": 1},
                  "run": {"dir": "runs/r", "save_attention": False}}
        with open(os.path.join(folder, "run.yaml"), "w", encoding="utf-8") as fh:
            yaml.safe_dump(config, fh)
        found = json.loads(engine("lr-find", "--config", "run.yaml", "--json", cwd=folder))
        suggested = float(f"{found['suggested_lr']:.2g}")
        print(f"lr-find: suggested {suggested:g} ({found['how']}), {found['steps']} steps")
        scores = {lr: val_loss(folder, lr) for lr in sorted(set(a.rates) | {suggested})}
        best = min(scores.values())
        for lr, loss in scores.items():
            mark = "  <- suggested" if lr == suggested else "  <- best of the sweep" if loss == best else ""
            print(f"lr {lr:<8g} val loss {loss:.4f}{mark}")
        rank = sorted(scores.values()).index(scores[suggested]) + 1
        print(f"the suggestion ranks {rank} of {len(scores)}; {scores[suggested] - best:+.4f} from the best")


if __name__ == "__main__":
    main()
