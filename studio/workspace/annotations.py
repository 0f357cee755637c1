"""What the user says about a run beside its files: notes and tags (in its studio.json, next to the
lineage), its name (the folder: renaming moves it and re-points the runs made from it), and moving it to
the trash.

Qt-free; the WorkspaceSession decides when these are allowed (never while the run trains).
"""

from __future__ import annotations

import os
import re

from core import layout
from studio.workspace.run import Run

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")
TAG_RE = re.compile(r"[^\w.+-]+")


def notes(run_dir: str) -> str:
    return str(layout.read_json(os.path.join(run_dir, layout.STUDIO_JSON)).get("notes") or "")


def tags(run_dir: str) -> list[str]:
    value = layout.read_json(os.path.join(run_dir, layout.STUDIO_JSON)).get("tags") or []
    return [str(t) for t in value] if isinstance(value, list) else []


def parse_tags(text: str) -> list[str]:
    """'baseline, lr sweep,baseline' -> ['baseline', 'lr-sweep']: trimmed, inner spaces as '-', no
    repeats, order kept."""
    out: list[str] = []
    for part in text.split(","):
        tag = TAG_RE.sub("-", part.strip()).strip("-")
        if tag and tag not in out:
            out.append(tag)
    return out


def annotate(run_dir: str, notes: str | None = None, tags: list[str] | None = None) -> None:
    """Set the run's notes and/or tags in studio.json, keeping what else it holds (the lineage)."""
    path = os.path.join(run_dir, layout.STUDIO_JSON)
    data = layout.read_json(path)
    if notes is not None:
        data["notes"] = notes
    if tags is not None:
        data["tags"] = list(tags)
    layout.atomic_write_json(path, data)


def name_problem(runs_dir: str, old_name: str, new_name: str) -> str | None:
    """Why `new_name` cannot be the run's new folder name (None when it can)."""
    if new_name == old_name:
        return "that is already its name"
    if not NAME_RE.match(new_name):
        return (f"{new_name!r} is not a usable run name: letters, digits, '.', '_' and '-' only, starting "
                "with a letter or digit, at most 80 characters")
    if os.path.exists(os.path.join(runs_dir, new_name)):
        return f"a run named {new_name!r} already exists"
    return None


def rename_run(run: Run, new_name: str) -> Run:
    """Move the run folder to `new_name` beside it; runs copied or forked from it are re-pointed (their
    lineage and a train.init_from inside it). Raises ValueError with the reason when it cannot."""
    runs_dir = os.path.dirname(run.dir)
    problem = name_problem(runs_dir, run.name, new_name)
    if problem:
        raise ValueError(problem)
    new = Run(os.path.join(runs_dir, new_name))
    os.rename(run.dir, new.dir)
    for name in sorted(os.listdir(runs_dir)):
        child = Run(os.path.join(runs_dir, name))
        if child.dir != new.dir and child.parent_dir() == run.dir:
            _repoint(child, run.dir, new.dir)
    return new


def _lora_bases(run_dir: str):
    """(meta.json path, meta, base) of each LoRA checkpoint of a run: its base checkpoint by absolute path."""
    for _step, ckpt in layout.list_checkpoints(run_dir):
        meta_path = os.path.join(ckpt, layout.META)
        meta = layout.read_json(meta_path)
        lora = meta.get("lora")
        base = layout.lora_base(ckpt, lora) if isinstance(lora, dict) else ""
        if base:
            yield meta_path, meta, os.path.normpath(base)


def inside(path: str, folder: str) -> bool:
    """Whether `path` is `folder` or below it (both normalised paths)."""
    return path == folder or path.startswith(folder + os.sep)


def _repoint_lora_bases(child: Run, old_dir: str, new_dir: str) -> None:
    """LoRA checkpoints name their base by absolute path (meta.json lora.base, outside the checksums):
    those inside the renamed run now point into its new folder, so the adapters keep loading."""
    for meta_path, meta, base in _lora_bases(child.dir):
        if inside(base, old_dir):
            moved = new_dir + base[len(old_dir):]
            meta["lora"]["base"] = moved
            meta["lora"]["base_relative"] = os.path.relpath(moved, os.path.dirname(meta_path))
            layout.atomic_write_json(meta_path, meta)


def lora_children(runs: list[Run], run_dir: str) -> list[str]:
    """Names of the runs whose LoRA checkpoints are built on a checkpoint of `run_dir` (they stop loading
    if it goes away)."""
    folder = os.path.normpath(run_dir)
    return [run.name for run in runs if any(inside(base, folder) for _p, _m, base in _lora_bases(run.dir))]


def _repoint(child: Run, old_dir: str, new_dir: str) -> None:
    """A child run's references into its renamed parent, rewritten relative to the child."""
    from core.config_text import set_value

    def moved(rel: str | None) -> str | None:
        if not rel:
            return rel
        path = os.path.normpath(os.path.join(child.dir, rel))
        if path != old_dir and not path.startswith(old_dir + os.sep):
            return rel
        return os.path.relpath(new_dir + path[len(old_dir):], child.dir)

    path = child.path(layout.STUDIO_JSON)
    data = layout.read_json(path)
    data["parent_run"] = moved(data.get("parent_run"))
    if data.get("parent_checkpoint"):
        data["parent_checkpoint"] = moved(data["parent_checkpoint"])
    layout.atomic_write_json(path, data)
    _repoint_lora_bases(child, old_dir, new_dir)
    cfg = child.config_or_none()
    init_from = cfg.train.init_from if cfg is not None else None
    if init_from and moved(os.path.relpath(init_from, child.dir)) != os.path.relpath(init_from, child.dir):
        text = child.read_config_text()
        try:
            child.write_config_text(set_value(text, "train.init_from", moved(os.path.relpath(init_from,
                                                                                               child.dir))))
        except Exception:  # noqa: BLE001 - an uneditable config keeps its text; the editor will say why
            pass
