"""Issue 9, work lost or blocked: config edits survive switching runs and restarting; a fork's default
trains beyond its checkpoint; a run refused during set-up can be edited and started again; the Start,
Stop and Resume buttons keep their places; banners are readable in both themes."""

from __future__ import annotations

import os

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QApplication, QDialogButtonBox

from studio.workspace.workspace import with_changes
from tests.studio.helpers import select_run, write_finished_run


def test_a_config_edit_survives_switching_runs_and_restarting(qtbot, window, workspace):
    w = window(workspace.root)
    select_run(w, "tiny")
    w.new_run()  # Run -> New Run (Ctrl+N)
    new_dir = w.current_dir
    assert os.path.basename(new_dir) != "tiny" and w.tabs.currentWidget() is w.config_editor
    box = w.config_editor.form.editors["train.max_steps"].input
    box.setValue(777)
    select_run(w, "tiny")  # click another run ...
    w.runs_panel.select_run(new_dir)  # ... and back
    assert w.config_editor.form.editors["train.max_steps"].input.value() == 777
    with open(os.path.join(new_dir, "config.yaml"), encoding="utf-8") as fh:
        assert "max_steps: 777" in fh.read()
    # an edit followed by closing the studio at once (no switch) is kept too, and comments survive
    w.config_editor.set_text("# my note\n" + w.config_editor.text().replace("max_steps: 777", "max_steps: 778"))
    w.close()
    w2 = window(workspace.root)
    assert w2.current_dir == new_dir
    assert w2.config_editor.form.editors["train.max_steps"].input.value() == 778
    assert w2.config_editor.text().startswith("# my note\n")


def test_typing_in_the_yaml_is_saved_after_a_pause(qtbot, window, workspace):
    w = window(workspace.root)
    select_run(w, "tiny")
    path = os.path.join(workspace.run("tiny").dir, "config.yaml")
    w.config_editor.yaml_edit.setPlainText(w.config_editor.text().replace("max_steps: 200", "max_steps: 321"))
    qtbot.waitUntil(lambda: "max_steps: 321" in open(path, encoding="utf-8").read(), timeout=5000)


def _drive_fork_dialog(qtbot, seen: dict, first_until: int | None = None) -> None:
    from studio.views.runs.fork_dialog import ForkDialog

    dialog = QApplication.activeModalWidget()
    assert isinstance(dialog, ForkDialog)
    seen["default"] = dialog.max_steps.value()
    ok = dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok)
    if first_until is not None:  # a dead end is refused in the dialog, with the engine's words
        dialog.max_steps.setValue(first_until)
        qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)
        seen["refused"] = dialog.isVisible() and dialog.problem.isVisible()
        seen["message"] = dialog.problem.text()
        dialog.max_steps.setValue(seen["default"])
    qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)


def test_fork_defaults_beyond_the_checkpoint_and_refuses_a_dead_end(qtbot, window, workspace):
    parent = workspace.run("tiny")
    write_finished_run(parent.dir, steps=100, status="done")  # checkpoints at 50 and 100, planned 200
    w = window(workspace.root)
    select_run(w, "tiny")
    seen: dict = {}
    QTimer.singleShot(0, lambda: _drive_fork_dialog(qtbot, seen, first_until=100))
    w.fork_run(parent.dir)
    assert seen["refused"] and "not beyond the checkpoint's step 100" in seen["message"]
    assert seen["default"] > 100
    child = w.controller().run
    assert child.dir != parent.dir and child.config().train.max_steps == seen["default"]
    assert w.training.start_button.isEnabled() and w.start_action.isEnabled()


def test_start_blockers_check_the_checkpoint_step_before_launching(qtbot, window, workspace):
    parent = workspace.run("tiny")
    write_finished_run(parent.dir, steps=100, status="done")
    w = window(workspace.root)
    child = w.session.fork_run(parent.dir, parent.checkpoints()[-1].path, {"train.max_steps": 100}, "kid")
    w.runs_panel.select_run(child.dir)
    assert not w.training.start_button.isEnabled()
    assert "not beyond the checkpoint's step 100" in w.training.blocker_label.text()
    w.config_editor.form.editors["train.max_steps"].input.setValue(300)
    qtbot.waitUntil(w.training.start_button.isEnabled, timeout=3000)


def test_a_fine_tune_starts_at_step_0_whatever_its_base_checkpoints_step(qtbot, window, workspace):
    """The fork rule (train beyond the checkpoint's step) is not a fine-tune's: the engine starts full and
    LoRA fine-tunes at step 0, so 100 steps on a step-100 base are fine."""
    from studio.controllers.timing import time_estimate

    parent = workspace.run("tiny")
    write_finished_run(parent.dir, steps=100, status="done")
    w = window(workspace.root)
    child = w.session.fork_run(parent.dir, parent.checkpoints()[-1].path,
                               {"train.max_steps": 100, "train.finetune": "lora"}, "tuned")
    w.runs_panel.select_run(child.dir)
    qtbot.waitUntil(w.training.start_button.isEnabled, timeout=3000)
    assert "not beyond" not in w.training.blocker_label.text()
    timing = time_estimate(child.config(), {"flops_per_step": 1e9}, {"flops_per_s": 1e9, "run": "x", "step_s": 1})
    assert timing["steps"] == 100


def test_the_time_estimate_of_a_stopped_run_counts_only_the_steps_left(qtbot, window, workspace):
    tiny = workspace.run("tiny")  # max_steps 200
    write_finished_run(tiny.dir, steps=120, status="stopped")
    w = window(workspace.root)
    select_run(w, "tiny")
    names = w.config_editor.estimates.timing_names
    qtbot.waitUntil(lambda: names["total"].text() == "Training, 80 steps from 120", timeout=3000)
    done = workspace.create_run("done", tiny.read_config_text())
    write_finished_run(done.dir, steps=200)  # finished: nothing left to estimate (it read "0 steps from 200")
    w.session.refresh()
    select_run(w, "done")
    qtbot.waitUntil(lambda: names["total"].text() == "Training: max_steps (200) reached", timeout=3000)
    assert w.config_editor.estimates.timing["total"].text() == "—"
    w.new_run()  # a new run has trained nothing: all its steps are estimated
    steps = w.config_editor.config().train.max_steps
    qtbot.waitUntil(lambda: names["total"].text() == f"Training, {steps:,} steps", timeout=3000)


def test_a_run_refused_during_set_up_can_be_edited_and_started_again(qtbot, window, workspace, fake_engine):
    fake_engine("setup")
    w = window(workspace.root)
    select_run(w, "tiny")
    ctl = w.controller()
    with qtbot.waitSignal(ctl.run_finished, timeout=15000) as blocker:
        qtbot.mouseClick(w.training.start_button, Qt.MouseButton.LeftButton)
    assert blocker.args[0] == "failed" and w.training.error_banner.isVisible()
    w.config_editor.form.editors["train.max_steps"].input.setValue(150)  # raise max_steps
    qtbot.waitUntil(w.training.start_button.isEnabled, timeout=3000)
    assert w.start_action.isEnabled()
    fake_engine("normal")
    with qtbot.waitSignal(ctl.run_finished, timeout=20000) as blocker:
        qtbot.mouseClick(w.training.start_button, Qt.MouseButton.LeftButton)
    assert blocker.args[0] == "done" and ctl.history.step == 150


def test_start_stop_resume_keep_their_places(qtbot, window, workspace):
    done = workspace.create_run("done", workspace.run("tiny").read_config_text())
    write_finished_run(done.dir, status="stopped")
    w = window(workspace.root)
    t = w.training
    places = []
    for name in ("tiny", "done"):
        select_run(w, name)
        places.append([(b.isVisible(), b.geometry().topLeft()) for b in (t.start_button, t.stop_button,
                                                                          t.resume_button)])
    assert places[0] == places[1] and all(visible for visible, _ in places[0])
    assert not t.start_button.isEnabled() and t.resume_button.isEnabled()


def _contrast(fg: QColor, bg: QColor) -> float:
    def lum(c: QColor) -> float:
        ch = [v / 255 for v in (c.red(), c.green(), c.blue())]
        ch = [v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4 for v in ch]
        return 0.2126 * ch[0] + 0.7152 * ch[1] + 0.0722 * ch[2]

    hi, lo = sorted((lum(fg), lum(bg)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_error_banner_is_readable_in_both_themes(qtbot, window, workspace, theme):
    failed = workspace.create_run("bad", workspace.run("tiny").read_config_text())
    write_finished_run(failed.dir, status="failed")
    w = window(workspace.root)
    w.set_theme(theme)
    select_run(w, "bad")
    banner = w.training.error_banner
    assert banner.isVisible()
    image = banner.grab().toImage()
    bg = image.pixelColor(3, banner.height() // 2)
    text = banner.palette().color(banner.foregroundRole())
    assert _contrast(text, bg) >= 4.5, (theme, text.name(), bg.name())
    w.set_theme("light")


def test_config_edits_to_a_run_reach_its_own_file_only(qtbot, window, workspace):
    other = workspace.create_run("other", workspace.run("tiny").read_config_text())
    w = window(workspace.root)
    select_run(w, "tiny")
    w.config_editor.set_text(with_changes(w.config_editor.text(), {"train.lr": 0.0042}))
    select_run(w, "other")
    assert workspace.run("tiny").config().train.lr == 0.0042 and other.config().train.lr != 0.0042


def test_the_fork_dialog_warms_up_again_unless_the_parent_was_at_its_peak_rate(qtbot):
    """A fork's schedule starts over with a fresh warm-up where the parent's decay had begun (that trained
    further than going on from its rate), goes on where the parent was still at its peak rate (the stable
    phase of wsd); the dialog says which and why, and writes it as train.restart_step / restart_lr."""
    from core.config import TrainConfig
    from core.schedule import goes_on, lr_at
    from studio.views.runs.fork_dialog import ForkDialog
    from studio.workspace.metrics import Checkpoint

    t = TrainConfig(max_steps=1000, lr=2e-3, min_lr=2e-4, warmup_steps=50, schedule="wsd", decay_fraction=0.2)
    steps = [20, 500, 900, 1000]
    rates = {s: (lr_at(s, t), goes_on(s, t)) for s in steps}
    dialog = ForkDialog("demo", [Checkpoint(s, f"/ck/step-{s:06d}") for s in steps], t.__dict__, "demo-from-1000",
                        rates)
    qtbot.addWidget(dialog)
    assert dialog.checkpoint_step() == 1000 and dialog.schedule.currentIndex() == dialog.WARM_UP
    assert "falls below where going on" in dialog.why.text()
    assert dialog.changes()["train.restart_lr"] is None and dialog.changes()["train.restart_step"] == 1000
    dialog.schedule.setCurrentIndex(dialog.GO_ON)
    assert "ends worse" in dialog.why.text() and dialog.changes()["train.restart_lr"] == pytest.approx(2e-4)
    dialog.checkpoint.setCurrentIndex(dialog.checkpoint.findText("step 500"))  # the stable phase
    assert dialog.schedule.currentIndex() == dialog.GO_ON and "still at its peak rate" in dialog.why.text()
    assert dialog.changes()["train.restart_lr"] == pytest.approx(2e-3)
    for step in ("step 900", "step 20"):  # decaying; still warming up
        dialog.checkpoint.setCurrentIndex(dialog.checkpoint.findText(step))
        assert dialog.schedule.currentIndex() == dialog.WARM_UP, step


def test_a_run_waiting_for_data_trains_on_the_data_set_prepared_next(qtbot, window, tmp_path):
    """New in a workspace without data makes a run on the demo's data set, which is not there; the first
    data set prepared on the Data tab (the real engine) becomes its data, an edit waiting for the autosave is
    kept, and Start is enabled."""
    from studio.controllers.prepare_request import PrepareRequest
    from studio.workspace.workspace import Workspace

    ws = Workspace.create(str(tmp_path / "empty"))
    w = window(ws.root)
    w.new_run()
    run = w.controller().run
    assert run.name == "demo-1" and not w.training.start_button.isEnabled()  # data/demo was never prepared
    w.config_editor.set_text(w.config_editor.text().replace("max_steps: 1000", "max_steps: 321"))
    assert w._autosave.isActive()
    text = tmp_path / "mine.txt"
    text.write_text("a small corpus of plain words, typed by hand. " * 300, encoding="utf-8")
    with qtbot.waitSignal(w.session.prepare_job.finished, timeout=120000):
        assert w.session.prepare(PrepareRequest((str(text),), os.path.join(ws.data_dir, "mine"), tokenizer="char"))
    cfg = run.config()
    assert cfg.data.dir == os.path.join(ws.data_dir, "mine") and cfg.train.max_steps == 321
    assert "attention_probe" not in run.read_config_text()  # the demo corpus's probe went with the demo data
    assert w.config_editor.text() == run.read_config_text()
    qtbot.waitUntil(w.training.start_button.isEnabled, timeout=5000)
    assert "demo-1 will train on mine" in w.statusBar().currentMessage()
