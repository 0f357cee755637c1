"""The one place that knows how to start the engine (from source, or the frozen bundle).

Packaging changes only this module. Pure Python (no Qt) so it is easy to test.
"""

from __future__ import annotations

import os
import sys


def project_root() -> str:
    """The folder holding core/, studio/ and resources/ (the bundle's folder when frozen)."""
    frozen = getattr(sys, "_MEIPASS", None)
    return frozen or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def resources_dir(*parts: str) -> str:
    """resources/ (presets, icons, theme) from source or inside the bundle, joined with `parts`."""
    return os.path.join(project_root(), "resources", *parts)


def engine_env(base: dict | None = None) -> dict:
    """Environment for an engine process: unbuffered output, and this source tree first on the path."""
    env = dict(os.environ if base is None else base, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (project_root(), env.get("PYTHONPATH", "")) if p)
    return env


def engine_base() -> list[str]:
    """argv prefix that runs `llm-train`: `python -m core` from source, the bundle's executable frozen."""
    override = os.environ.get("LLM_STUDIO_ENGINE")  # e.g. a fake engine in tests, or a custom build
    if override:
        return override.split()
    if getattr(sys, "frozen", False):
        return [sys.executable, "engine"]
    return [sys.executable, "-m", "core"]


def engine_command(subcommand: str, *args: str, nproc: int = 1) -> list[str]:
    """Full argv for an engine subcommand; nproc > 1 launches through torchrun on this node."""
    if nproc > 1 and subcommand == "train":
        return torchrun_command(nproc, 1, 0, "localhost", 29500, subcommand, *args, standalone=True)
    return [*engine_base(), subcommand, *args]


def torchrun_command(nproc: int, nnodes: int, node_rank: int, master_addr: str, master_port: int,
                     subcommand: str, *args: str, standalone: bool = False) -> list[str]:
    """`python -m torch.distributed.run ... -m core <subcommand>` (torchrun), for one node or many.

    Frozen: the bundle's `torchrun` subcommand, whose workers are the bundle again (`--no-python EXE
    engine <subcommand>`): there is no `python -m` in a bundle.
    """
    frozen = getattr(sys, "frozen", False)
    launcher = [sys.executable, *(["torchrun"] if frozen else ["-m", "torch.distributed.run"]),
                f"--nproc_per_node={nproc}"]
    if standalone:
        launcher.append("--standalone")
    else:
        launcher += [f"--nnodes={nnodes}", f"--node_rank={node_rank}",
                     f"--master_addr={master_addr}", f"--master_port={master_port}"]
    if frozen:
        return [*launcher, "--no-python", sys.executable, "engine", subcommand, *args]
    return [*launcher, "-m", "core", subcommand, *args]


def launcher_command(run_dir: str, engine_argv: list[str]) -> list[str]:
    """argv that runs `engine_argv` detached from the GUI through studio.engine.launcher."""
    if getattr(sys, "frozen", False):
        return [sys.executable, "launch", run_dir, "--", *engine_argv]
    # Run as a script (stdlib only), so it needs no PYTHONPATH; it sets one up for the engine.
    return [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "launcher.py"),
            run_dir, "--", *engine_argv]


def train_args(config_path: str, resume: bool = False, overrides: list[str] | tuple[str, ...] = (),
               threads: int = 0, share: bool = False) -> list[str]:
    """Arguments of `llm-train train` as the studio launches it (events on, optional resume, --set,
    --threads: 0 = torch's default, and --share-cores where the run takes every core)."""
    args = ["--config", config_path, "--events"] + (["--threads", str(threads)] if threads else [])
    if share:
        args.append("--share-cores")
    if resume:
        args.append("--resume")
    for assignment in overrides:
        args += ["--set", assignment]
    return args
