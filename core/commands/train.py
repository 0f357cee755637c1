"""`llm-train train`: the command line turned into plain values for core.train (under torchrun too)."""

from __future__ import annotations

import argparse
import os

from core.errors import EXIT_BAD_INPUT, UsageError


def train_main(args: argparse.Namespace) -> int:
    from core.train import train

    rank = int(os.environ.get("RANK", 0))
    world = int(os.environ.get("WORLD_SIZE", 1))
    try:
        return train(args.config, args.set, resume=args.resume, events=args.events, rank=rank, world=world)
    except UsageError:
        if rank == 0:  # core.cli reports it (stdout event with --events, stderr); never in metrics.jsonl
            raise
        return EXIT_BAD_INPUT
    except OSError as exc:  # during set-up (run.json, config copies): a full or read-only disk is named
        from core.guards import disk_full_error, is_disk_full

        problem = disk_full_error(exc.filename or "the run folder") if is_disk_full(exc) else exc
        raise UsageError(f"run.dir: cannot write: {problem.strerror or problem}", "run.dir") from None
