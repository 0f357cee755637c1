"""DataPanel with its PrepareJob: prepares through the engine (a fake, then the real one), shows data
sets and errors. The panel only asks; the job (wired as the main window wires it) runs the engine."""

from __future__ import annotations

import os
import sys

import pytest
from PySide6.QtCore import QEvent, QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent, QHelpEvent, QTextCursor
from PySide6.QtWidgets import QApplication, QToolTip

from core import layout
from studio.controllers.prepare import PrepareJob
from studio.views.data.panel import DataPanel
from tests.studio.helpers import write_data_dir

FAKE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fake_prepare.py")


@pytest.fixture
def panel(qtbot, tmp_path):
    job = PrepareJob()
    p = DataPanel(job)
    p.prepare_requested.connect(job.start)
    p.cancel_requested.connect(job.cancel)
    qtbot.addWidget(p)
    p.set_workspace(str(tmp_path / "ws"))
    yield p
    job.shutdown()


@pytest.fixture
def fake(monkeypatch):
    monkeypatch.setenv("LLM_STUDIO_ENGINE", f"{sys.executable} {FAKE}")

    def mode(name: str) -> None:
        monkeypatch.setenv("FAKE_PREPARE_MODE", name)

    mode("normal")
    return mode


def test_prepare_with_fake_engine_shows_the_data_set(qtbot, panel, fake, tmp_path):
    panel.add_sources(["@synthetic"])
    panel.name_edit.setText("tiny")
    panel.tokenizer_combo.setCurrentText("char")
    seen = []
    panel.progress.valueChanged.connect(seen.append)
    assert panel.progress.isHidden()  # no '0%' beside an idle Prepare
    with qtbot.waitSignal(panel.job.finished, timeout=15000) as sig:
        qtbot.mouseClick(panel.prepare_button, Qt.MouseButton.LeftButton)
        assert not panel.prepare_button.isEnabled() and panel.cancel_button.isEnabled()
        assert not panel.progress.isHidden()
    out = str(tmp_path / "ws" / "data" / "tiny")
    assert sig.args[0].ok and sig.args[0].out == out
    assert panel.stage_label.text() == "Prepared tiny: 1,000 tokens"
    assert 500 in seen and panel.progress.value() == 1000 and not panel.progress.isHidden()  # progress events
    assert panel.dataset_list.currentItem().text() == "tiny"
    assert panel.detail_values["train"].text() == "900"
    assert panel.detail_values["val"].text() == "100"
    assert panel.detail_values["tokenizer"].text() == "char"
    assert "@synthetic" in panel.detail_values["sources"].text()
    folder = panel.detail_values["folder"]  # in the workspace's words; the whole path on hover
    assert folder.text() == os.path.join("data", "tiny") and folder.toolTip() == out
    # every detail is readable at the 1024-wide window: no value cut inside a word ("@syntheti")
    panel.resize(760, 600)
    panel.show()
    qtbot.waitExposed(panel)
    for key in ("folder", "sources", "tokenizer"):
        label = panel.detail_values[key]
        widest = max(label.fontMetrics().horizontalAdvance(w) for w in label.text().split())
        assert widest <= label.width(), (key, label.text(), label.width())
    assert panel.sample.pieces[:4] == list("copy") and len(panel.sample.ids) == len(panel.sample.pieces)
    assert panel.prepare_button.isEnabled() and not panel.cancel_button.isEnabled()


def test_missing_input_shows_the_engines_message(qtbot, panel, fake):
    panel.add_sources(["/nonexistent/corpus.txt"])
    with qtbot.waitSignal(panel.job.finished, timeout=15000):
        panel.start_prepare()
    assert not panel.error_label.isHidden()
    text = panel.error_label.text()
    assert "input not found: /nonexistent/corpus.txt" in text and "exit code 2 (bad input)" in text
    assert "Traceback" not in text and panel.datasets() == []


def test_crash_shows_the_last_line_not_the_traceback(qtbot, panel, fake):
    fake("crash")
    panel.add_sources(["@synthetic"])
    with qtbot.waitSignal(panel.job.finished, timeout=15000):
        panel.start_prepare()
    text = panel.error_label.text()
    assert "The engine crashed (code 1): RuntimeError: fake engine crashed while encoding" in text
    assert "gathering sources" in text  # the log line before the crash is listed
    assert "Traceback" not in text and "File " not in text


def test_cancel_stops_the_engine(qtbot, panel, fake):
    fake("slow")
    panel.add_sources(["@synthetic"])
    with qtbot.waitSignal(panel.job.progressed, timeout=15000):
        panel.start_prepare()
    with qtbot.waitSignal(panel.job.finished, timeout=15000) as sig:
        qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    assert sig.args[0].status == "cancelled"
    assert panel.stage_label.text() == "Cancelled." and panel.error_label.isHidden() and panel.progress.isHidden()
    assert panel.prepare_button.isEnabled() and not panel.is_busy()


def test_nothing_starts_without_sources(qtbot, panel):
    with qtbot.assertNotEmitted(panel.prepare_requested):
        assert panel.start_prepare() is False
    assert not panel.is_busy() and "Add at least one source" in panel.error_label.text()
    panel.add_sources(["@synthetic"])
    panel.name_edit.setText("no spaces please")
    assert panel.start_prepare() is False and "Name the data set" in panel.error_label.text()


def test_replacing_a_prepared_data_set_asks_first(qtbot, panel, monkeypatch, tmp_path):
    """Prepare with the name of an existing data set replaced it without a word (runs train on it)."""
    panel.prepare_requested.disconnect(panel.job.start)  # what is asked is the point, not the engine
    write_data_dir(os.path.join(panel.data_root(), "shakespeare"))
    panel.refresh()
    panel.add_sources([str(tmp_path / "shakespeare.txt")])
    panel.name_edit.setText("shakespeare")
    assert "replaces the existing data set 'shakespeare'" in panel.name_note.text()
    write_data_dir(os.path.join(panel.data_root(), "shakespeare-complete-works"))
    panel.refresh()
    panel.name_edit.setText("shakespeare-complete-work")
    panel.resize(1000, 700)
    panel.show()
    qtbot.waitExposed(panel)
    wide = panel.prepare_box.width()
    panel.name_edit.setText("shakespeare-complete-works")  # the note wraps: the column does not widen as it
    qtbot.wait(100)  # comes (40 px in a real window, and the sample beside it narrowed)
    assert panel.prepare_box.width() == wide
    panel.name_edit.setText("shakespeare")
    asked = []
    monkeypatch.setattr(panel, "confirm_replace", lambda name: asked.append(name) or False)
    with qtbot.assertNotEmitted(panel.prepare_requested):
        assert panel.start_prepare() is False
    assert asked == ["shakespeare"] and not panel.is_busy()
    monkeypatch.setattr(panel, "confirm_replace", lambda name: asked.append(name) or True)
    with qtbot.waitSignal(panel.prepare_requested, timeout=2000) as sig:
        assert panel.start_prepare() is True
    assert sig.args[0].out == os.path.join(panel.data_root(), "shakespeare") and asked[-1] == "shakespeare"
    panel.name_edit.setText("shakespeare-2")  # a new name: nothing to ask
    asked.clear()
    with qtbot.waitSignal(panel.prepare_requested, timeout=2000):
        assert panel.start_prepare() is True
    assert asked == []


def test_the_file_pickers_open_next_to_the_last_source_else_at_home(panel, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert panel._sources_folder() == str(tmp_path / "home")  # not the workspace: it holds prepared data
    (tmp_path / "texts").mkdir()
    panel.add_sources(["@stdlib", str(tmp_path / "texts" / "a.txt")])
    assert panel._sources_folder() == str(tmp_path / "texts")


def test_arguments_follow_the_choices(panel, tmp_path):
    panel.add_sources(["@stdlib", "@stdlib", "/a b/c.txt"])  # duplicates collapse, spaces survive
    panel.name_edit.setText("web")
    panel.val_spin.setValue(0.05)
    args = panel.request().arguments()
    assert args[:4] == ["--input", "@stdlib", "/a b/c.txt", "--out"]
    assert args[4] == str(tmp_path / "ws" / "data" / "web")
    assert args[args.index("--vocab-size") + 1] == "4096" and args[-3:] == ["--val-fraction", "0.05", "--events"]
    panel.tokenizer_combo.setCurrentText("byte")
    assert "--vocab-size" not in panel.request().arguments() and not panel.vocab_spin.isEnabled()


def test_dropped_files_become_sources(panel, tmp_path):
    corpus = tmp_path / "notes.txt"
    corpus.write_text("hello")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(corpus)), QUrl.fromLocalFile(str(tmp_path))])
    event = QDropEvent(QPointF(5, 5), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    panel.source_list.dropEvent(event)
    assert panel.sources() == [str(corpus), str(tmp_path)]


def test_data_set_without_preview_says_so(qtbot, panel, tmp_path):
    write_data_dir(str(tmp_path / "ws" / "data" / "old"), vocab_size=300, tokenizer="bpe", train_tokens=12345,
                   val_tokens=None)
    (tmp_path / "ws" / "data" / "junk").mkdir()  # no meta.json: not a data set
    panel.refresh()
    assert panel.datasets() == ["old"]
    panel.select_dataset("old")
    assert panel.detail_values["train"].text() == "12,345" and panel.detail_values["val"].text() == "—"
    assert "No preview" in panel.sample.toPlainText() and panel.sample.ids == []


def test_token_under_the_mouse_is_found(qtbot, panel):
    panel.sample.set_tokens([7, 8, 9, 10], ["ab", " cd", "\n", "ef"])
    panel.show()
    qtbot.waitExposed(panel)
    cursor = QTextCursor(panel.sample.document())
    cursor.setPosition(panel.sample._starts[1] + 1)
    rect = panel.sample.cursorRect(cursor)
    assert panel.sample.token_at(QPoint(rect.x() + 2, rect.center().y())) == 1
    assert panel.sample.token_at(QPoint(panel.sample.viewport().width() - 5, panel.sample.viewport().height() - 5)) is None
    point = QPoint(rect.x() + 2, rect.center().y())
    viewport = panel.sample.viewport()
    QApplication.sendEvent(viewport, QHelpEvent(QEvent.Type.ToolTip, point, viewport.mapToGlobal(point)))
    assert "id 8" in QToolTip.text() and "' cd'" in QToolTip.text()
    QToolTip.hideText()
    assert "↵" in panel.sample.toPlainText()


@pytest.mark.slow
def test_prepare_with_the_real_engine(qtbot, panel, monkeypatch, tmp_path):
    monkeypatch.delenv("LLM_STUDIO_ENGINE", raising=False)
    panel.add_sources(["@synthetic"])
    panel.name_edit.setText("real")
    panel.tokenizer_combo.setCurrentText("char")
    with qtbot.waitSignal(panel.job.finished, timeout=60000) as sig:
        panel.start_prepare()
    assert sig.args[0].ok, sig.args[0].failure
    meta = layout.load_json(str(tmp_path / "ws" / "data" / "real" / layout.DATA_META))
    assert panel.detail_values["train"].text() == f"{meta['train_tokens']:,}"
    assert panel.detail_values["vocab"].text() == str(meta["vocab_size"])
    assert len(panel.sample.ids) > 100 and panel.error_label.isHidden()


def test_the_data_set_is_named_after_its_first_source_until_the_user_names_it(qtbot, panel, tmp_path):
    write_data_dir(os.path.join(panel.data_root(), "shakespeare"))  # an existing set is not replaced by default
    panel.refresh()
    panel.add_sources([str(tmp_path / "shakespeare.txt")])
    assert panel.name_edit.text() == "shakespeare-2" and "→ data/shakespeare-2" in panel.name_note.text()
    panel.source_list.clear()
    panel.add_sources(["@stdlib"])
    assert panel.name_edit.text() == "stdlib"
    panel.source_list.clear()
    panel.add_sources([str(tmp_path / "my notes (2024)") + os.sep])  # a folder: a valid folder name from it
    assert panel.name_edit.text() == "my-notes-2024"
    qtbot.keyClicks(panel.name_edit, "-x")  # typed by the user: kept from now on
    panel.add_sources([str(tmp_path / "other.txt")])
    panel.source_list.clear()
    panel.add_sources(["@synthetic"])
    assert panel.name_edit.text() == "my-notes-2024-x"


def test_token_lines_keep_a_gap_so_the_next_line_does_not_paint_over_underscores(qtbot):
    """At a 125 % scale the next line's token backgrounds covered the line above's underscores ("<|im_end|>"
    read "<|im end|>"): each line starts below the previous line's full font height."""
    from PySide6.QtGui import QFontMetricsF

    from studio.views.common.token_text import TokenText

    view = TokenText()
    qtbot.addWidget(view)
    view.resize(400, 200)
    view.set_tokens([1, 2, 3, 4, 5], ["<|im_end|>", "\n", "ab_c", "\n", "<|im_start|>"], [0, 0, 1, 1, 0])
    view.show()
    qtbot.waitExposed(view)
    doc = view.document()
    tops = []
    block = doc.begin()
    while block.isValid():
        layout = block.layout()
        tops += [doc.documentLayout().blockBoundingRect(block).top() + layout.lineAt(i).y()
                 for i in range(layout.lineCount())]
        block = block.next()
    height = QFontMetricsF(view.font()).height()
    assert len(tops) == 3
    assert all(b - a >= height + 0.9 for a, b in zip(tops[:-1], tops[1:], strict=True)), (tops, height)


def test_the_data_tab_selects_the_data_set_of_the_run_shown(qtbot, window, workspace):
    """Switching runs left the Data tab on whatever data set was selected (the demo's, while the run shown
    trained on another): it selects the run's, and leaves the selection alone for data outside the list."""
    from tests.studio.conftest import TINY_CONFIG
    from tests.studio.helpers import select_run, write_data_dir

    write_data_dir(os.path.join(workspace.data_dir, "other"))
    workspace.create_run("on-other", TINY_CONFIG.replace("data/demo", "data/other"))
    workspace.create_run("outside", TINY_CONFIG.replace("../../data/demo", "/nowhere/data"))
    w = window(workspace.root)
    names = lambda: w.data_panel.dataset_list.currentItem().text()  # noqa: E731
    select_run(w, "on-other")
    qtbot.waitUntil(lambda: names() == "other")
    select_run(w, "tiny")
    qtbot.waitUntil(lambda: names() == "demo")
    select_run(w, "outside")
    QApplication.processEvents()
    assert names() == "demo"


def test_a_data_set_goes_to_the_trash_naming_the_runs_that_train_on_it(qtbot, window, workspace, fake_engine,
                                                                       tmp_path, monkeypatch):
    """The Data tab could prepare data sets but never remove one (the Fine-tune dialog's copies piled up):
    Move to Trash asks first, naming the runs that train on it, and refuses while one of them trains."""
    from studio.views.runs import dialogs
    from tests.studio.conftest import TINY_CONFIG
    from tests.studio.helpers import select_run

    write_data_dir(os.path.join(workspace.data_dir, "other"))
    workspace.create_run("on-other", TINY_CONFIG.replace("data/demo", "data/other"))
    fake_engine("normal", hold_at=2)
    w = window(workspace.root)
    w.run_actions.trash = str(tmp_path / "trash")
    asked = []
    monkeypatch.setattr(dialogs, "confirm_delete_data", lambda _w, name, users: asked.append((name, users)) or True)
    tiny = w.session.controller(workspace.run("tiny").dir)
    assert tiny.request_start() == []
    qtbot.waitUntil(lambda: tiny.history.step >= 2, timeout=15000)
    panel = w.data_panel
    panel.select_dataset("demo")
    panel.trash_action.trigger()  # the list's right-click menu
    assert not asked and "while tiny trains on it" in w.statusBar().currentMessage()
    assert os.path.isdir(os.path.join(workspace.data_dir, "demo"))
    panel.select_dataset("other")
    assert panel.trash_button.isEnabled()
    panel.trash_button.click()
    assert asked == [("other", ["on-other"])]
    assert not os.path.exists(os.path.join(workspace.data_dir, "other"))
    assert os.path.isdir(tmp_path / "trash" / "files" / "other")  # restorable (freedesktop.org layout)
    assert panel.datasets() == ["demo"] and "Moved the data set other" in w.statusBar().currentMessage()
    select_run(w, "on-other")
    why = w.session.controller(workspace.run("on-other").dir).start_problems()
    assert any("other" in line for line in why)
    with qtbot.waitSignal(w.session.run_finished, timeout=15000):
        w.session.stop_all()
