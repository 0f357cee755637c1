"""Which learning-rate schedule a fork (or "continue for more steps") should get: the demo run, forked.

Trains the studio's demo run (4 x 128, char-level synthetic tasks, 1000 steps, cosine 2e-3 -> 2e-4), then
forks it from a checkpoint for --more steps in each way the schedule can start over (train.restart_step /
restart_lr, core.schedule), all from the same weights, optimizer state and data position:

- warm-up:   a fresh warm-up to the peak rate and a new decay (restart_lr empty)
- go-on:     from the rate the parent had reached at the checkpoint down to min_lr (restart_lr = that rate)
- stretched: no restart: the parent's cosine stretched to the new max_steps (what forks did before)

and prints each fork's final val loss (--eval-steps batches, the same fixed batches for all). Lower is
better; the studio's default (core.schedule.goes_on) follows these figures.

    python benchmarks/fork_schedule.py                    # from the last step (1000), 1000 more steps
    python benchmarks/fork_schedule.py --from-step 500    # from the middle of the decay
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from core.config import loads  # noqa: E402
from core.schedule import lr_at  # noqa: E402
from studio import demo  # noqa: E402  (torch-free: the demo run's config text)


def engine(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": ROOT})
    if done.returncode:
        sys.exit(f"llm-train {args[0]} failed ({done.returncode}): {done.stderr.strip()[-500:]}")


def final_val(run_dir: str) -> float:
    with open(os.path.join(run_dir, "metrics.jsonl"), encoding="utf-8") as fh:
        evals = [e for e in map(yaml.safe_load, fh) if e.get("event") == "eval"]
    return float(evals[-1]["val_loss"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--from-step", type=int, default=1000, help="the parent's checkpoint to fork from")
    p.add_argument("--more", type=int, default=1000, help="steps each fork trains beyond it")
    p.add_argument("--eval-steps", type=int, default=40, help="validation batches of the final evaluation")
    a = p.parse_args()
    work = tempfile.mkdtemp(prefix="fork-schedule-")
    data = os.path.join(work, "data", "demo")
    engine("prepare", "--input", "@synthetic", "--out", data, "--tokenizer", "char")
    parent = yaml.safe_load(demo.tiny_config_text())
    parent["data"]["dir"] = data
    parent["train"].update(eval_steps=a.eval_steps, eval_interval=0, checkpoint_interval=a.from_step,
                           sample_tokens=0)
    parent["run"] = {"dir": os.path.join(work, "parent"), "save_attention": False}
    path = os.path.join(work, "parent.yaml")
    with open(path, "w", encoding="utf-8") as fh:
        yaml.safe_dump(parent, fh)
    engine("train", "--config", path)
    rate = lr_at(a.from_step, loads(yaml.safe_dump(parent)).train)
    variants = {"warm-up": {"restart_step": a.from_step, "restart_lr": None},
                "go-on": {"restart_step": a.from_step, "restart_lr": rate},
                "stretched": {}}
    print(f"parent: demo run, {parent['train']['max_steps']} steps, val {final_val(parent['run']['dir']):.4f}; "
          f"fork from step {a.from_step} (rate there {rate:.3g}) for {a.more} more steps, "
          f"val over {a.eval_steps} batches:")
    for name, restart in variants.items():
        fork = yaml.safe_load(yaml.safe_dump(parent))
        fork["train"].update(max_steps=a.from_step + a.more, checkpoint_interval=0, **restart,
                             init_from=os.path.join(work, "parent", "checkpoints", f"step-{a.from_step:06d}"))
        fork["run"]["dir"] = os.path.join(work, name)
        path = os.path.join(work, f"{name}.yaml")
        with open(path, "w", encoding="utf-8") as fh:
            yaml.safe_dump(fork, fh)
        engine("train", "--config", path)
        print(f"  {name:10s} val loss {final_val(fork['run']['dir']):.4f}", flush=True)


if __name__ == "__main__":
    main()
