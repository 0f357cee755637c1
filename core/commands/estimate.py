"""`llm-train estimate`: parameter count, FLOPs, memory and precision of a run config, in human units
(`--json` for the raw numbers); no torch needed."""

from __future__ import annotations

import argparse
import json

from core.errors import EXIT_OK


def estimate_main(args: argparse.Namespace) -> int:
    from core.config import estimate, load_config, read_yaml
    from core.estimate import human_count
    from core.schedule import warmup_steps

    cfg = load_config(args.config, args.set)  # ConfigError is a UsageError
    est = estimate(cfg)
    raw = read_yaml(args.config)
    notes = []
    if not (isinstance(raw, dict) and raw.get("model")) and not any(s.startswith("model.") for s in args.set):
        m = cfg.model
        notes.append(f"no model section in the config: the defaults ({m.n_layer} layers, {m.n_embd} wide, "
                     f"context {m.block_size}) make a {human_count(est['params'])}-parameter model")
    if cfg.train.warmup_steps is None:
        notes.append(f"train.warmup_steps not set: {warmup_steps(cfg.train)} (a tenth of max_steps, at most 100)")
    est["notes"] = notes
    if getattr(args, "json", False):
        print(json.dumps(est, indent=2))
    else:
        print(render(est))
    return EXIT_OK


def render(est: dict) -> str:
    from core.estimate import human_bytes, human_count

    mem = est["memory"]
    lines = [f"parameters        {human_count(est['params'])} ({human_count(est['params_non_embedding'])} "
             f"without embeddings), vocabulary {est['vocab_size']:,}",
             f"tokens per step   {est['tokens_per_step']:,}",
             f"FLOPs per step    {human_count(est['flops_per_step'])} ({human_count(est['flops_per_token'])} "
             f"per token)",
             f"device            {est['device']}",
             f"precision         {est['precision']}: {est['precision_reason']}",
             "memory            " + ", ".join(f"{k} {human_bytes(v)}" for k, v in mem.items() if k != "total")
             + f"; total {human_bytes(mem['total'])}",
             f"exports to        {est['exports']}" + (f" ({est['export_refusal']})" if est["export_refusal"] else "")]
    lines += [f"note: {n}" for n in est["notes"]]
    return "\n".join(lines)
