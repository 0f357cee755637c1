"""Run → Find Learning Rate… against the real engine: the range test's losses are drawn against their rates
as they come, a rate is suggested and marked, Use writes it into the run's train.lr (a tenth in min_lr) and
the Config tab shows it; nothing else of the run folder changes."""

from __future__ import annotations

import os

import pytest
from PySide6.QtWidgets import QApplication

from core.config import loads
from studio.workspace.workspace import Workspace
from tests.studio.helpers import open_window, select_run
from tests.studio.test_generation_panel import tiny_run_copy

WAIT_MS = 180_000  # the engine imports torch first; the machine is shared


@pytest.fixture
def ws(tmp_path, tmp_path_factory) -> Workspace:
    return tiny_run_copy(tmp_path, tmp_path_factory)


def _files(folder: str) -> dict[str, int]:
    return {os.path.join(d, f): os.stat(os.path.join(d, f)).st_mtime_ns
            for d, _dirs, files in os.walk(folder) for f in files}


def test_find_learning_rate_suggests_a_rate_and_use_writes_it(qtbot, ws):
    w = open_window(qtbot, ws.root)
    select_run(w, "tiny")
    run_dir = os.path.join(ws.runs_dir, "tiny")
    before = _files(run_dir)
    run_menu = next(a.menu() for a in w.menuBar().actions() if a.text() == "&Run")
    next(a for a in run_menu.actions() if a.text() == "Find &Learning Rate…").trigger()
    dialog = w.run_actions.lr_dialog
    assert dialog.isVisible() and not dialog.use_button.isEnabled()
    dialog.steps.setValue(20)
    dialog.start.setCurrentIndex(dialog.start.findData(1e-5))
    seen = []
    dialog.job.progressed.connect(lambda step, steps, lr, loss: seen.append((step, lr)))
    with qtbot.waitSignal(dialog.job.finished, timeout=WAIT_MS) as blocker:
        assert dialog.run_test()
    result = blocker.args[0]
    assert result.ok, result.failure
    assert [s for s, _ in seen] == list(range(1, len(result.lrs) + 1)) and seen[0][1] == pytest.approx(1e-5)
    assert len(dialog.raw.getData()[0]) == len(result.lrs) and len(dialog.smooth.getData()[0]) == len(result.lrs)
    assert result.suggested_lr is not None, result.how
    lr = float(f"{result.suggested_lr:.2g}")
    assert dialog.mark.isVisible() and dialog.use_button.text() == f"Use {lr:g}" and dialog.use_button.isEnabled()
    assert f"Suggested train.lr: {result.suggested_lr:.2g}" in dialog.status.text()
    cautious = float(f"{result.cautious_lr:.2g}")  # the other end of the rates worth a run, also offered
    assert dialog.cautious_mark.isVisible() and dialog.cautious_button.text() == f"Use {cautious:g}"
    assert f"more cautious: {result.cautious_lr:.2g}" in dialog.status.text()
    assert _files(run_dir) == before  # the test wrote nothing of the run
    dialog.use_button.click()
    QApplication.processEvents()
    cfg = loads(open(os.path.join(run_dir, "config.yaml"), encoding="utf-8").read())
    assert cfg.train.lr == pytest.approx(lr) and cfg.train.min_lr == pytest.approx(lr / 10)
    assert w.config_editor.config().train.lr == pytest.approx(lr)  # the Config tab shows it
    assert [p for p in _files(run_dir) if _files(run_dir)[p] != before.get(p)] == [os.path.join(run_dir,
                                                                                                "config.yaml")]
