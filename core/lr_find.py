"""`llm-train lr-find`: a learning-rate range test (L. Smith, "Cyclical Learning Rates", 2015; fastai's lr_find).

From the run's starting point (fresh weights, or train.init_from's), the trainer's own steps run with the
learning rate rising geometrically from `start` to `end`, one step each; the loss is smoothed (an
exponential average, bias-corrected) and the test ends early once it has diverged (a step's loss or the
average 4x the lowest average, or not finite). The suggestion is the rate where the smoothed loss falls fastest against log(lr), before its lowest
point (Lightning's rule): a rate that still learns quickly; and, more cautious, a tenth of the rate at the
lowest point (fastai's former `lr_min`). Neither is the best rate of a whole run: on char-level Shakespeare
over 400 steps the steepest fall came second of seven rates tried (benchmarks/lr_find_sweep.py), on the
demo's tasks over 1,000 steps it was too high (best val 1.61, where 2e-3 gave 1.51 and 3.3e-3 1.48) and the
cautious one too low (1.58). They bracket the rates worth a run, found in a few dozen steps.

Nothing is written: the run folder, its lock and checkpoints are untouched (set_up with record=False), so
it may be tried on a run before Start, and the config it reads is the one a Start would train.
"""

from __future__ import annotations

import math
import sys

import numpy as np

from core.errors import EXIT_OK, UsageError
from core.protocol import make_event
from core.sinks import JsonlSink, Sinks

SMOOTHING = 0.9     # weight of the running average (fastai's beta 0.98 over 100 steps is too slow for 50)
DIVERGED = 4.0      # the test ends when the smoothed loss is this many times its lowest
SKIP_START = 3      # the first steps' smoothed loss is too noisy to pick from


def rates(start: float, end: float, steps: int) -> np.ndarray:
    if not (0 < start < end and math.isfinite(end)):
        raise UsageError(f"--start and --end must satisfy 0 < start < end, got {start:g} and {end:g}", "--start")
    if steps < 8:
        raise UsageError(f"--steps must be at least 8, got {steps}", "--steps")
    return np.geomspace(start, end, steps)


def suggest(lrs: list[float], smoothed: list[float]) -> tuple[float | None, str]:
    """(the suggested rate, how it was chosen): the steepest fall of the smoothed loss against log(lr),
    before its minimum; None when the loss never fell."""
    if len(smoothed) < SKIP_START + 3:
        return None, "too few steps before the loss diverged: lower --start"
    y = np.asarray(smoothed)
    low = int(np.argmin(y))
    if low <= SKIP_START:
        return None, "the loss did not fall: lower --start"
    slope = np.gradient(y[:low + 1], np.log(np.asarray(lrs[:low + 1])))
    at = SKIP_START + int(np.argmin(slope[SKIP_START:low]))  # before the lowest point, never at it
    return float(lrs[at]), f"steepest fall of the loss, at step {at + 1} of {len(y)} (lowest at {lrs[low]:.2g})"


def lr_find(config: str, overrides: list[str], start: float, end: float, steps: int, events: bool) -> dict:
    """Run the test on `config` (with `overrides`); returns the result that the `done` event carries."""
    import torch

    from core.config import load_config
    from core.train import optimizer_step
    from core.trainer_setup import set_up

    lrs = rates(start, end, steps)
    cfg = load_config(config, overrides)
    sinks = Sinks([JsonlSink(sys.stdout)] if events else [])
    tr = set_up(cfg, False, 0, 1, sinks, config, overrides, record=False)
    tr.raw_model.train()
    seen, losses, smoothed, avg, best, diverged = [], [], [], 0.0, math.inf, None
    for i, lr in enumerate(lrs):
        loss = float(optimizer_step(tr, float(lr))[0])
        avg = SMOOTHING * avg + (1 - SMOOTHING) * loss
        value = avg / (1 - SMOOTHING ** (i + 1))
        if not math.isfinite(value):
            diverged = float(lr)
            break
        seen.append(float(lr))
        losses.append(loss)
        smoothed.append(value)
        sinks.emit(make_event("progress", stage="lr_find", done=i + 1, total=len(lrs), lr=float(lr), loss=loss))
        if not events and (sys.stderr.isatty() or (i + 1) % 10 == 0):
            end_ = "" if sys.stderr.isatty() else "\n"
            print(f"\rlr-find {i + 1}/{len(lrs)}  lr {lr:.2e}  loss {loss:.4f}", end=end_, file=sys.stderr, flush=True)
        best = min(best, value)
        if i >= SKIP_START and max(value, loss) > DIVERGED * best:  # a step's loss alone: its average lags
            diverged = float(lr)
            break
    if not events and sys.stderr.isatty():
        print(file=sys.stderr)
    lr, how = suggest(seen, smoothed)
    cautious = seen[int(np.argmin(smoothed))] / 10 if lr is not None else None
    result = {"kind": "lr_find", "lrs": seen, "losses": losses, "smoothed": smoothed, "suggested_lr": lr,
              "cautious_lr": cautious, "how": how, "diverged_at": diverged, "steps": len(seen),
              "params": tr.raw_model.num_params(), "device": tr.device, "precision": tr.precision}
    sinks.emit(make_event("done", **result))
    del tr
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return result


def lr_find_main(args) -> int:
    result = lr_find(args.config, args.set, args.start, args.end, args.steps, args.events)
    if args.json:
        import json

        print(json.dumps(result))
    elif not args.events:
        lr = result["suggested_lr"]
        print(f"suggested train.lr: {lr:.3g} ({result['how']}); more cautious: {result['cautious_lr']:.3g} "
              f"(a tenth of the rate at the lowest loss)" if lr is not None else f"no suggestion: {result['how']}")
        if result["diverged_at"] is not None:
            print(f"the loss diverged at lr {result['diverged_at']:.3g}, after {result['steps']} steps")
    return EXIT_OK


def add_parser(sub) -> None:
    p = sub.add_parser("lr-find", help="a learning-rate range test on a run's config (writes nothing)")
    p.add_argument("--config", required=True, metavar="RUN.yaml", help="the run's config (model, data, train)")
    p.add_argument("--set", action="append", default=[], metavar="section.key=value",
                   help="override one config value (repeatable)")
    p.add_argument("--start", type=float, default=1e-6, help="the first learning rate (default: %(default)g)")
    p.add_argument("--end", type=float, default=1.0, help="the last learning rate (default: %(default)g)")
    p.add_argument("--steps", type=int, default=60, help="steps, one per rate (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.add_argument("--events", action="store_true", help="JSON Lines events on stdout (start, progress, done)")
