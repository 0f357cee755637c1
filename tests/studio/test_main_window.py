"""The main window driven headlessly with pytest-qt: runs list, start/stop/resume, failures, close."""

from __future__ import annotations

import math
import os

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from core.schedule import lr_at
from studio.settings import Settings
from studio.workspace.workspace import with_changes
from tests.studio.fake_engine import release_path
from tests.studio.helpers import select_run, write_checkpoint_with_model, write_finished_run


def test_past_runs_are_listed_and_plotted(qtbot, window, workspace):
    for name, status in (("a", "done"), ("b", "stopped"), ("c", "failed")):
        run = workspace.create_run(name, workspace.run("tiny").read_config_text())
        write_finished_run(run.dir, status=status)
    w = window(workspace.root)
    tree = w.runs_panel.tree
    rows = {tree.topLevelItem(i).text(0): tree.topLevelItem(i) for i in range(tree.topLevelItemCount())}
    assert {k: v.text(1) for k, v in rows.items()} == {"tiny": "new", "a": "done", "b": "stopped", "c": "failed"}
    assert rows["a"].text(2) == "100/100" and rows["a"].text(3) != "–"
    select_run(w, "a")
    plots = w.training.plots
    plots.redraw()
    xs, ys = plots.curves["raw"].getData()
    assert len(xs) == 100 and plots.best_marker.data.size == 1
    assert plots.clip_line.isVisible() and "best val" in plots.best_text.toPlainText()
    assert plots.clip_line.label.toPlainText().startswith("clip 1")  # the threshold is written on it
    assert not w.training.start_button.isEnabled() and w.training.resume_button.isVisible()
    select_run(w, "c")
    assert w.training.error_banner.isVisible() and "simulated failure" in w.training.error_banner.text()
    # tick "a" to overlay its curves on "c"
    rows["a"].setCheckState(0, Qt.CheckState.Checked)
    assert len(plots.overlay_items) == 6  # loss, val, lr, speed, and grad norm as its first steps + the rest


def test_invalid_config_blocks_start_with_the_reason(qtbot, window, workspace):
    w = window(workspace.root)
    select_run(w, "tiny")
    assert w.training.start_button.isEnabled()
    assert w.training.progress.maximum() == 200  # a fresh run's bar spans its configured max_steps
    x_range = w.training.plots.plots["loss"].viewRange()[0]
    assert x_range[0] <= 0 and 190 <= x_range[1] <= 220  # empty plots span the planned steps
    w.config_editor.form.editors["train.max_steps"].input.setValue(400)  # they follow an edit at once
    assert w.training.progress.maximum() == 400 and w.training.progress.text().endswith("/ 400 steps")
    assert 390 <= w.training.plots.plots["loss"].viewRange()[0][1] <= 440
    w.config_editor.set_text(with_changes(workspace.run("tiny").read_config_text(), {"model.n_embd": 33}))
    qtbot.waitUntil(lambda: not w.training.start_button.isEnabled(), timeout=3000)
    assert "model.n_embd" in w.training.start_button.toolTip()
    assert w.training.blocker_label.isVisible() and "model.n_embd" in w.training.blocker_label.text()
    assert not w.start_training()


def test_a_gpu_this_machine_lacks_is_said_before_start_not_after(qtbot, window, workspace, monkeypatch):
    """train.device: cuda (the gpt2-small preset's) on a machine without a GPU: the engine refused it at
    start-up and the run was marked failed; Start now says why and waits, Device: CPU starts it."""
    from studio.controllers import engine_info
    from studio.workspace import workspace as wsmod

    monkeypatch.setattr(wsmod, "gpu_driver_present", lambda: False)
    monkeypatch.setattr(engine_info, "_ANSWER", None)
    tiny = workspace.run("tiny")
    tiny.write_config_text(with_changes(tiny.read_config_text(), {"train.device": "cuda"}))
    w = window(workspace.root)
    select_run(w, "tiny")
    assert not w.training.start_button.isEnabled()
    assert "train.device: cuda, but this machine has no GPU driver" in w.training.blocker_label.text()
    assert not w.start_training() and w.controller().status == "new"
    combo = w.training.device_combo
    combo.setCurrentIndex(combo.findData("cpu"))  # the Training bar's choice over the config's
    assert w.training.start_button.isEnabled() and not w.training.blocker_label.isVisible()
    combo.setCurrentIndex(combo.findData("mps"))
    assert "train.device: mps is Apple's GPU" in w.training.blocker_label.text()
    # the engine's own answer (Help → About asked it) is the more precise one: a GPU driver, a CPU-only torch
    monkeypatch.setattr(wsmod, "gpu_driver_present", lambda: True)
    engine_info.remember({"torch": "2.13.0+cpu", "cuda_available": False, "mps_available": False})
    combo.setCurrentIndex(combo.findData(""))
    assert "the engine (torch 2.13.0+cpu) sees no CUDA GPU" in w.training.blocker_label.text()


def test_start_stop_resume_from_the_gui(qtbot, window, workspace, fake_engine):
    fake_engine("normal", hold_at=5)
    w = window(workspace.root)
    select_run(w, "tiny")
    ctl = w.controller()
    qtbot.mouseClick(w.training.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.training.plots.curves["raw"].getData()[0] is not None and
                    len(w.training.plots.curves["raw"].getData()[0]) >= 5, timeout=15000)
    assert w.training.stop_button.isEnabled() and w.stop_action.isEnabled()
    assert w.runs_panel.tree.topLevelItem(0).text(1) == "running"
    with qtbot.waitSignal(ctl.run_finished, timeout=15000) as blocker:
        qtbot.mouseClick(w.training.stop_button, Qt.MouseButton.LeftButton)
    assert blocker.args[0] == "stopped" and w.training.resume_button.isEnabled()
    stopped_at = ctl.history.step
    assert stopped_at == 5
    fake_engine("normal")
    with qtbot.waitSignal(ctl.run_finished, timeout=20000) as blocker:
        qtbot.mouseClick(w.training.resume_button, Qt.MouseButton.LeftButton)
    assert blocker.args[0] == "done" and ctl.history.step == 200 > stopped_at
    qtbot.waitUntil(lambda: w.training.progress.value() == 200, timeout=3000)
    assert "done" in w.runs_panel.tree.topLevelItem(0).text(1)


def test_crash_shows_the_error_and_the_gui_keeps_working(qtbot, window, workspace, fake_engine):
    fake_engine("crash", FAKE_ENGINE_CRASH_AT="4")
    w = window(workspace.root)
    select_run(w, "tiny")
    with qtbot.waitSignal(w.controller().run_finished, timeout=15000):
        assert w.start_training()
    banner = w.training.error_banner
    assert banner.isVisible() and "simulated crash" in banner.text() and "code 3" in banner.text()
    assert "failed" in w.statusBar().currentMessage()
    # still usable: make a new run from the failed one and start it
    fake_engine("normal")
    w.copy_run(w.current_dir)
    assert w.controller().run.name == "tiny-2" and w.controller().status == "new"
    with qtbot.waitSignal(w.controller().run_finished, timeout=15000) as blocker:
        assert w.start_training()
    assert blocker.args[0] == "done" and not w.training.error_banner.isVisible()


def test_resume_after_data_removed_reports_the_engine_error(qtbot, window, workspace, fake_engine):
    run = workspace.run("tiny")
    write_finished_run(run.dir, steps=50, status="stopped")
    os.remove(os.path.join(workspace.data_dir, "demo", "meta.json"))
    w = window(workspace.root)
    select_run(w, "tiny")
    with qtbot.waitSignal(w.controller().run_finished, timeout=15000):
        assert w.start_training(resume=True)
    assert w.training.error_banner.isVisible() and "no prepared data" in w.training.error_banner.text()


def test_close_leaving_a_run_running_then_reopen_follows_it(qtbot, window, workspace, fake_engine):
    fake_engine("normal", hold_at="3,8")
    w = window(workspace.root)
    select_run(w, "tiny")
    w.start_training()
    qtbot.waitUntil(lambda: w.controller().history.step >= 3, timeout=15000)
    w.close_policy = "leave"
    w.close()
    w2 = window(workspace.root)
    ctl = w2.controller()
    assert ctl.run.name == "tiny" and ctl.is_running() and w2.training.stop_button.isEnabled()
    assert "Following 1 run(s) still training" in w2.statusBar().currentMessage()
    open(release_path(ctl.run.dir, 3), "w").close()  # let the engine go on to its next hold
    qtbot.waitUntil(lambda: ctl.history.step >= 8, timeout=15000)
    with qtbot.waitSignal(ctl.run_finished, timeout=15000) as blocker:
        w2.stop_training()
    assert blocker.args[0] == "stopped" and ctl.history.step == 8


def test_fork_shows_lineage_and_parent_curve(qtbot, window, workspace):
    parent = workspace.run("tiny")
    write_finished_run(parent.dir, steps=100, status="done")
    w = window(workspace.root)
    ck = parent.checkpoints()[0]
    child = w.session.fork_run(parent.dir, ck.path, {"train.lr": 1e-3}, "tiny-lowlr")
    w.runs_panel.select_run(child.dir)
    item = w.runs_panel.tree.topLevelItem(0)
    assert item.text(0) == "tiny" and item.child(0).text(0) == "tiny-lowlr"
    assert child.config().train.init_from == ck.path
    assert w.training.plots.overlay_items and w.training.start_button.isEnabled()
    w.copy_run(parent.dir)
    assert w.controller().run.config().train.lr == parent.config().train.lr


def test_fork_dialog_creates_a_child_from_the_chosen_checkpoint(qtbot, window, workspace):
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QDialogButtonBox

    from studio.views.runs.fork_dialog import ForkDialog

    parent = workspace.run("tiny")
    write_finished_run(parent.dir, steps=100, status="done")  # checkpoints at steps 50 and 100
    w = window(workspace.root)
    seen = {}

    def drive_dialog() -> None:
        dialog = QApplication.activeModalWidget()
        assert isinstance(dialog, ForkDialog)
        seen["choices"] = [dialog.checkpoint.itemText(i) for i in range(dialog.checkpoint.count())]
        seen["rate at 100"] = dialog.start_lr.value()  # a box of 6 decimals: 0.001761
        dialog.checkpoint.setCurrentIndex(dialog.checkpoint.findText("step 50"))
        seen["rate at 50"] = dialog.start_lr.value()
        seen["default"] = dialog.schedule.currentIndex()
        seen["shown"] = (dialog.start_lr.isVisibleTo(dialog), dialog.lr.isVisibleTo(dialog))
        dialog.schedule.setCurrentIndex(dialog.GO_ON)
        seen["shown after"] = (dialog.start_lr.isVisibleTo(dialog), dialog.lr.isVisibleTo(dialog))
        dialog.schedule.setCurrentIndex(dialog.WARM_UP)
        dialog.lr.setValue(0.0005)
        dialog.name.setText("tiny-slow")
        qtbot.mouseClick(dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok),
                         Qt.MouseButton.LeftButton)

    QTimer.singleShot(0, drive_dialog)
    w.fork_run(parent.dir)  # modal: returns once the dialog was accepted
    assert seen["choices"] == ["step 100", "step 50"]  # newest first
    child = workspace.run("tiny-slow")
    cfg = child.config()
    assert cfg.train.init_from.endswith("step-000050") and cfg.train.lr == 0.0005
    assert cfg.train.min_lr == parent.config().train.min_lr  # unchanged settings are left alone
    # the schedule starts over at the checkpoint, here with a warm-up to the peak rate typed in
    assert (cfg.train.restart_step, cfg.train.restart_lr) == (50, None)
    # a cosine mid-decay: a fresh warm-up by default; going on would start at the parent's rate there
    train = parent.config().train
    assert seen["default"] == ForkDialog.WARM_UP
    assert seen["rate at 100"] == pytest.approx(lr_at(100, train), rel=2e-3) and seen["rate at 100"] < train.lr
    assert seen["rate at 50"] == pytest.approx(lr_at(50, train), rel=2e-3) and seen["rate at 50"] > seen["rate at 100"]
    assert seen["shown"] == (False, True) and seen["shown after"] == (True, False)
    assert w.controller().run.name == "tiny-slow"
    assert w.runs_panel.tree.topLevelItem(0).child(0).text(0) == "tiny-slow"


def test_plot_redraws_are_coalesced(qtbot, window, workspace):
    from core.protocol import make_event

    w = window(workspace.root)
    select_run(w, "tiny")
    ctl, plots = w.controller(), w.training.plots
    before = plots.redraws
    for s in range(1, 2001):
        ctl._on_job_event_received(make_event("step", step=s, loss=2.0, lr=1e-3, grad_norm=1.0,
                                              tokens=s, tokens_per_s=1.0, elapsed_s=s * 0.01))
    qtbot.waitUntil(lambda: plots.redraws > before, timeout=3000)
    assert plots.redraws - before <= 2
    assert len(plots.curves["raw"].getData()[0]) == 2000  # the whole history, never truncated


def _export_difference(path: str, view) -> float:
    """Mean lightness difference (0-255), in the worst quadrant, between an export (PNG, or SVG drawn with
    Qt's renderer) brought to the view's size and a grab of the view: small when the export shows what the
    screen does. The PNG once showed the top-left plot alone, 2x and cropped; the SVG drew text and axes 4/3
    as large as the curves."""
    from PySide6.QtCore import Qt as QtCore
    from PySide6.QtGui import QColor, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    grab = view.grab().toImage()
    if path.endswith(".svg"):
        image = QImage(grab.width(), grab.height(), QImage.Format.Format_ARGB32)
        image.fill(QColor("white"))
        painter = QPainter(image)
        QSvgRenderer(path).render(painter)
        painter.end()
    else:
        image = QImage(path)
        assert (image.width(), image.height()) == (2 * grab.width(), 2 * grab.height())  # crisp: twice the size
        image = image.scaled(grab.width(), grab.height(), QtCore.AspectRatioMode.IgnoreAspectRatio,
                             QtCore.TransformationMode.SmoothTransformation)
    worst = 0.0
    for qx in range(2):  # each quadrant (one plot each) on its own: a mean over the whole hides a missing one
        for qy in range(2):
            xs = range(qx * grab.width() // 2, (qx + 1) * grab.width() // 2, 4)
            ys = range(qy * grab.height() // 2, (qy + 1) * grab.height() // 2, 4)
            diffs = [abs(image.pixelColor(x, y).lightness() - grab.pixelColor(x, y).lightness()) for x in xs
                     for y in ys]
            worst = max(worst, sum(diffs) / len(diffs))
    return worst


def test_exports_and_readout(qtbot, window, workspace, tmp_path):
    write_finished_run(workspace.run("tiny").dir)
    w = window(workspace.root)
    select_run(w, "tiny")
    for ext in ("png", "svg", "csv"):
        w.export_to(str(tmp_path / f"plots.{ext}"))
        assert (tmp_path / f"plots.{ext}").stat().st_size > 100
    header = (tmp_path / "plots.csv").read_text().splitlines()[0]
    assert header.startswith("step,tokens,elapsed,loss,lr,grad_norm")
    # measured: PNG 6.4 (15.2 when cropped), SVG 4.9 (8.5 with its text and axes 4/3 large)
    assert _export_difference(str(tmp_path / "plots.png"), w.training.plots.view) < 10
    assert _export_difference(str(tmp_path / "plots.svg"), w.training.plots.view) < 6.5
    (tmp_path / "a-file").write_text("x")
    for ext in ("png", "csv"):  # a place that cannot be written: a message, no exception, nothing left
        w.export_to(str(tmp_path / "a-file" / f"plots.{ext}"))
        assert "Could not export" in w.statusBar().currentMessage()
    view = w.run_actions.compare([workspace.run("tiny").dir])
    asked = []  # the comparison's Export CSV... offers the workspace's folder (not the studio's start folder)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(QFileDialog, "getSaveFileName", lambda *a: (asked.append(a[2]), ("", ""))[1])
        view.export_button.click()
    assert asked == [os.path.join(workspace.root, "compare.csv")]
    view.export_requested.emit(str(tmp_path / "a-file" / "compare.csv"))
    assert "Could not export" in w.statusBar().currentMessage()
    view.export_requested.emit(str(tmp_path / "compare.csv"))
    assert "Exported" in w.statusBar().currentMessage()
    assert "tiny" in (tmp_path / "compare.csv").read_text()
    view.close()
    text = w.training.plots.readout_text(50.2)
    assert "step 50" in text and "loss" in text and "val" in text
    w.training.plots.set_x_mode("tokens")
    assert "tokens 256" in w.training.plots.readout_text(256)
    w.training.plots.set_log_y(True)
    assert w.training.plots.plots["loss"].ctrl.logYCheck.isChecked()


def test_a_first_start_fits_the_window_on_the_screen_and_centres_it(qtbot):
    """No saved geometry: the default size where the screen has room, else the screen less a margin (a
    1360 x 860 window ran off a 1280 x 720 logical screen: 150 % scaling on 1920 x 1080), centred."""
    from PySide6.QtCore import QRect

    from studio.main_window import MainWindow
    from studio.views.common.screen_fit import SCREEN_MARGIN
    from studio.window_state import DEFAULT_SIZE, default_geometry

    w = MainWindow(Settings())
    qtbot.addWidget(w)
    room = w.screen().availableGeometry()  # the test screen, whatever its size
    assert w.width() <= room.width() and w.height() <= room.height()
    for room, size in ((QRect(1920, 0, 1280, 720), (1280 - SCREEN_MARGIN[0], 720 - SCREEN_MARGIN[1])),
                       (QRect(0, 30, 2560, 1410), DEFAULT_SIZE)):  # a second screen; a large one under a bar
        w.screen = lambda room=room: type("Screen", (), {"availableGeometry": lambda self: room})()
        default_geometry(w)
        assert (w.width(), w.height()) == size
        assert (w.geometry().center() - room.center()).manhattanLength() <= 2


def test_window_state_theme_and_recent_workspaces_persist(qtbot, window, workspace):
    w = window(workspace.root)
    w.resize(780, 560)  # within the offscreen screen (800x600): restoreGeometry clamps to it
    w.set_theme("dark")
    w.training.plots.set_smoothing(0.5)
    w.training.plots.set_x_mode("time")
    w.splitter.setSizes([200, 580])
    size, runs_width = w.size(), w.splitter.sizes()[0]
    w.close()
    s = Settings()
    assert s.recent_workspaces() == [workspace.root] and s.value("theme") == "dark"
    w2 = window(size="restored")
    assert w2.size() == size and abs(w2.splitter.sizes()[0] - runs_width) < 60
    assert w2.training.plots.smoothing() == 0.5
    assert w2.training.plots.x_mode == "time" and w2.x_actions["time"].isChecked()
    w2.set_theme("light")


def test_multinode_dialog_lists_one_command_per_node(qtbot, workspace):
    from studio.views.training.multinode_dialog import MultiNodeDialog

    d = MultiNodeDialog(workspace.run("tiny").config_path, ["train.device=cuda"], nproc=4)
    qtbot.addWidget(d)
    d.nnodes.setValue(3)
    text = d.commands.toPlainText()
    assert text.count("--nproc_per_node=4") == 3 and "--node_rank=2" in text and "--nnodes=3" in text
    assert "train.device=cuda" in text and "torch.distributed.run" in text
    assert "--resume" not in text and not d.notice.isVisibleTo(d)


def test_multinode_commands_resume_a_stopped_run_and_warn_on_a_finished_one(qtbot, window, workspace):
    """The commands of a finished run would be refused by the engine (it never trains into a run that
    has trained): the dialog said nothing. A stopped run's commands resume it."""
    from studio.controllers.run import multinode_plan
    from studio.views.training.multinode_dialog import MultiNodeDialog

    stopped = workspace.create_run("stopped", workspace.run("tiny").read_config_text())
    write_finished_run(stopped.dir, steps=60, status="stopped")
    write_finished_run(workspace.run("tiny").dir, steps=60)
    w = window(workspace.root)
    plans = {}
    for name in ("stopped", "tiny"):
        select_run(w, name)
        plans[name] = multinode_plan(w.controller())
        d = MultiNodeDialog(w.controller().run.config_path, [], 1, None, *plans[name])
        qtbot.addWidget(d)
        plans[name] += (d.commands.toPlainText().count("--resume"), d.notice.isVisibleTo(d))
    assert plans["stopped"][0] and "resumes it" in plans["stopped"][1] and plans["stopped"][2:] == (2, True)
    assert not plans["tiny"][0] and "would refuse" in plans["tiny"][1] and plans["tiny"][2:] == (0, True)


def test_eta_and_progress_text(qtbot, window, workspace):
    w = window(workspace.root)
    select_run(w, "tiny")
    from core.protocol import make_event

    ctl = w.controller()
    ctl._on_job_event_received(make_event("start", max_steps=100, start_step=0))
    for s in range(1, 11):
        ctl._on_job_event_received(make_event("step", step=s, elapsed_s=s * 1.0, tokens_per_s=500.0, loss=1.0))
    assert math.isclose(ctl.history.eta_s(), 90.0)
    w.training.refresh_progress()
    assert w.training.progress.value() == 10 and "500 tokens/s" in w.training.progress_label.text()


def test_a_fork_that_changes_its_checkpoints_shape_is_flagged_and_not_started(qtbot, window, workspace):
    """The engine's rule (core.shape), applied in the editor and to Start before any launch: a run that
    starts from train.init_from keeps that checkpoint's model shape."""
    from core import layout as core_layout

    parent = workspace.create_run("parent", workspace.run("tiny").read_config_text())
    ckpt = write_checkpoint_with_model(parent.dir, 50, {"n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 32,
                                                        "vocab_size": 43})
    assert core_layout.is_checkpoint(ckpt)
    text = workspace.run("tiny").read_config_text().replace("max_steps: 200", "max_steps: 300")
    child = workspace.create_run("child", text.replace("lr: 3.0e-3", f"lr: 3.0e-3, init_from: {ckpt}"))
    w = window(workspace.root)
    select_run(w, "child")
    qtbot.waitUntil(lambda: w.training.start_button.isEnabled(), timeout=3000)  # the same shape: startable
    w.config_editor.set_text(with_changes(child.read_config_text(), {"model.n_layer": 3}))
    qtbot.waitUntil(lambda: not w.training.start_button.isEnabled(), timeout=3000)
    assert [p.path for p in w.config_editor.problems()] == ["model.n_layer"]
    assert "model.n_layer: 3 differs from 2 in the checkpoint" in w.training.blocker_label.text()
    assert ckpt in w.training.blocker_label.text() and not w.start_training()
    assert w.controller().status == "new"  # nothing was launched


def test_new_and_open_workspace_never_litter_a_folder_without_asking(qtbot, window, workspace, tmp_path,
                                                                      monkeypatch):
    from PySide6.QtWidgets import QFileDialog, QMessageBox

    w = window(workspace.root)
    starts, answers, warnings = [], [], []
    monkeypatch.setattr(QMessageBox, "question", lambda *_a, **_k: answers.pop(0))
    monkeypatch.setattr(QMessageBox, "warning", lambda _p, _t, text, *_a, **_k: warnings.append(text))

    def pick(path):
        def dialog(_parent, _title, start, *_a, **_k):
            starts.append(start)
            return (path, "") if _title.startswith("New") else path
        return dialog

    # New: a name for a folder that does not exist yet, next to the workspace open now
    new_root = str(tmp_path / "fresh-ws")
    monkeypatch.setattr(QFileDialog, "getSaveFileName", pick(new_root))
    w._on_new_workspace()
    assert starts[-1] == os.path.dirname(workspace.root) and w.session.workspace.root == new_root
    assert os.path.isdir(os.path.join(new_root, "runs"))
    # Open: a folder of someone's files is left alone unless the user says yes
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("keep me")
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", pick(str(notes)))
    answers.append(QMessageBox.StandardButton.No)
    w._on_open_workspace()
    assert sorted(os.listdir(notes)) == ["todo.txt"] and w.session.workspace.root == new_root
    answers.append(QMessageBox.StandardButton.Yes)
    w._on_open_workspace()
    assert w.session.workspace.root == str(notes) and (notes / "todo.txt").read_text() == "keep me"
    assert {"data", "runs", "todo.txt"} <= set(os.listdir(notes))
    # a file is not a folder: said, nothing opened, no traceback
    monkeypatch.setattr(QFileDialog, "getSaveFileName", pick(str(notes / "todo.txt")))
    w._on_new_workspace()
    assert warnings and "is a file, not a folder" in warnings[-1] and w.session.workspace.root == str(notes)
    # an existing workspace opens without a question
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", pick(workspace.root))
    w._on_open_workspace()
    assert w.session.workspace.root == workspace.root and not answers


def test_a_run_that_ended_before_max_steps_says_why_beside_its_bar(qtbot, window, workspace):
    """A speedrun that reached train.target_val_loss at step 150 of 250 showed a bar at 60% and "done"."""
    from core import layout
    from core.protocol import encode, make_event

    reasons = {"target": ("done", "val loss 1.8897 reached train.target_val_loss=1.89 at step 60"),
               "patience": ("stopped", "early stopping: val loss did not improve for 3 evaluations"),
               "asked": ("stopped", "stop requested")}
    for name, (kind, reason) in reasons.items():
        run = workspace.create_run(name, workspace.run("tiny").read_config_text())
        write_finished_run(run.dir, steps=60, status="none")
        extra = {"checkpoint": "", "best_val_loss": 1.88} if kind == "done" else {"checkpoint": ""}
        with open(os.path.join(run.dir, layout.METRICS), "a", encoding="utf-8") as fh:
            fh.write(encode(make_event(kind, step=60, reason=reason, **extra)))
    w = window(workspace.root)
    for name, (_kind, reason) in reasons.items():
        select_run(w, name)
        text = w.training.progress_label.text()
        assert (f"ended early: {reason}" in text) == (name != "asked"), text  # a Stop needs no explaining


def test_keyboard_shortcuts_list_the_menus_and_the_panels_own_keys(qtbot, window, workspace):
    """Help > Keyboard Shortcuts listed menu actions only: Ctrl+Return (Generate, Compute) and Esc were
    nowhere; the panel keys it lists are the ones the buttons have."""
    from PySide6.QtGui import QKeySequence

    from studio.views.common.about import PANEL_KEYS, shortcuts_html

    w = window(workspace.root)
    text = shortcuts_html(w.menuBar())
    assert "Start" in text and "Ctrl+R" in text and "Generate (Generate tab)" in text and "Esc" in text
    # a submenu's keys (File > Export Plots) were left out, and "Enter / Shift+Enter" showed as no key
    assert "Export Plots: Image (PNG)…</td><td>&nbsp;&nbsp;<b>Ctrl+E</b>" in text
    assert "Send a chat message / new line</td><td>&nbsp;&nbsp;<b>Enter / Shift+Enter</b>" in text
    assert "<b></b>" not in text
    keys = dict(PANEL_KEYS)
    native = QKeySequence.SequenceFormat.PortableText
    assert w.generation.generate_button.shortcut().toString(native) == keys["Generate (Generate tab)"]
    assert w.generation.stop_button.shortcut().toString(native) == keys["Stop generating"]
    assert w.attention.compute_button.shortcut().toString(native) == keys["Compute (Attention tab)"]


def test_the_tab_shortcuts_put_the_keyboard_in_the_pages_text_box(qtbot, window, workspace):
    """Ctrl+4 then typing wrote nothing into the prompt: the keyboard stayed on the tab bar (Tab led to the
    checkpoint list, whose popup a space opened). Ctrl+4 focuses the prompt, Ctrl+5 the attention text."""
    from PySide6.QtWidgets import QMenu

    w = window(workspace.root)
    actions = {a.shortcut().toString(): a for menu in w.menuBar().findChildren(QMenu) for a in menu.actions()}
    w.tabs.tabBar().setFocus()
    actions["Ctrl+4"].trigger()
    assert w.tabs.currentWidget() is w.generation and w.focusWidget() is w.generation.prompt
    qtbot.keyClicks(w.focusWidget(), "add: 12+")
    assert w.generation.prompt.toPlainText() == "add: 12+"
    actions["Ctrl+5"].trigger()
    assert w.tabs.currentWidget() is w.attention and w.focusWidget() is w.attention.text
    actions["Ctrl+3"].trigger()  # a page without a text box keeps the focus where it was
    assert w.tabs.currentWidget() is w.training
