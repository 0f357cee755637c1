"""The attention panel against a real inference worker on a tiny trained checkpoint: the map's shape and
contents, aggregates, exports, the training-step slider (also live), and a killed worker."""

from __future__ import annotations

import os
import shutil
import signal

import numpy as np
import pytest
from PySide6.QtCore import QPointF

from studio.views.attention.panel import AttentionPanel
from studio.workspace.attention_math import load_npz, rollout
from studio.workspace.workspace import Workspace
from tests.studio import test_generation_panel
from tests.studio.test_generation_panel import WAIT_MS, ckpt

tiny_ws = test_generation_panel.tiny_ws  # the tiny trained workspace (a session fixture)

TEXT = "add: 12 + 7 = 19"


@pytest.fixture
def panel(qtbot, tiny_ws):
    p = AttentionPanel()
    qtbot.addWidget(p)
    p.resize(1100, 700)
    p.set_workspace(tiny_ws)
    yield p
    p.shutdown_workers(wait_ms=5000)
    p.pool.shutdown(wait_ms=5000)


def compute(qtbot, p: AttentionPanel, checkpoint: str, text: str = TEXT) -> None:
    with qtbot.waitSignal(p.attention_loaded, timeout=WAIT_MS):
        p.inspect(checkpoint, text)


def test_heatmap_has_one_row_and_column_per_prompt_token(qtbot, panel, tiny_ws, tmp_path):
    compute(qtbot, panel, ckpt(tiny_ws, 40))
    T = len(TEXT)  # a char-level tokenizer: one token per character
    m = panel.shown_matrix()
    assert m.shape == (T, T) and panel.heatmap.tokens() == list(TEXT)
    assert panel.data.probs.shape == (2, 2, T, T)
    np.testing.assert_allclose(m.sum(1), 1.0, atol=1e-5)
    assert (m[np.triu_indices(T, 1)] == 0).all()
    assert "from <b>d</b> (#2) → to <b>a</b> (#0)" in panel.heatmap.describe(2, 0)
    assert len(panel.grid.buttons) == 4  # 2 layers x 2 heads, all shown for a small model

    panel.grid.buttons[(1, 1)].click()  # a thumbnail opens that head
    assert (panel.layer.value(), panel.head.value()) == (1, 1)
    np.testing.assert_array_equal(panel.shown_matrix(), panel.data.probs[1, 1])
    panel.mode.setCurrentIndex(1)
    np.testing.assert_allclose(panel.shown_matrix(), panel.data.probs[1].mean(0), atol=1e-6)
    panel.mode.setCurrentIndex(2)
    np.testing.assert_allclose(panel.shown_matrix(), rollout(panel.data.probs)[1], atol=1e-6)
    np.testing.assert_allclose(panel.shown_matrix().sum(1), 1.0, atol=1e-5)

    panel.tokens.select_token(5)  # the token view: where each head of layer 1 looks from token 5
    rows = panel.tokens.rows
    np.testing.assert_array_equal(rows["head 0"], panel.data.probs[1, 0, 5])
    assert set(rows) == {"head 0", "head 1", "mean of heads", "rollout 0–1"}
    panel.tokens.select_token(4)  # a space: named as the axes name it (it read "where token #4   looks")
    assert "where token #4 ␣ looks" in panel.tokens.browser.toPlainText()

    panel.export("png", str(tmp_path / "map.png"))
    panel.export("csv", str(tmp_path / "map.csv"))
    panel.export("npy", str(tmp_path / "map.npy"))
    panel.export("all", str(tmp_path / "all.npy"))
    assert os.path.getsize(tmp_path / "map.png") > 1000
    np.testing.assert_array_equal(np.load(tmp_path / "map.npy"), panel.shown_matrix())
    assert np.load(tmp_path / "all.npy").shape == (2, 2, T, T)
    lines = (tmp_path / "map.csv").read_text(encoding="utf-8").splitlines()
    assert len(lines) == T + 1 and lines[0].split(",")[1] == "0:a"

    panel.set_workspace(tiny_ws)  # the same workspace again (a refresh): the map stays
    assert panel.data is not None and panel.stack.currentWidget() is not panel.empty
    other = tmp_path / "other-workspace"  # another: the last one's map goes, the hint is back
    Workspace.create(str(other))
    panel.set_workspace(str(other))
    assert panel.data is None and panel.stack.currentWidget() is panel.empty


def test_step_slider_walks_through_training_and_follows_new_snapshots(qtbot, panel, tiny_ws, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(os.path.join(tiny_ws, "runs", "tiny", "attention"), run / "attention")
    panel.set_run_dir(str(run))
    assert panel.slider.maximum() == 3 and "step 40" in panel.step_label.text()  # snapshots at 10..40
    panel.slider.setValue(0)
    assert panel.source.currentIndex() == 1 and "step 10" in panel.data.label
    first = panel.shown_matrix().copy()
    with qtbot.waitSignal(panel.attention_loaded, timeout=5000):
        panel.slider.setValue(3)
    last = panel.shown_matrix().copy()
    assert first.shape == last.shape and not np.allclose(first, last)
    expected = load_npz(str(run / "attention" / "step-000040.npz"))
    np.testing.assert_array_equal(last, expected.probs[0, 0])
    assert "step 40: the start of its validation text" in panel.status.text()  # no probe set (no config here)
    with open(run / "config.yaml", "w", encoding="utf-8") as fh:
        fh.write("run:\n  dir: .\n  attention_probe: 'abc|cba'\n")
    with qtbot.waitSignal(panel.attention_loaded, timeout=5000):
        panel.slider.setValue(2)
    assert "step 30: its run.attention_probe" in panel.status.text()

    # Looking back at step 30 while the run writes a new snapshot: the slider grows, the view stays.
    assert not panel.follow.isChecked()
    shutil.copy(run / "attention" / "step-000010.npz", run / "attention" / "step-000050.npz")
    qtbot.waitUntil(lambda: panel.slider.maximum() == 4, timeout=10_000)
    assert panel.slider.value() == 2 and "step 30" in panel.step_label.text()
    # Back at the newest, it follows again: the next snapshot is shown as it comes.
    panel.slider.setValue(4)
    assert panel.follow.isChecked()
    shutil.copy(run / "attention" / "step-000010.npz", run / "attention" / "step-000060.npz")
    qtbot.waitUntil(lambda: panel.slider.maximum() == 5, timeout=10_000)
    assert panel.slider.value() == 5 and "step 60" in panel.step_label.text()
    np.testing.assert_array_equal(panel.shown_matrix(), first)


def test_a_killed_worker_is_reported_and_restarted(qtbot, panel, tiny_ws):
    compute(qtbot, panel, ckpt(tiny_ws, 20))
    worker = panel.worker
    old_pid = worker.pid()
    with qtbot.waitSignal(worker.died, timeout=20_000):
        os.kill(old_pid, signal.SIGKILL)
    assert "was killed" in panel.status.text() and panel.status.property("error")
    qtbot.waitUntil(lambda: worker.is_ready() and worker.pid() != old_pid, timeout=WAIT_MS)
    assert "restarted" in panel.status.text()
    compute(qtbot, panel, ckpt(tiny_ws, 20), "abc")
    assert panel.shown_matrix().shape == (3, 3)


def test_the_text_follows_the_selected_run_until_the_user_types_one(qtbot, workspace):
    """A run's own attention probe, else the start of its data set's sample; the user's text stays."""
    from core import layout
    from core.config_text import set_value

    demo_data = os.path.join(workspace.data_dir, "demo")
    pieces = ["\n", "GREMIO", ":", "\n", "Good", " morrow", ",", " neighbour", ".", "\n"] * 20
    layout.atomic_write_json(os.path.join(demo_data, layout.PREVIEW), {"ids": list(range(len(pieces))),
                                                                     "pieces": pieces})
    plain = workspace.run("tiny")  # no attention_probe in its config
    probed = workspace.create_run("probed", set_value(plain.read_config_text(), "run.attention_probe", "abc|cba"))
    p = AttentionPanel()
    qtbot.addWidget(p)
    p.set_workspace(workspace.root)
    p.set_run_dir(plain.dir)
    shown = p.text.toPlainText()  # whole lines of the sample, at most 160 characters
    assert shown.startswith("GREMIO:\nGood morrow, neighbour.\n\nGREMIO:") and 120 < len(shown) <= 160
    assert shown.endswith(("GREMIO:", "neighbour.")) and "".join(pieces).lstrip("\n").startswith(shown)
    p.set_run_dir(probed.dir)
    assert p.text.toPlainText() == "abc|cba"
    # a run selected while its config was invalid (no probe to read), mended later: the tab, shown again,
    # reads the run's text (the demo's stayed on a Shakespeare run)
    good = probed.read_config_text()
    probed.write_config_text(good.replace("n_embd:", "n_embd: x #"))
    p.set_run_dir(probed.dir)
    assert p.text.toPlainText() != "abc|cba"
    probed.write_config_text(good)
    p.show()
    assert p.text.toPlainText() == "abc|cba"
    p.text.setPlainText("my own text")
    p.set_run_dir(plain.dir)
    assert p.text.toPlainText() == "my own text"
    p.hide()
    p.show()
    assert p.text.toPlainText() == "my own text"
    p.shutdown_workers(wait_ms=5000)
    p.pool.shutdown(wait_ms=5000)


def test_every_bottom_label_of_a_word_level_map_is_drawn(qtbot):
    """pyqtgraph drops a tick label that sticks out past the axis's end: with word tokens the first
    column's label (wider than a cell) went missing. Every label set is now one pyqtgraph draws."""
    from studio.views.attention.heatmap import AttentionHeatmap
    from tests.studio.helpers import axis_text_specs

    words = ("GREMIO", ":", "\n", "Good", " morrow", ",", " neighbour", " Baptista", ".", "\n") * 6
    T = len(words)
    m = np.tril(np.ones((T, T), dtype=np.float32))
    m /= m.sum(1, keepdims=True)
    heatmap = AttentionHeatmap()
    qtbot.addWidget(heatmap)
    heatmap.resize(540, 560)
    heatmap.show()
    heatmap.set_matrix(m, list(words), "t")
    qtbot.wait(50)
    axis = heatmap.plot.getPlotItem().getAxis("bottom")
    drawn = [spec[2] for spec in axis_text_specs(axis)]
    wanted = [text for _pos, text in axis._tickLevels[0]]
    assert len(wanted) >= 4 and drawn == wanted, (drawn, wanted)


def test_the_attention_map_and_thumbnails_follow_the_theme(qtbot, window, workspace):
    """In the dark theme the map was a white card with grey labels and white masked triangles in the
    thumbnails, beside dark training plots. The map's background, its masked cells (drawn blank) and the
    thumbnails' masked cells take the theme's plot background; its tick labels the theme's text colour."""
    from PySide6.QtGui import QColor

    from studio.theme import plot_colors
    from studio.views.attention.tokens import COLOURS as TOKEN_COLOURS
    from studio.workspace.attention_math import AttentionSet

    w = window(workspace.root)
    w.show_tab("attention")
    T = 16
    probs = np.tril(np.ones((T, T), dtype=np.float32))
    probs = np.broadcast_to(probs / probs.sum(1, keepdims=True), (2, 2, T, T)).copy()
    w.attention.session._show(AttentionSet(probs, list("the quick brown "), "fake"))
    for theme in ("dark", "light", "dark"):
        w.set_theme(theme)
        qtbot.wait(50)
        c = plot_colors(theme)
        heatmap = w.attention.heatmap
        image = heatmap.plot.grab().toImage()
        vb = heatmap.plot.getPlotItem().vb
        corner = vb.mapViewToDevice(QPointF(T - 1.5, 1.5)).toPoint()  # a masked cell: row 1, column T-2
        assert image.pixelColor(corner).name() == c["background"], (theme, image.pixelColor(corner).name())
        assert image.pixelColor(2, 2).name() == c["background"], theme  # the margin around the map
        axis = heatmap.plot.getPlotItem().getAxis("left")
        assert axis.textPen().color().name() == QColor(c["foreground"]).name(), theme
        assert axis.labelStyle["color"] == c["foreground"], theme  # the axis title too (it was grey)
        assert heatmap.bar.getAxis("left").labelStyle["color"] == c["foreground"], theme
        thumb = w.attention.grid.buttons[(0, 0)].icon().pixmap(40, 40).toImage()
        assert thumb.pixelColor(thumb.width() - 3, 2).name() == c["background"], theme  # masked corner
        assert thumb.pixelColor(2, thumb.height() - 3).name() != c["background"], theme  # attended cells
        browser = w.attention.tokens.browser  # the token view beside the map: white paper in both themes
        assert browser.viewport().grab().toImage().pixelColor(2, 2).name() == c["background"], theme
        text = TOKEN_COLOURS[theme]["text"]
        assert f"color:{text};" in browser.toHtml().replace(" ", "") or text in browser.toHtml(), theme
    w.set_theme("light")


def test_attention_export_offers_the_runs_folder(qtbot, window, workspace, monkeypatch):
    """Export > Image offered 'attention.png' in the folder the studio was started from; it offers the
    selected run's folder, as the plots' export does."""
    from PySide6.QtWidgets import QFileDialog

    from studio.workspace.attention_math import AttentionSet

    asked = []
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a: (asked.append(a[2]), ("", ""))[1])
    w = window(workspace.root)
    probs = np.ones((1, 1, 2, 2), dtype=np.float32) / 2
    w.attention.session._show(AttentionSet(probs, ["a", "b"], "fake"))
    w.attention._export_dialog("png")
    assert asked == [os.path.join(workspace.run("tiny").dir, "attention.png")]
