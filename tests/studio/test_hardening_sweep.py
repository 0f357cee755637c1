"""Issue 14, the studio's part of the corruption sweep: every file of a run folder truncated, zeroed and
garbled in turn; the main window opens the workspace without an exception, lists the run, and says it is
damaged wherever the damage can be told from an honest state (a metrics.jsonl cut short is what a killed
engine leaves, a config.yaml cut short is a config being edited: those are listed, not "damaged").
"""

from __future__ import annotations

import os

import pytest

from core import layout
from studio.workspace.proc import fingerprint
from studio.workspace.run import Run
from tests.studio.helpers import open_window, write_finished_run
from tests.studio.test_hardening_damage import _demo_workspace, _screenshot

CKPT_META = os.path.join(layout.CHECKPOINTS, layout.step_dir_name(50), layout.META)
FILES = (layout.CONFIG, layout.METRICS, layout.RUN_JSON, layout.LAUNCHER_JSON, layout.EXIT_JSON,
         layout.STUDIO_JSON, CKPT_META, layout.ENGINE_LOG)
# engine.log is free text (the engine's stderr): whatever it holds is shown as it is.
HARMLESS = {("truncated", layout.METRICS), ("truncated", layout.CONFIG),
            *((how, layout.ENGINE_LOG) for how in ("truncated", "zeroed", "garbled"))}


def _full_run(run: Run) -> None:
    """A finished run with every file the engine, the launcher and the studio write."""
    write_finished_run(run.dir, status="done")
    me = fingerprint(os.getpid())
    layout.atomic_write_json(run.path(layout.RUN_JSON), {
        "status": "done", "pid": os.getpid(), "started": 1.0, "ended": 2.0,
        "sessions": [{"started": 1.0, "argv": ["llm-train", "train"], "resume": False}]})
    layout.atomic_write_json(run.path(layout.LAUNCHER_JSON), {
        "pid": os.getpid(), "launcher_pid": os.getpid(), "argv": ["llm-train", "train"], "started": 1.0,
        "pid_fingerprint": me, "launcher_fingerprint": me})
    layout.atomic_write_json(run.path(layout.EXIT_JSON), {"code": 0, "ended": 2.0, "started": 1.0})
    run.set_lineage("copy", "../tiny")
    with open(run.log_path, "w", encoding="utf-8") as fh:
        fh.write("--- 2026-01-01 00:00:00 llm-train train\n" + "".join(f"step {i}: fine\n" for i in range(50)))


def corrupt(path: str, how: str) -> None:
    with open(path, "rb") as fh:
        data = fh.read()
    if how == "truncated":
        data = data[: len(data) // 2]
    elif how == "zeroed":
        data = b"\0" * len(data)
    else:  # garbled: 64 bytes in the middle replaced by bytes that are never valid UTF-8 on their own
        mid = max(0, len(data) // 2 - 32)
        data = data[:mid] + bytes(range(0x80, 0xC0)) + data[mid + 64:]
    with open(path, "wb") as fh:
        fh.write(data)


@pytest.mark.parametrize("how", ["truncated", "zeroed", "garbled"])
@pytest.mark.parametrize("name", FILES)
def test_each_file_damaged_in_turn(qtbot, workspace, name, how):
    run = workspace.create_run("demo", workspace.run("tiny").read_config_text())
    _full_run(run)
    assert Run(run.dir).status() == "done"  # healthy before the damage
    corrupt(run.path(name), how)
    w = open_window(qtbot, workspace.root, close_policy="leave")
    tree = w.runs_panel.tree
    items = [tree.topLevelItem(i) for i in range(tree.topLevelItemCount())]
    items += [it.child(j) for it in items for j in range(it.childCount())]
    rows = {it.text(0): it for it in items}
    assert set(rows) == {"tiny", "demo"} and rows["tiny"].text(1) == "new"
    w.select_run(run.dir)
    w.training.plots.redraw()
    ctl = w.session.controller(run.dir)
    assert not ctl.is_running()
    if (how, name) in HARMLESS:
        # metrics.jsonl cut short lost its `done` event: the run reads as one that died (failed).
        assert rows["demo"].text(1) == ("failed" if name == layout.METRICS else "done")
    else:
        short = name.split(os.sep)[-1]
        assert rows["demo"].text(1) == "damaged" and short in rows["demo"].toolTip(1)
        assert w.training.error_banner.isVisible() and short in w.training.error_banner.text()


@pytest.mark.parametrize("name,how,panel", [(layout.METRICS, "zeroed", "config"),
                                            (layout.LAUNCHER_JSON, "garbled", "data")])
def test_screenshot_of_a_damaged_workspace(tmp_path, name, how, panel):
    """(--panel main/runs would train a demo fork first: config and data show a finished run as it is.)"""
    root = _demo_workspace(tmp_path, lambda run: (_full_run(run), corrupt(run.path(name), how)))
    out = tmp_path / "shot.png"
    done = _screenshot(root, out, panel)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and out.stat().st_size > 1000
