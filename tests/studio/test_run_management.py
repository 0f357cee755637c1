"""Run management: annotations, rename, trash, compare table (Qt-free), and the same driven through the
runs list's right-click menu, filter and dialogs of a real main window."""

from __future__ import annotations

import csv
import json
import math
import os

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QDialogButtonBox

from core import layout
from core.config_text import apply_changes
from studio.main_window import MainWindow
from studio.views.runs import dialogs
from studio.workspace import annotations
from studio.workspace.compare import compare_runs
from studio.workspace.run import Run
from studio.workspace.trash import move_to_trash
from studio.workspace.workspace import with_changes
from tests.studio.helpers import open_window, write_data_dir, write_finished_run


# ---------------------------------------------------------------------- Qt-free
def test_notes_and_tags_live_in_studio_json_beside_the_lineage(workspace):
    run = workspace.run("tiny")
    lineage = run.lineage()
    annotations.annotate(run.dir, notes="first try", tags=annotations.parse_tags(" base line, lr,lr ,"))
    assert annotations.notes(run.dir) == "first try" and annotations.tags(run.dir) == ["base-line", "lr"]
    annotations.annotate(run.dir, tags=[])
    data = layout.read_json(run.path(layout.STUDIO_JSON))
    assert data["notes"] == "first try" and data["tags"] == [] and data["kind"] == lineage["kind"]


def test_rename_validates_and_repoints_the_runs_made_from_it(workspace):
    parent = workspace.run("tiny")
    write_finished_run(parent.dir, steps=100)
    child = workspace.fork_run(parent, parent.checkpoints()[-1].path, {"train.max_steps": 300})
    assert annotations.name_problem(workspace.runs_dir, "tiny", "a b") is not None
    assert annotations.name_problem(workspace.runs_dir, "tiny", child.name) is not None
    with pytest.raises(ValueError):
        annotations.rename_run(parent, "../escape")
    new = annotations.rename_run(parent, "baseline")
    assert not os.path.exists(parent.dir) and new.checkpoints()
    assert Run(child.dir).parent_dir() == new.dir
    assert Run(child.dir).config().train.init_from == new.checkpoints()[-1].path


def test_move_to_trash_follows_the_freedesktop_layout(tmp_path):
    folder = tmp_path / "runs" / "old"
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text("x")
    trash = tmp_path / "Trash"
    first = move_to_trash(str(folder), str(trash))
    folder.mkdir()
    second = move_to_trash(str(folder), str(trash))
    assert first == str(trash / "files" / "old") and second == str(trash / "files" / "old.2")
    assert (trash / "files" / "old" / "config.yaml").read_text() == "x" and not folder.exists()
    info = (trash / "info" / "old.trashinfo").read_text().splitlines()
    assert info[0] == "[Trash Info]" and info[1] == f"Path={folder}" and info[2].startswith("DeletionDate=")


def test_compare_table_of_known_runs(workspace):
    a = workspace.run("tiny")
    b = workspace.create_run("b", with_changes(a.read_config_text(), {"train.lr": 1e-3}))
    write_finished_run(a.dir, steps=100)
    write_finished_run(b.dir, steps=40, status="stopped")
    table = compare_runs([(r, r.load_history(), r.status()) for r in (a, b)])
    row = {r[0]: dict(zip(table.columns, r, strict=True)) for r in table.rows}
    assert row["tiny"]["step"] == 100 and row["b"]["step"] == 40 and row["b"]["status"] == "stopped"
    assert row["tiny"]["train.lr"] == pytest.approx(3e-3) and row["b"]["train.lr"] == pytest.approx(1e-3)
    expected_final = 3.0 * math.exp(-100 / 40) + 1.0
    assert row["tiny"]["final_train_loss"] == pytest.approx(expected_final)
    assert row["tiny"]["final_val_loss"] == pytest.approx(expected_final + 0.1)
    assert "run.dir" not in table.columns and "model.n_layer" in table.columns
    diff = table.differences_only()
    assert "train.lr" in diff.columns and "model.n_layer" not in diff.columns and diff.columns[0] == "run"
    path = workspace.root + "/cmp.csv"
    diff.write_csv(path)
    with open(path, encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == diff.columns and [r[0] for r in rows[1:]] == ["tiny", "b"]
    assert rows[1][diff.columns.index("step")] == "100"


# ---------------------------------------------------------------------- through the window
@pytest.fixture
def window(qtbot, workspace, tmp_path):
    w = open_window(qtbot, workspace.root, close_policy="stop")
    w.run_actions.trash = str(tmp_path / "Trash")
    return w


def _menu_action(w: MainWindow, run_dir: str, text: str):
    menu = w.runs_panel.context_menu(run_dir)
    return next(a for a in menu.actions() if a.text().startswith(text))


def _names(w: MainWindow) -> list[str]:
    tree = w.runs_panel.tree
    out = []

    def visit(item):
        out.append(item.data(0, Qt.ItemDataRole.UserRole).rsplit(os.sep, 1)[-1])
        for i in range(item.childCount()):
            visit(item.child(i))

    for i in range(tree.topLevelItemCount()):
        visit(tree.topLevelItem(i))
    return out


def test_rename_delete_and_tags_from_the_right_click_menu(qtbot, window, workspace, monkeypatch, tmp_path):
    w = window
    other = workspace.create_run("other", workspace.run("tiny").read_config_text())
    write_finished_run(other.dir, steps=30, status="stopped")
    w.session.refresh()
    tiny = workspace.run("tiny").dir
    w.runs_panel.select_run(tiny)
    asked = []  # a refused name is asked again with the reason and a usable variant; Cancel changes nothing

    def answer(replies):
        return lambda _p, _n, text="", problem="": asked.append((text, problem)) or replies.pop(0)
    monkeypatch.setattr(dialogs, "ask_rename", answer(["my first/run", "other", None]))
    _menu_action(w, tiny, "Rename").trigger()
    assert asked[0] == ("tiny", "") and asked[1][0] == "my-first-run" and "not a usable run name" in asked[1][1]
    assert asked[2] == ("other", "a run named 'other' already exists") and os.path.isdir(tiny)
    # the prompt history names the run's checkpoints (a generation, a chat) and another run's: its own follow
    history = w.generation.session.history
    history.add("hi", {}, [{"checkpoint": os.path.join(tiny, "checkpoints", "step-000030"), "text": "x"},
                           {"checkpoint": os.path.join(other.dir, "checkpoints", "step-000030"), "text": "y"}])
    history.put({"kind": "chat", "id": "c1", "prompt": "yo", "checkpoint": os.path.join(tiny, "checkpoints",
                                                                                       "step-000030")})
    history.add("odd", {}, [{"checkpoint": "relative/step-000001"}, {"checkpoint": ""}])
    monkeypatch.setattr(dialogs, "ask_rename", answer(["bad name!", "baseline"]))
    _menu_action(w, tiny, "Rename").trigger()
    renamed = os.path.join(workspace.runs_dir, "baseline")
    assert os.path.isdir(renamed) and not os.path.exists(tiny)
    saved = json.load(open(history.path, encoding="utf-8"))["entries"]
    assert [o["checkpoint"] for o in saved[0]["outputs"]] == ["relative/step-000001", ""]  # left alone
    saved = saved[1:]
    assert saved[0]["checkpoint"] == os.path.join(renamed, "checkpoints", "step-000030")
    assert [o["checkpoint"] for o in saved[1]["outputs"]] == [
        os.path.join(renamed, "checkpoints", "step-000030"), os.path.join(other.dir, "checkpoints", "step-000030")]
    shown = [w.generation.history_list.item(i).text() for i in range(w.generation.history_list.count())]
    assert "baseline · step 30" in shown[1] and "baseline · step 30, other · step 30" in shown[2], shown
    assert w.current_dir == renamed and w.controller().run.name == "baseline" and "baseline" in _names(w)
    monkeypatch.setattr(dialogs, "ask_notes", lambda *_a: ("lr 3e-3 baseline", "base, sweep"))
    _menu_action(w, renamed, "Notes and tags").trigger()
    assert annotations.tags(renamed) == ["base", "sweep"]
    item = w.runs_panel._items[renamed]
    assert "#base" in item.text(0)  # and the name column grew with the tags: nothing elided
    assert w.runs_panel.tree.columnWidth(0) >= w.runs_panel.tree.fontMetrics().horizontalAdvance(item.text(0))
    assert "lr 3e-3 baseline" in w.runs_panel._items[renamed].toolTip(0)
    # filter by tag, by name, by status
    qtbot.keyClicks(w.runs_panel.filter_edit, "#swe")
    assert w.runs_panel.visible_runs() == [renamed]
    w.runs_panel.filter_edit.setText("oth")
    assert w.runs_panel.visible_runs() == [other.dir]
    w.runs_panel.filter_edit.clear()
    w.runs_panel.status_filter.setCurrentIndex(w.runs_panel.status_filter.findData("stopped"))
    assert w.runs_panel.visible_runs() == [other.dir]
    w.runs_panel.status_filter.setCurrentIndex(0)
    # delete: refused without confirmation, then to the trash, and the selection moves on
    asked = []
    monkeypatch.setattr(dialogs, "confirm_delete", lambda _p, name, children, *_: asked.append((name, children)))
    _menu_action(w, renamed, "Move to Trash").trigger()
    assert os.path.isdir(renamed)
    assert asked == [("baseline", [])]
    monkeypatch.setattr(dialogs, "confirm_delete", lambda _p, _n, _c, *_: True)
    _menu_action(w, renamed, "Move to Trash").trigger()
    assert not os.path.exists(renamed) and os.path.isdir(tmp_path / "Trash" / "files" / "baseline")
    assert _names(w) == ["other"] and w.current_dir == other.dir and w.controller().run.name == "other"
    w.copy_run(other.dir)  # the confirmation names the runs made from the one going
    monkeypatch.setattr(dialogs, "confirm_delete", lambda _p, name, children, *_: asked.append((name, children)))
    _menu_action(w, other.dir, "Move to Trash").trigger()
    assert asked[-1] == ("other", ["other-2"]) and os.path.isdir(other.dir)


def test_a_running_run_cannot_be_renamed_or_deleted(qtbot, window, workspace, fake_engine, monkeypatch):
    fake_engine("normal", hold_at=3)
    w = window
    tiny = workspace.run("tiny").dir
    w.runs_panel.select_run(tiny)
    assert w.start_training()
    qtbot.waitUntil(lambda: w.controller().history.step >= 3, timeout=15000)
    assert not _menu_action(w, tiny, "Rename").isEnabled()
    assert not _menu_action(w, tiny, "Move to Trash").isEnabled()
    assert w.session.rename_run(tiny, "x")[0] is None and "stop it" in w.session.rename_run(tiny, "x")[1]
    assert "stop it" in w.session.delete_run(tiny)
    # F2 and the Run menu: said at once, nothing asked (a name was asked for, then refused)
    monkeypatch.setattr(dialogs, "ask_rename", lambda *_a: pytest.fail("asked for a name"))
    monkeypatch.setattr(dialogs, "confirm_delete", lambda *_a: pytest.fail("asked to confirm"))
    assert w.run_actions.rename(tiny) is None and "while it trains: stop it first" in w.statusBar().currentMessage()
    assert not w.run_actions.delete(tiny) and "trash while it trains" in w.statusBar().currentMessage()
    with qtbot.waitSignal(w.controller().run_finished, timeout=15000):
        w.stop_training()
    assert os.path.isdir(tiny)


def test_new_runs_and_forks_get_sensible_names(window, workspace):
    w = window
    w.new_run()
    assert w.controller().run.name == "demo-1"  # named after its data set
    w.new_run()
    assert w.controller().run.name == "demo-2"
    w.copy_run(workspace.run("tiny").dir)
    assert w.controller().run.name == "tiny-2"
    write_finished_run(workspace.run("tiny").dir, steps=100)
    assert w.session.fork_defaults(workspace.run("tiny").dir)[2] == "tiny-from-100"
    workspace.create_run("tiny-from-100", workspace.run("tiny").read_config_text())
    # a second fork from the same step: not "tiny-from-101", which would name another step
    assert w.session.fork_defaults(workspace.run("tiny").dir)[2] == "tiny-from-100-2"


def test_a_new_run_trains_on_the_data_set_prepared_last(window, workspace):
    """Prepare a data set, press New: the run uses that set (not the first by name), and the demo corpus's
    attention probe is not copied onto other data; instruction data sets are left to fine-tuning."""
    demo_meta = os.path.join(workspace.data_dir, "demo", layout.DATA_META)
    os.utime(demo_meta, (1_000_000_000, 1_000_000_000))  # prepared long ago
    write_data_dir(os.path.join(workspace.data_dir, "shakespeare"))
    write_data_dir(os.path.join(workspace.data_dir, "answers"), kind="sft")  # newest, but needs a base
    os.utime(os.path.join(workspace.data_dir, "shakespeare", layout.DATA_META), (2_000_000_000, 2_000_000_000))
    os.utime(os.path.join(workspace.data_dir, "answers", layout.DATA_META), (2_000_000_100, 2_000_000_100))
    w = window
    w.new_run()
    run = w.controller().run
    assert run.name == "shakespeare-1" and run.config().data.dir == os.path.join(workspace.data_dir, "shakespeare")
    assert "attention_probe" not in run.read_config_text()
    os.utime(demo_meta, (2_000_000_200, 2_000_000_200))  # the demo data prepared again: the newest plain set
    w.new_run()
    assert w.controller().run.name == "demo-1" and "attention_probe" in w.controller().run.read_config_text()


def test_compare_view_sorts_toggles_and_exports(qtbot, window, workspace, tmp_path):
    w = window
    a = workspace.run("tiny")
    b = workspace.create_run("b", with_changes(a.read_config_text(), {"train.lr": 1e-3}))
    write_finished_run(a.dir, steps=100)
    write_finished_run(b.dir, steps=40, status="stopped")
    w.session.refresh()
    w.session.controller(a.dir).reload()  # finished after the window read it
    assert _menu_action(w, a.dir, "Compare (tick runs")  # nothing ticked: the run alone
    w.runs_panel.set_compared(b.dir, True)  # ticked to overlay on tiny: Compare on tiny takes both
    w.runs_panel.select_run(a.dir)  # the Run menu's Compare takes the selected run and the ticked ones too
    assert w.runs_panel.compare_targets(w.current_dir) == [a.dir, b.dir]
    _menu_action(w, a.dir, "Compare 2").trigger()
    view = w.run_actions.compare_view
    qtbot.addWidget(view)
    assert view.table.rowCount() == 2 and "model.n_layer" in view.shown.columns
    view.sort_by("step")
    assert view.column_values("run") == ["b", "tiny"]
    view.sort_by("step", descending=True)
    assert view.column_values("run") == ["tiny", "b"]
    # b trains on while the table is open: its new figures come in, in the same order (most steps first)
    write_finished_run(b.dir, steps=150)
    w.session.controller(b.dir).reload()
    w.session.run_updated.emit(b.dir)
    assert view.column_values("run") == ["b", "tiny"] and view.column_values("step")[0] == "150"
    view.diff_check.click()
    assert "model.n_layer" not in view.shown.columns and "train.lr" in view.shown.columns
    assert view.table.columnCount() == len(view.shown.columns)
    path = str(tmp_path / "cmp.csv")
    view.export_requested.emit(path)
    with open(path, encoding="utf-8") as fh:
        header = next(csv.reader(fh))
    assert header == view.shown.columns
    view.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Close).click()
    assert not view.isVisible()


def test_continue_a_finished_run_for_more_steps(qtbot, window, workspace, fake_engine, monkeypatch):
    fake_engine("normal")
    w = window
    tiny = workspace.run("tiny")
    w.runs_panel.select_run(tiny.dir)
    ctl = w.controller()
    assert not _menu_action(w, tiny.dir, "Continue").isEnabled()  # a new run has nothing to continue
    with qtbot.waitSignal(ctl.run_finished, timeout=20000):
        assert w.start_training()
    assert ctl.status == "done" and ctl.history.step == 200
    monkeypatch.setattr(dialogs, "ask_more_steps", lambda _p, _n, current: 50 if current == 200 else None)
    action = _menu_action(w, tiny.dir, "Continue")
    assert action.isEnabled()
    # an edit still waiting for the autosave is kept, and the editor then shows the raised max_steps
    w.config_editor.set_text(w.config_editor.text().replace("lr: 3.0e-3", "lr: 4.0e-3"))
    assert w._autosave.isActive() and "lr: 4.0e-3" not in tiny.read_config_text()
    with qtbot.waitSignal(ctl.run_finished, timeout=20000) as blocker:
        action.trigger()
    assert blocker.args[0] == "done" and ctl.history.step == 250
    assert tiny.config().train.max_steps == 250 and "max_steps: 250" in tiny.read_config_text()
    assert "warmup_steps: 10" in tiny.read_config_text() and "lr: 4.0e-3" in tiny.read_config_text()
    # the schedule starts over at step 200: its decay was over, so with a fresh warm-up (restart_lr empty)
    train = tiny.config().train
    assert (train.restart_step, train.restart_lr) == (200, None)
    copy = w.session.copy_run(tiny.dir)  # a fresh run from step 0: the parent's second stretch is not its own
    assert "restart" not in copy.read_config_text() and copy.config().train.max_steps == 250
    assert w.config_editor.text() == tiny.read_config_text()

    # a run that ended at its train.target_val_loss: continued with it, it ended again at its first
    # evaluation (25 of 87 more steps); the target is cleared, and the status bar says so
    best = ctl.history.best_val_loss
    w.config_editor.set_text(apply_changes(w.config_editor.text(), {"train.target_val_loss": round(best + 1e-4, 4)}))
    w.save_config()
    assert tiny.config().train.target_val_loss == round(best + 1e-4, 4) >= best
    monkeypatch.setattr(dialogs, "ask_more_steps", lambda _p, _n, current: 20)
    said = []
    w.statusBar().messageChanged.connect(said.append)
    with qtbot.waitSignal(ctl.run_finished, timeout=20000):
        action.trigger()
    target = f"train.target_val_loss {round(best + 1e-4, 4):g}, already reached, is cleared"
    assert any(target in m for m in said), said
    assert tiny.config().train.target_val_loss is None and ctl.history.step == 270


def test_a_fork_past_its_parents_target_val_loss_drops_it_one_before_keeps_it(qtbot, workspace):
    """A fork from a checkpoint whose validation loss had reached train.target_val_loss ended at its first
    evaluation; from an earlier checkpoint the target stays (the time to reach it is what forks compare)."""
    parent = workspace.run("tiny")
    parent.write_config_text(apply_changes(parent.read_config_text(), {"train.target_val_loss": 1.5}))
    write_finished_run(parent.dir, steps=100, eval_every=10, ckpt_every=50)  # val loss 1.5 reached at step 90
    w = open_window(qtbot, workspace.root)
    early, late = (c.path for c in parent.checkpoints())
    kept = w.session.fork_run(parent.dir, early, {"train.max_steps": 300}, "from-50")
    cleared = w.session.fork_run(parent.dir, late, {"train.max_steps": 300}, "from-100")
    assert kept.config().train.target_val_loss == 1.5 and cleared.config().train.target_val_loss is None
    asked = w.session.fork_run(parent.dir, late, {"train.target_val_loss": 1.2}, "from-100-lower")
    assert asked.config().train.target_val_loss == 1.2  # a target of the fork's own stays

    def accept_the_fork_dialog():  # Fork from Checkpoint…: the newest checkpoint, the dialog's defaults
        dialog = QApplication.activeModalWidget()
        dialog.name.setText("from-the-dialog")
        dialog.accept()

    said = []
    w.statusBar().messageChanged.connect(said.append)
    QTimer.singleShot(0, accept_the_fork_dialog)
    w.fork_run(parent.dir)  # modal: returns once the dialog was accepted
    assert workspace.run("from-the-dialog").config().train.target_val_loss is None
    assert any("train.target_val_loss 1.5, already reached there, is cleared" in m for m in said), said


def test_a_notification_when_a_run_ends_in_the_background(qtbot, window, workspace, fake_engine):
    fake_engine("normal")
    w = window
    w.runs_panel.select_run(workspace.run("tiny").dir)
    ctl = w.controller()
    w.isActiveWindow = lambda: False  # the user switched to another window (offscreen has no focus)
    assert w.notifier.in_background()
    with qtbot.waitSignal(ctl.run_finished, timeout=20000):
        assert w.start_training()
    assert len(w.notifier.sent) == 1
    title, message, how = w.notifier.sent[0]
    assert title == "tiny finished" and how in ("tray", "alert") and message
    w.isActiveWindow = lambda: True  # looking at the window: the status bar says it, no notification
    assert not w.notifier.in_background()
    w.session.run_finished.emit(ctl.run.dir, "failed", "boom")
    assert len(w.notifier.sent) == 1
    w.isActiveWindow = lambda: False
    w.session.run_finished.emit(ctl.run.dir, "failed", "loss became nan")
    assert w.notifier.sent[-1][:2] == ("tiny failed", "loss became nan")


def test_the_preset_box_follows_the_selected_run(window, workspace):
    from studio.views.config.yaml_tab import list_presets
    from studio.workspace.presets import matching_preset

    presets = list_presets()
    with open(presets["small-gpu"], encoding="utf-8") as fh:
        small = fh.read()
    tuned = with_changes(small, {"train.lr": 1e-4, "train.max_steps": 50})
    assert matching_preset(tuned, presets) == "small-gpu"
    assert matching_preset(with_changes(small, {"model.n_layer": 3}), presets) is None
    assert matching_preset("not: [yaml", presets) is None
    w = window
    a = workspace.create_run("from-small", tuned)
    w.session.refresh()
    w.runs_panel.select_run(a.dir)
    assert w.config_editor.preset_combo.currentText() == "small-gpu"
    w.runs_panel.select_run(workspace.run("tiny").dir)  # its own 32-wide, 32-token model: no preset
    assert w.config_editor.preset_combo.currentIndex() == 0


def test_right_click_opens_the_run_menu_on_the_clicked_run(window, workspace, monkeypatch):
    w = window
    other = workspace.create_run("other", workspace.run("tiny").read_config_text())
    w.session.refresh()
    shown = []
    monkeypatch.setattr(w.runs_panel, "popup", lambda menu, _at: shown.append([a.text() for a in menu.actions()]))
    tree = w.runs_panel.tree
    item = w.runs_panel._items[other.dir]
    tree.customContextMenuRequested.emit(tree.visualItemRect(item).center())
    assert w.current_dir == other.dir  # the clicked run becomes the selected one
    assert shown and {"Rename…", "Move to Trash…", "Notes and tags…", "New from this"} <= set(shown[0])


def test_an_empty_workspace_shows_no_other_workspaces_run(qtbot, window, workspace, tmp_path):
    """File > New Workspace kept the last workspace's run on screen (its curves, console and config, the
    Training tab titled with its name) beside an empty runs list."""
    from studio.workspace.workspace import Workspace

    w = window
    tiny = workspace.run("tiny").dir
    write_finished_run(tiny, steps=30)
    w.session.refresh()
    w.runs_panel.select_run(tiny)
    assert w.training.controller is not None and "tiny" in w.run_label.text()
    empty = Workspace.create(str(tmp_path / "empty"))
    w.open_workspace(empty.root)
    assert w.current_dir is None and w.training.controller is None and w.run_label.text() == ""
    assert w.config_editor.text() == "" and "No run in this workspace" in w.config_editor.lock_label.text()
    assert not w.config_editor.lock_label.isHidden() and w.training.plots.history is None
    editor = w.config_editor  # no form, estimates or "✔ valid" of a default config nobody would train
    assert not editor.tabs.isVisibleTo(editor) and not editor.estimates.isVisibleTo(editor)
    assert not editor.status.isVisibleTo(editor)
    assert w.training.progress.text() == ""  # no "0 / 1 steps"
    w.open_workspace(workspace.root)  # back: its run is shown and editable again
    assert w.controller().run.dir == tiny and w.config_editor.lock_label.isHidden()
    assert editor.tabs.isVisibleTo(editor) and editor.estimates.isVisibleTo(editor)
    from studio.main_window import MainWindow
    from studio.settings import Settings

    late = MainWindow(Settings())  # the studio's start: the workspace opens before the panels are built
    qtbot.addWidget(late)
    late.open_workspace(empty.root)
    late.show()
    late.ensure_panels()
    assert late.config_editor.text() == "" and "No run in this workspace" in late.config_editor.lock_label.text()


def test_a_long_run_name_is_elided_in_the_middle_not_pushing_the_columns_away(qtbot, window, workspace):
    """A run renamed to a long name: status, step and best loss stay in view (the name column no longer
    grows past what the list shows; the name is elided in the middle, its tooltip keeps the folder); with
    room enough (a wider list) the name is shown in full again."""
    w = window
    tiny = workspace.run("tiny")
    new_dir, why = w.session.rename_run(tiny.dir, "tiny-from-1000-going-on-at-the-final-rate-for-longer")
    assert new_dir, why
    tree = w.runs_panel.tree
    w.splitter.setSizes([200, w.width() - 200])
    qtbot.wait(50)  # the list at its narrowest (the panel's minimum width)
    header = tree.header()
    right = header.sectionPosition(3) + header.sectionSize(3)  # the Best column's right edge
    assert right <= tree.viewport().width() and header.offset() == 0  # nothing scrolled out of sight
    item = tree.topLevelItem(0)
    assert tree.columnWidth(0) < tree.fontMetrics().horizontalAdvance(item.text(0))  # elided, not widened
    assert tree.textElideMode() == Qt.TextElideMode.ElideMiddle
    w.splitter.setSizes([900, w.width() - 900])
    qtbot.waitUntil(lambda: tree.columnWidth(0) >= tree.fontMetrics().horizontalAdvance(item.text(0)), timeout=3000)


def test_runs_made_or_removed_outside_the_studio_come_and_go_in_the_list(qtbot, window, workspace, tmp_path):
    """A run restored from the desktop's trash (or made by `llm-train` in a shell, or copied in) did not appear
    until the workspace was opened again, and one deleted in a file manager stayed listed. runs/ is followed:
    the list follows it, and a shown run that went away gives way to its neighbour without its config being
    written back (which would make the folder again)."""
    w = window
    tiny = workspace.run("tiny").dir
    outside = workspace.create_run("from-shell", workspace.run("tiny").read_config_text())  # not via the session
    qtbot.waitUntil(lambda: "from-shell" in _names(w), timeout=5000)
    assert w.session.controller(outside.dir) is not None
    w.runs_panel.select_run(outside.dir)
    assert w.current_dir == outside.dir
    w.config_editor.form.editors["model.n_layer"].input.setValue(3)  # an edit pending autosave
    moved = str(tmp_path / "elsewhere")
    os.rename(outside.dir, moved)
    qtbot.waitUntil(lambda: "from-shell" not in _names(w), timeout=5000)
    assert w.current_dir == tiny and w.controller().run.name == "tiny"
    assert "from-shell was moved or deleted outside the studio" in w.statusBar().currentMessage()
    w.save_config()
    qtbot.wait(1200)  # past the autosave delay
    assert not os.path.exists(outside.dir) and _names(w) == ["tiny"]
    os.rename(moved, outside.dir)  # restored (from the trash, say): listed again, the shown run stays
    qtbot.waitUntil(lambda: "from-shell" in _names(w), timeout=5000)
    assert w.current_dir == tiny


def test_the_comparison_table_reads_like_the_runs_list_and_sorts_by_the_figures(qtbot, workspace, tmp_path):
    """The table showed raw figures: tokens 1024000, elapsed_s 82.5506, losses to six digits, and a run that
    never trained had elapsed_s 0 and a blank best_val_step beside '–'. The CSV keeps the figures."""
    from studio.views.runs.compare import CompareView
    from studio.workspace.compare import compare_runs
    from studio.workspace.metrics import RunHistory

    done = workspace.create_run("done", workspace.run("tiny").read_config_text())
    write_finished_run(done.dir, steps=1000)  # 256 tokens a step at 20,000 tokens/s, 50 ms a step by its clock
    tiny = workspace.run("tiny")
    view = CompareView(compare_runs([(tiny, RunHistory(), "new"), (done, done.load_history(), "done")]))
    qtbot.addWidget(view)
    view.sort_by("tokens", descending=True)
    assert view.column_values("run") == ["done", "tiny"]
    assert view.column_values("tokens") == ["256,000", "0"] and view.column_values("tokens_per_s") == ["20,000", "–"]
    assert view.column_values("elapsed_s") == ["50s", "–"] and view.column_values("best_val_step") == ["1000", "–"]
    assert view.column_values("final_val_loss")[0] == f"{3.0 * math.exp(-1000 / 40) + 1.1:.4f}"
    path = str(tmp_path / "cmp.csv")
    view.full.write_csv(path)
    with open(path, encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[2][rows[0].index("tokens")] == "256000"  # figures, for a spreadsheet
