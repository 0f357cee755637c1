"""The checkpoint pickers use the engine's one definition of a checkpoint (core.layout): they list only
complete checkpoints, and a folder picked by hand that the engine would refuse is refused with the very
message the engine prints (compared with `python -m core generate --checkpoint FOLDER`)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from PySide6.QtWidgets import QFileDialog

from core import layout
from studio.views.attention.panel import AttentionPanel
from studio.views.common.checkpoint_picker import CheckpointPicker
from studio.views.generate.panel import GenerationPanel

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENGINE_PREFIX = "llm-train: error: "


def make_checkpoint(run_dir: str, step: int, meta: bool = True) -> str:
    """A checkpoint folder laid out by core.layout (weights are a stand-in: nothing here loads them)."""
    path = os.path.join(run_dir, layout.CHECKPOINTS, layout.step_dir_name(step))
    os.makedirs(path)
    layout.atomic_write(os.path.join(path, layout.WEIGHTS), b"")
    if meta:
        layout.atomic_write_json(os.path.join(path, layout.META), {"step": step})
    return path


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("picker") / "ws"
    run = root / "runs" / "tiny"
    make_checkpoint(str(run), 10)
    make_checkpoint(str(run), 20, meta=False)          # half written or half pruned
    os.makedirs(run / layout.CHECKPOINTS / "step-30")  # too few digits: not a name the engine writes
    make_checkpoint(str(root / "runs" / "other"), 5)
    return str(root)


_engine_said: dict[str, str] = {}


def engine_refusal(folder: str) -> str:
    """What the engine says when asked to generate from `folder` (its message, without the prefix); asked
    once per folder (each ask starts an engine)."""
    if folder not in _engine_said:
        _engine_said[folder] = _ask_engine(folder)
    return _engine_said[folder]


def _ask_engine(folder: str) -> str:
    env = {**os.environ, "PYTHONPATH": ROOT}
    done = subprocess.run([sys.executable, "-m", "core", "generate", "--checkpoint", folder, "--max-new-tokens", "1"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    lines = [ln for ln in done.stderr.splitlines() if ln.startswith(ENGINE_PREFIX)]
    assert len(lines) == 1, done.stderr[-2000:]
    return lines[0][len(ENGINE_PREFIX):]


def test_picker_lists_only_complete_checkpoints(qtbot, ws):
    picker = CheckpointPicker()
    qtbot.addWidget(picker)
    picker.set_workspace(ws)
    runs = os.path.join(ws, "runs")
    assert picker.checkpoints() == [os.path.join(runs, "other", "checkpoints", "step-000005"),
                                    os.path.join(runs, "tiny", "checkpoints", "step-000010")]
    assert picker.checkpoint() == picker.checkpoints()[0]  # newest first, preselected
    labels = [picker.combo.itemText(i) for i in range(picker.combo.count())]
    assert labels == ["other · step 5", "tiny · step 10", "Other folder…"]


def test_a_narrow_picker_elides_the_run_name_not_the_step(qtbot, tmp_path):
    """Cut at the right, 'demo-ft-tasks-chat · step 300' read 'demo-ft-tasks-chat · step 30' on the Generate
    tab at 150 % scaling: the label is elided in the middle as it is drawn, and the tooltip has it whole."""
    make_checkpoint(str(tmp_path / "runs" / "demo-ft-tasks-chat"), 300)
    picker = CheckpointPicker()
    qtbot.addWidget(picker)
    picker.set_workspace(str(tmp_path))
    combo = picker.combo
    assert combo.currentText() == "demo-ft-tasks-chat · step 300" == combo.toolTip()
    picker.resize(160, picker.sizeHint().height())
    picker.show()
    drawn = []
    real = combo.shown_text
    combo.shown_text = lambda option: drawn.append(real(option)) or drawn[-1]
    combo.grab()  # paints it
    assert drawn and drawn[-1].endswith("step 300") and "…" in drawn[-1], drawn
    assert combo.fontMetrics().horizontalAdvance(drawn[-1]) < combo.width()


@pytest.mark.parametrize("panel_class", [GenerationPanel, AttentionPanel])
def test_other_folder_refuses_what_the_engine_refuses_with_its_message(qtbot, ws, monkeypatch, panel_class):
    panel = panel_class()
    qtbot.addWidget(panel)
    panel.set_workspace(ws)
    picker = panel.sides["A"].picker if panel_class is GenerationPanel else panel.picker
    chosen = picker.checkpoint()
    refused = {
        "workspace": ws,                                                               # not a checkpoint at all
        "run": os.path.join(ws, "runs", "tiny"),                                       # a run, not a checkpoint
        "no meta": os.path.join(ws, "runs", "tiny", "checkpoints", "step-000020"),     # incomplete
        "short name": os.path.join(ws, "runs", "tiny", "checkpoints", "step-30"),
    }
    messages = set()
    for folder in refused.values():
        monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *_a, f=folder, **_k: f)
        with qtbot.waitSignal(picker.checkpoint_refused, timeout=5000) as blocker:
            picker.browse()
        shown = blocker.args[0]
        assert shown == engine_refusal(folder)
        assert panel.status.text() == shown and folder in shown
        assert picker.checkpoint() == chosen  # the refused folder is not selected, nor listed
        assert folder not in picker.checkpoints()
        messages.add(shown)
    assert len(messages) == len(refused)  # each says what is wrong with that folder

    good = os.path.join(ws, "runs", "other", "checkpoints", "step-000005")
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *_a, **_k: good)
    with qtbot.waitSignal(picker.checkpoint_changed, timeout=5000):
        picker.browse()
    assert picker.checkpoint() == good


def test_side_by_side_starts_on_the_parent_then_another_run_then_the_oldest(tmp_path):
    """counterpart(): what side B shows when side by side is turned on, never A's own checkpoint."""
    from studio.workspace.checkpoints import counterpart
    from studio.workspace.run import Run

    def ck(run: str, step: int) -> str:
        path = tmp_path / "runs" / run / "checkpoints" / f"step-{step:06d}"
        path.mkdir(parents=True)
        return str(path)

    a10, a20, b30, b40, c5 = ck("a", 10), ck("a", 20), ck("b", 30), ck("b", 40), ck("c", 5)
    Run(str(tmp_path / "runs" / "c")).set_lineage("fork", "../b", b30)
    # as a picker lists them: the selected run's newest first, then the other runs by name
    assert counterpart(c5, [c5, a20, a10, b40, b30]) == b40          # a fork: its parent's newest
    assert counterpart(b40, [b40, b30, a20, a10, c5]) == a20         # another run's newest
    assert counterpart(a20, [a20, a10]) == a10                       # one run: its oldest
    assert counterpart(a20, [a20]) is None
