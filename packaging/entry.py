"""The bundle's one executable: `llm-studio [engine|launch|torchrun|version] ...`.

The bundle holds a single frozen interpreter, so every process the studio starts is this executable
again with a subcommand (studio/engine/command.py builds those argv lists when `sys.frozen` is set):

    llm-studio [WORKSPACE] [--screenshot PATH ...]   the studio (no subcommand)
    llm-studio engine <prepare|train|generate|...>   `llm-train ...` (core.cli)
    llm-studio version [--json]                      `llm-train version` (the engine's torch/CUDA build)
    llm-studio launch RUN_DIR -- ENGINE_ARGV...      the detached run launcher (studio.engine.launcher)
    llm-studio torchrun [torchrun options] --no-python EXE engine train ...   several processes (DDP)

From source it is `python packaging/entry.py ...` and behaves the same (tests use that).
"""

from __future__ import annotations

import os
import sys


def _engine(args: list[str]) -> int:
    from core.cli import main as engine_main

    return engine_main(args)


def _launch(args: list[str]) -> int:
    from studio.engine.launcher import main as launcher_main

    return launcher_main(args)


def _torchrun(args: list[str]) -> int:
    # torch.distributed.run's own `torchrun` entry point; the workers are this executable again
    # (`--no-python EXE engine train ...`, see studio.engine.command.torchrun_command).
    from torch.distributed.run import main as torchrun_main

    torchrun_main(args)
    return 0


def _studio(args: list[str]) -> int:
    from studio.__main__ import main as studio_main

    return studio_main(args)


SUBCOMMANDS = {"engine": _engine, "launch": _launch, "torchrun": _torchrun}


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in SUBCOMMANDS:
        return SUBCOMMANDS[args[0]](args[1:])
    if args and args[0] == "version":
        return _engine(args)
    return _studio(args)


if __name__ == "__main__":
    if getattr(sys, "frozen", False):
        # torch or a library may start helper processes with multiprocessing's spawn method: those
        # re-run this executable, which must then act as the multiprocessing child, not the studio.
        import multiprocessing

        multiprocessing.freeze_support()
    else:
        # From source (`python packaging/entry.py`): make the checkout importable without installing.
        sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.exit(main())
