"""`llm-train train`: the command line turned into plain values for core.train (under torchrun too)."""

from __future__ import annotations

import argparse
import os
import signal
import sys

from core.errors import EXIT_BAD_INPUT, UsageError


def _exit_quietly_on_sigterm(code: int) -> None:
    """The run has ended (its `done`/`stopped` event is out): a SIGTERM from now on (a GUI stopping what it
    thinks still runs) must not turn the exit code into -15. Only in the engine's own process."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if (spec and spec.name == "core.__main__") or os.path.basename(sys.argv[0]) == "llm-train":
        signal.signal(signal.SIGTERM, lambda *_: os._exit(code))


def train_main(args: argparse.Namespace) -> int:
    from core.train import train

    rank = int(os.environ.get("RANK", 0))
    world = int(os.environ.get("WORLD_SIZE", 1))
    try:
        code = train(args.config, args.set, resume=args.resume, events=args.events, rank=rank, world=world)
        _exit_quietly_on_sigterm(code)
        return code
    except UsageError:
        if rank == 0:  # core.cli reports it (stdout event with --events, stderr); never in metrics.jsonl
            raise
        return EXIT_BAD_INPUT
    except OSError as exc:  # during set-up (run.json, config copies): a full or read-only disk is named
        from core.guards import disk_full_error, is_disk_full

        problem = disk_full_error(exc.filename or "the run folder") if is_disk_full(exc) else exc
        raise UsageError(f"run.dir: cannot write: {problem.strerror or problem}", "run.dir") from None
