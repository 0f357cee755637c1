"""The checkpoints a workspace offers, their labels, and why a folder is refused, all by core.layout's one
definition of a checkpoint (the engine's). Pure Python, no Qt.
"""

from __future__ import annotations

import os

from core import layout
from core.errors import CheckpointError
from studio.workspace.run import Run
from studio.workspace.workspace import Workspace, run_of  # noqa: F401 (run_of is used from here too)


def checkpoint_label(path: str) -> str:
    """'run · step 500' for RUN/checkpoints/step-000500, 'run · imported' for an imported model's weights
    (never trained here: "step 0" read as untrained), else the folder name."""
    parts = os.path.normpath(path).split(os.sep)
    step = layout.checkpoint_step(path)
    if len(parts) >= 3 and parts[-2] == layout.CHECKPOINTS and step is not None:
        if step == 0 and Run(os.path.dirname(os.path.dirname(os.path.normpath(path)))).lineage().get(
                "kind") == "import":
            return f"{parts[-3]} · imported"
        return f"{parts[-3]} · step {step}"
    return parts[-1]


def workspace_checkpoints(root: str) -> list[str]:
    """Every complete checkpoint of the workspace's run folders (made by the studio or the CLI), runs by
    name, each run's oldest first, as absolute paths."""
    runs_dir = Workspace(root).runs_dir
    try:
        names = sorted(os.listdir(runs_dir))
    except OSError:
        return []
    return [os.path.abspath(path) for name in names
            for _step, path in layout.list_checkpoints(os.path.join(runs_dir, name))]


def offered_checkpoints(root: str, extra: list[str]) -> list[str]:
    """What a picker offers: the workspace's checkpoints, then the `extra` folders (picked by hand) that
    are still checkpoints."""
    out = workspace_checkpoints(root) if root else []
    return out + [p for p in extra if p not in out and layout.is_checkpoint(p)]


def checkpoint_refusal(path: str) -> str | None:
    """None if the engine accepts `path` as --checkpoint, else the engine's own message saying why not."""
    try:
        layout.resolve_checkpoint(path)
    except CheckpointError as exc:
        return str(exc)
    return None


def counterpart(checkpoint: str, offered: list[str]) -> str | None:
    """What to show beside `checkpoint` when side by side is turned on (the same one twice shows nothing):
    the newest checkpoint of its run's parent (a fork or copy against where it came from), else of
    another run, else its own run's oldest (how far training took it). `offered` as a picker lists them."""
    run = run_of(checkpoint)
    others = [p for p in offered if p != checkpoint]
    if not run or not others:
        return others[0] if others else None
    newest = {}
    for p in others:  # a picker lists each run's checkpoints newest first
        newest.setdefault(run_of(p), p)
    parent = Run(run).parent_dir()
    if parent and os.path.normpath(parent) in newest:
        return newest[os.path.normpath(parent)]
    foreign = [p for r, p in newest.items() if r != run]
    if foreign:
        return foreign[0]
    own = [p for p in others if run_of(p) == run]
    return min(own, key=lambda p: layout.checkpoint_step(p) or 0) if own else others[0]
