"""Issue 9, small things: "Created" as a date people read, the YAML tab wraps long lines, the Log y
check box is visible in the dark theme, and run names are never cut in the runs list."""

from __future__ import annotations

import os

import pytest
from PySide6.QtCore import QPoint
from PySide6.QtWidgets import QApplication, QStyle, QStyleOptionButton

from tests.studio.helpers import select_run, write_data_dir, write_finished_run
from tests.studio.test_issue9_runs import _contrast


@pytest.fixture
def window(window):
    return lambda workspace_root=None: window(workspace_root, size=(1360, 860))


def test_created_is_a_date_people_read(qtbot, window, workspace):
    write_data_dir(os.path.join(workspace.data_dir, "demo"), created="2026-11-23T20:36:59+00:00")
    w = window(workspace.root)
    w.data_panel.refresh()
    w.data_panel.dataset_list.setCurrentRow(0)
    text = w.data_panel.detail_values["created"].text()
    assert "2026" in text and "Nov" in text and "T20" not in text and "+00:00" not in text


def test_the_yaml_tab_wraps_long_lines(qtbot, window, workspace):
    w = window(workspace.root)
    w.runs_panel.select_run(workspace.run("tiny").dir)
    w.show_tab("config")
    editor = w.config_editor
    editor.tabs.setCurrentIndex(1)
    QApplication.processEvents()
    assert "train: {batch_size: 8" in editor.text()  # a long flow-style line
    assert editor.yaml_edit.horizontalScrollBar().maximum() == 0  # nothing hidden to the right
    assert editor.yaml_edit.document().size().width() <= editor.yaml_edit.viewport().width() + 1


def test_log_y_checkbox_is_visible_in_the_dark_theme(qtbot, window, workspace):
    w = window(workspace.root)
    w.set_theme("dark")
    w.show_tab("training")
    QApplication.processEvents()
    box = w.training.plots.log_check
    opt = QStyleOptionButton()
    box.initStyleOption(opt)
    rect = box.style().subElementRect(QStyle.SubElement.SE_CheckBoxIndicator, opt, box)
    image = box.grab().toImage()
    background = box.palette().color(box.backgroundRole())
    best = max(_contrast(image.pixelColor(QPoint(x, y)), background)
               for x in range(rect.left(), rect.right() + 1) for y in range(rect.top(), rect.bottom() + 1))
    w.set_theme("light")
    assert best >= 3.0  # the indicator's frame stands out from the window


def test_radio_buttons_are_visible_in_the_dark_theme(qtbot):
    """The fine-tune dialog's LoRA / Full choice: Fusion drew both dark grey on dark grey."""
    from PySide6.QtWidgets import QRadioButton

    from studio.theme import apply_theme

    app = QApplication.instance()
    apply_theme(app, "dark")
    try:
        seen = {}
        for checked in (False, True):
            button = QRadioButton("LoRA")
            qtbot.addWidget(button)
            button.setChecked(checked)
            button.show()
            opt = QStyleOptionButton()
            button.initStyleOption(opt)
            rect = button.style().subElementRect(QStyle.SubElement.SE_RadioButtonIndicator, opt, button)
            image = button.grab().toImage()
            background = button.palette().color(button.backgroundRole())
            pixels = [image.pixelColor(QPoint(x, y)) for x in range(rect.left(), rect.right() + 1)
                      for y in range(rect.top(), rect.bottom() + 1)]
            seen[checked] = (max(_contrast(c, background) for c in pixels), image.pixelColor(rect.center()))
    finally:
        apply_theme(app, "light")
    assert seen[False][0] >= 3.0 and seen[True][0] >= 3.0  # each one's ring stands out from the window
    assert _contrast(seen[True][1], seen[False][1]) >= 3.0  # and the chosen one has a dot the other lacks


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_run_names_are_not_cut(qtbot, window, workspace, theme):
    parent = workspace.run("tiny")
    write_finished_run(parent.dir, steps=100)
    w = window(workspace.root)
    w.set_theme(theme)
    w.copy_run(parent.dir)
    child = w.session.fork_run(parent.dir, parent.checkpoints()[0].path, {"train.max_steps": 300},
                               "tiny-fork-with-a-long-name-low-lr")
    w.runs_panel.select_run(child.dir)
    w.runs_panel.resize(360, 400)
    QApplication.processEvents()
    tree = w.runs_panel.tree
    item = tree.topLevelItem(0).child(tree.topLevelItem(0).childCount() - 1)
    assert item.text(0) == "tiny-fork-with-a-long-name-low-lr"
    needed = tree.fontMetrics().horizontalAdvance(item.text(0)) + 2 * tree.indentation()
    width = tree.columnWidth(0)
    w.set_theme("light")
    assert width >= needed


def test_probability_legend_is_readable_in_the_dark_theme(qtbot, window, workspace):
    from studio.views.generate.output import prob_color

    w = window(workspace.root)
    w.set_theme("dark")
    w.show_tab("generate")
    QApplication.processEvents()
    image = w.generation._legend().grab().toImage()
    w.set_theme("light")
    cells = {prob_color(p).name(): 0.0 for p in (0.05, 0.25, 0.5, 0.75, 1.0)}
    for x in range(image.width()):
        column = [image.pixelColor(QPoint(x, y)) for y in range(image.height())]
        names = [c.name() for c in column]
        background = max(set(names), key=names.count)  # the cell this column crosses
        if background in cells:
            bg = column[names.index(background)]
            cells[background] = max(cells[background], *(_contrast(c, bg) for c in column))
    assert all(best >= 4.5 for best in cells.values()), cells  # every label readable on its cell


def test_the_data_folder_field_shows_its_whole_path_at_1280(qtbot, window, workspace):
    w = window(workspace.root)
    w.resize(1280, 800)
    w.runs_panel.select_run(workspace.run("tiny").dir)
    w.show_tab("config")
    QApplication.processEvents()
    edit = w.config_editor.form.editors["data.dir"].line_edit()
    assert edit.text()
    room = edit.contentsRect().width() - edit.textMargins().left() - edit.textMargins().right() - 6
    assert edit.fontMetrics().horizontalAdvance(edit.text()) <= room, (edit.text(), room)
    assert edit.toolTip() == edit.text()


@pytest.mark.parametrize("damage", [{"sources": [{"input": "a.txt", "files": "3", "bytes": "big"}]},
                                    {"sources": {"input": "a.txt"}}, {"train_tokens": "many"}])
def test_a_data_set_with_ill_typed_meta_values_is_shown_not_crashed(qtbot, window, workspace, damage):
    from studio.workspace.datasets import token_total

    write_data_dir(os.path.join(workspace.data_dir, "odd"), **damage)
    w = window(workspace.root)
    w.data_panel.refresh()
    w.show_tab("data")
    rows = [w.data_panel.dataset_list.item(i).text() for i in range(w.data_panel.dataset_list.count())]
    w.data_panel.dataset_list.setCurrentRow(rows.index("odd"))
    QApplication.processEvents()
    assert w.data_panel.detail_values["sources"].text()  # shown, with what could be read
    assert token_total({"train_tokens": "many", "val_tokens": 32}) == 32


def test_the_runs_list_shows_all_its_columns_at_1280(qtbot, window, workspace):
    """At 1280 x 800 the runs list (about 385 px) shows name, status, step, best val and time of a demo
    and its fork without a sideways scroll; the short headers carry their meaning in tooltips."""
    parent = workspace.run("tiny")
    write_finished_run(parent.dir, steps=1000, eval_every=100, ckpt_every=1000)
    w = window(workspace.root)
    w.session.fork_run(parent.dir, parent.checkpoints()[-1].path, {"train.max_steps": 2000}, "tiny-fork-low-lr")
    w.resize(1280, 800)
    QApplication.processEvents()
    tree = w.runs_panel.tree
    assert tree.topLevelItem(0).text(2) == "1000/1000"
    assert tree.horizontalScrollBar().maximum() == 0, [tree.columnWidth(c) for c in range(5)]
    assert tree.headerItem().toolTip(3) == "Best validation loss"


def test_the_runs_list_shows_all_its_columns_in_the_narrowest_window_a_first_start_makes(qtbot, window,
                                                                                        workspace):
    """1600 x 1000 at 150 % scaling (1067 x 667 logical): a first start makes a 1027 px window whose tabs
    need 641 px, and the runs list, with a demo and a fine-tune under it, scrolled sideways by a few pixels
    with Time cut: the name column would not go below 160 px. It goes to 140 px (names elided in the middle)."""
    parent = workspace.run("tiny")
    write_finished_run(parent.dir, steps=1300, eval_every=100, ckpt_every=1300)
    child = workspace.fork_run(parent, parent.checkpoints()[-1].path, {"train.max_steps": 300},
                               "tiny-ft-tasks-chat")
    write_finished_run(child.dir, steps=300, eval_every=100, ckpt_every=300)
    w = window(workspace.root)
    w.resize(1027, 587)
    sizes = w.splitter.sizes()
    w.splitter.setSizes([382, sum(sizes) - 382])  # the list's width there (the tabs' minimum was wider there)
    QApplication.processEvents()
    tree = w.runs_panel.tree
    child_item = tree.topLevelItem(0).child(0)
    assert (tree.topLevelItem(0).text(4), child_item.text(2)) == ("1m 05s", "300/300")
    assert tree.horizontalScrollBar().maximum() == 0, ([tree.columnWidth(c) for c in range(5)],
                                                       tree.viewport().width())


def test_the_runs_list_shows_the_evaluation_columns_without_a_sideways_scroll(qtbot, window, workspace):
    """With a fork under its parent and both evaluation columns (text perplexity, pairs BLEU), the list at
    the window's default size scrolled sideways by 61 px: the header's stretched last column, with no room
    left, fell back to Qt's default 100 px. Every column is in view, and the last one ends at the edge."""
    from core import layout

    parent = workspace.run("tiny")
    write_finished_run(parent.dir, steps=1000, eval_every=100, ckpt_every=1000)
    w = window(workspace.root)
    w.session.fork_run(parent.dir, parent.checkpoints()[-1].path, {"train.max_steps": 2000}, "tiny-fork-lower-lr")
    ckpt = parent.checkpoints()[-1].path
    w.resize(1360, 860)
    # a text evaluation first (its column appears and the list widens for it), then a pairs evaluation
    for kind, figures in (("text", {"perplexity": 4.558}), ("pairs", {"bleu": 0.0, "n": 60, "generations": []})):
        layout.atomic_write_json(layout.evaluation_path(ckpt, kind, "/data/f", 100.0),
                                 {"kind": kind, "created": 100.0, "step": 1000, "file": "/data/f", **figures})
        w.session.refresh()  # the runs list reads the evaluations again
        QApplication.processEvents()
    tree = w.runs_panel.tree
    shown = [c for c in range(tree.columnCount()) if not tree.isColumnHidden(c)]
    assert [tree.headerItem().text(c) for c in shown][-2:] == ["Eval ppl", "BLEU"]
    widths = [tree.columnWidth(c) for c in shown]
    assert tree.horizontalScrollBar().maximum() == 0, (widths, tree.viewport().width())
    assert widths[-1] < 80 and abs(sum(widths) - tree.viewport().width()) <= 2, widths
    # the list dragged narrower than its columns need: it scrolls by what is missing, and the last
    # column keeps its own width (stretched, it fell back to 100 px and the list scrolled ~60 px more)
    from studio.views.runs.panel import NAME_MIN

    splitter = w.runs_panel.parentWidget()
    need = NAME_MIN + sum(widths[1:])  # the names elided as far as they go
    sizes = splitter.sizes()
    splitter.setSizes([sizes[0] - (tree.viewport().width() - need) - 12, sizes[1] + 12 + tree.viewport().width()
                       - need, *sizes[2:]])
    QApplication.processEvents()
    widths = [tree.columnWidth(c) for c in shown]
    assert 0 < tree.horizontalScrollBar().maximum() <= 12 + 8, (widths, tree.viewport().width())
    assert widths[-1] < 80, widths


def test_word_token_labels_under_the_attention_map_do_not_run_into_each_other(qtbot):
    """BPE tokens are words: below the map only every k-th column is labelled, so that the widest label
    fits in the columns up to the next one; the rows (one label per line) keep every label that fits."""
    import numpy as np
    from PySide6.QtGui import QFontMetrics

    from studio.views.attention.heatmap import AttentionHeatmap

    heat = AttentionHeatmap()
    qtbot.addWidget(heat)
    heat.resize(600, 600)
    heat.show()
    qtbot.waitExposed(heat)
    tokens = ["GREMIO", ":", "\n", "Good", " morrow", ",", " neighbour", " Baptista", "."] * 4
    heat.set_matrix(np.tril(np.ones((36, 36), dtype=np.float32)) / np.arange(1, 37)[:, None], tokens)
    QApplication.processEvents()
    item = heat.plot.getPlotItem()
    axis = item.getAxis("bottom")
    bottom, left = axis._tickLevels[0], item.getAxis("left")._tickLevels[0]
    assert len(left) == 36 and 1 < len(bottom) < 36
    columns = bottom[1][0] - bottom[0][0]  # from one label to the next
    widest = max(QFontMetrics(axis.style["tickFont"]).horizontalAdvance(text) for _, text in bottom)
    assert columns * item.vb.width() / 36 >= widest, (columns, item.vb.width(), widest)


def test_a_long_run_name_does_not_push_the_runs_list_aside(qtbot, window, workspace):
    """The Training tab's minimum width does not grow with the selected run's name (which would squeeze
    the runs list on a smaller screen): its heading shortens the name with '…', whole in its tooltip."""
    long_name = "shakespeare-from-1000-with-a-lower-learning-rate-and-more-steps"
    workspace.create_run(long_name, workspace.run("tiny").read_config_text())
    w = window(workspace.root)
    w.resize(1180, 760)  # the size the studio opens at on a 1600 x 1000 screen
    w.show_tab("training")
    select_run(w, "tiny")
    QApplication.processEvents()
    minimum = w.training.minimumSizeHint().width()
    select_run(w, long_name)
    QApplication.processEvents()
    label = w.training.status_label
    assert w.training.minimumSizeHint().width() == minimum  # (1102 px with the name at full width)
    assert label.text() == f"{long_name} — new" and label.toolTip() == label.text()
    assert "…" in label.shown_text() and label.width() < label.fontMetrics().horizontalAdvance(label.text())
    assert label.shown_text().endswith(" — new")


def test_a_shortened_run_heading_keeps_its_status_whole(qtbot):
    """"qwen3t…ported": the heading shortened name and status as one text, cutting into the status. The
    name gives way; the status stays whole."""
    from studio.views.common.elided_label import ElidedLabel

    label = ElidedLabel()
    qtbot.addWidget(label)
    label.setText("qwen3tiny-ft-tasks-chat", " — imported")
    label.show()
    label.resize(label.fontMetrics().horizontalAdvance("qwen3tiny — imported"), 30)
    qtbot.waitUntil(lambda: label.shown_text() != label.text())
    shown = label.shown_text()
    assert shown.endswith("… — imported") or shown.endswith("t — imported"), shown
    assert shown.startswith("qw") and "…" in shown and label.text() == "qwen3tiny-ft-tasks-chat — imported"


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_generated_tokens_read_on_their_probability_colours(qtbot, theme):
    """Completion and chat shade each token by its probability: in the dark theme its light text stood on
    the pastel (a chat reply of '119' was barely visible)."""
    from PySide6.QtGui import QTextCursor

    from studio.theme import apply_theme
    from studio.views.generate.output import TokenOutput

    app = QApplication.instance()
    apply_theme(app, theme)
    try:
        out = TokenOutput()
        qtbot.addWidget(out)
        out.begin("add: 12+30=")
        for text, prob in (("1", 0.05), ("1", 0.5), ("9", 0.97)):
            out.append_token({"text": text, "prob": prob, "id": 1})
        cursor = QTextCursor(out.document())
        ratios = []
        for start in out._starts:
            cursor.setPosition(start + 1)  # the format of the character before the cursor: the token's
            fmt = cursor.charFormat()
            ratios.append(_contrast(fmt.foreground().color(), fmt.background().color()))
    finally:
        apply_theme(app, "light")
    assert min(ratios) >= 4.5, ratios


def test_nothing_is_cut_short_in_a_1024_px_window_with_the_runs_list(qtbot, window, workspace):
    """A 1024 x 640 laptop window with the runs list shown: every tab fits (the Training bar needed 741 px
    and Generate 909 beside the 360 px list, so buttons were squeezed below their text); the bars whose
    controls do not fit in one row put their second group under the first."""
    from PySide6.QtWidgets import QAbstractButton, QComboBox, QSpinBox

    from studio.main_window import TABS

    parent = workspace.run("tiny")
    write_finished_run(parent.dir, steps=100)
    w = window(workspace.root)
    w.resize(1024, 640)
    assert w.minimumSizeHint().width() <= 1024
    cut = []
    for tab in TABS:
        w.show_tab(tab)
        QApplication.processEvents()
        controls = [c for kind in (QAbstractButton, QComboBox, QSpinBox) for c in w.tabs.currentWidget().findChildren(kind)]
        for c in controls:
            if c.isVisibleTo(w) and c.width() < c.minimumSizeHint().width():
                cut.append(f"{tab}: {type(c).__name__} {getattr(c, 'text', lambda: '')()!r} "
                           f"{c.width()} < {c.minimumSizeHint().width()}")
    assert not cut, (cut, w.splitter.sizes(), [w.tabs.widget(i).minimumSizeHint().width() for i in range(5)])
    assert w.training.bar.wrapped and w.generation.button_row.wrapped  # two rows here...
    w.resize(1600, 900)
    w.show_tab("training")
    QApplication.processEvents()
    assert not w.training.bar.wrapped  # ...and one where there is room


def test_the_runs_list_keeps_every_column_in_view_while_a_run_trains(qtbot, window, workspace):
    """A new user's first run (the demo, at the window's default size): as it trained, the step, best val
    and time columns grew ('0/1000' to '258/1000', '–' to '1.9740') but the name column kept the width
    fitted when the list was built, and the list scrolled sideways with Best cut and Time out of view.
    Live updates fit the name column again when the other columns change width."""
    run = workspace.run("tiny")
    w = window(workspace.root)
    tree = w.runs_panel.tree
    QApplication.processEvents()
    assert tree.horizontalScrollBar().maximum() == 0
    summary = w.session.summary(run.dir)
    for figures in ({"status": "running", "step": 258, "max_steps": 1000, "best_val_loss": 1.974, "duration": "18s"},
                    {"status": "done", "step": 1000, "max_steps": 1000, "best_val_loss": 1.5112,
                     "duration": "1m 04s"}):
        w.runs_panel.update_run({**summary, **figures})
        QApplication.processEvents()
        item = tree.topLevelItem(0)
        assert (item.text(2), item.text(4)) == (f"{figures['step']}/1000", figures["duration"])
        widths = [tree.columnWidth(c) for c in range(5)]
        assert tree.horizontalScrollBar().maximum() == 0, (widths, tree.viewport().width())
        assert sum(widths) <= tree.viewport().width() + 2, widths


def test_the_runs_list_fits_again_when_its_vertical_scroll_bar_appears(qtbot, window, workspace):
    """The name column was fitted to the list's width when runs were listed, and again only when the panel
    itself was resized: a vertical scroll bar appearing later (more runs than rows), or the list laid out
    after it was filled, narrowed the visible area and the list scrolled sideways. The column is fitted
    whenever the visible area changes width."""
    w = window(workspace.root)
    tree = w.runs_panel.tree
    text = workspace.run("tiny").read_config_text()
    for i in range(60):
        workspace.create_run(f"run-{i:02d}", text)
    w.session.refresh()
    QApplication.processEvents()
    qtbot.wait(50)
    assert tree.verticalScrollBar().isVisible()  # more runs than rows
    widths = [tree.columnWidth(c) for c in range(5)]
    assert tree.horizontalScrollBar().maximum() == 0, (widths, tree.viewport().width())


def test_no_run_selected_is_not_in_the_last_runs_status_colour(qtbot, window, workspace, tmp_path):
    """A new, empty workspace opened after a finished run showed 'No run selected' in the green of 'done',
    over an empty runs list that said nothing about where to begin."""
    from studio.theme import status_color
    from studio.workspace.workspace import Workspace

    write_finished_run(workspace.run("tiny").dir)
    w = window(workspace.root)
    select_run(w, "tiny")
    label = w.training.status_label
    assert status_color("done") in label.styleSheet()
    w.statusBar().showMessage("Demo data ready: press Start (Ctrl+R) to train the demo run", 15000)
    w.open_workspace(Workspace.create(str(tmp_path / "empty")).root)
    assert w.statusBar().currentMessage() == ""  # the last workspace's news goes with it
    QApplication.processEvents()
    assert label.text() == "No run selected"
    assert not w.training.progress.isVisible()  # no empty progress box with no run to count steps of
    assert status_color("done") not in label.styleSheet() and status_color("new") in label.styleSheet()
    hint = w.runs_panel.empty_label  # and the empty list says where to begin
    assert hint.isVisible() and "Data tab" in hint.text() and "New (Ctrl+N)" in hint.text()
    w.new_run()
    QApplication.processEvents()
    assert w.runs_panel.tree.topLevelItemCount() == 1 and not hint.isVisible()


def test_chat_messages_and_the_prompt_follow_a_theme_switch(qtbot):
    """Switching to the dark theme left a chat's messages written in the light theme's dark text (nearly
    invisible on the dark background), and the prompt in a fixed grey: each now reads after the switch."""
    from PySide6.QtGui import QColor

    from studio.theme import apply_theme
    from studio.views.generate.output import TokenOutput

    app = QApplication.instance()
    apply_theme(app, "light")
    views = [TokenOutput() for _ in range(3)]
    for out in views:
        qtbot.addWidget(out)
        out.resize(320, 90)
        out.set_colouring(False)
        out.show()
    views[0].begin("the prompt, in grey ")
    views[1].begin("")
    views[1].append_note("reverse: abcde, a chat message", "")
    views[2].begin("")
    views[2].append_token({"text": "an uncoloured reply", "prob": 0.5, "id": 1})
    try:
        apply_theme(app, "dark")
        QApplication.processEvents()
        spreads = []
        for out in views:
            image = out.viewport().grab().toImage()
            base = out.palette().base().color().lightness()
            spreads.append(max(abs(QColor(image.pixel(x, y)).lightness() - base)
                               for x in range(0, image.width(), 2) for y in range(image.height())))
    finally:
        apply_theme(app, "light")
    assert min(spreads) >= 90, spreads  # text that stands out from the dark background


def test_a_checked_box_shows_a_tick_in_the_dark_theme(qtbot):
    """In the dark theme a checked box was a plain blue square: now a dark tick on the blue."""
    from PySide6.QtGui import QColor
    from PySide6.QtWidgets import QCheckBox, QStyle, QStyleOptionButton

    from studio.theme import apply_theme

    app = QApplication.instance()
    apply_theme(app, "dark")
    try:
        box = QCheckBox("Chat")
        qtbot.addWidget(box)
        box.setChecked(True)
        box.show()
        QApplication.processEvents()
        option = QStyleOptionButton()
        box.initStyleOption(option)
        rect = box.style().subElementRect(QStyle.SubElement.SE_CheckBoxIndicator, option, box)
        image = box.grab().toImage()
        colours = [QColor(image.pixel(x, y)) for x in range(rect.left() + 2, rect.right() - 1)
                   for y in range(rect.top() + 2, rect.bottom() - 1)]
    finally:
        apply_theme(app, "light")
    blue = sum(1 for c in colours if c.blue() > 180 and c.red() < 140)
    dark = sum(1 for c in colours if c.lightness() < 70)
    assert blue > len(colours) // 3 and dark >= 6, (blue, dark, len(colours))
