"""Issue 9, the training plots: log-y star, range and tick labels; a new fork ranges over its parent;
a copy is not drawn as a parent and no run is listed twice; the best-val note stays inside the plot and
off the curves; the clip label is readable; the hover read-out clears when the mouse leaves."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QImage, QPainter
from PySide6.QtWidgets import QApplication

from studio.main_window import MainWindow
from studio.theme import plot_colors
from studio.views.training.plot_items import log_ticks
from tests.studio.helpers import select_run, write_finished_run


@pytest.fixture
def window(window):
    """At the default size, on the Training tab."""
    def make(workspace_root: str | None = None):
        w = window(workspace_root, size=(1360, 860))
        w.show_tab("training")
        return w

    return make



def _finished(workspace, name: str = "a", steps: int = 100):
    run = workspace.create_run(name, workspace.run("tiny").read_config_text())
    write_finished_run(run.dir, steps=steps)
    return run


def _labels(axis) -> list[tuple]:
    image = QImage(10, 10, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    specs = axis.generateDrawSpecs(painter)
    painter.end()
    return specs[2] if specs else []


def test_log_y_puts_the_best_star_on_the_curve_and_labels_do_not_overlap(qtbot, window, workspace):
    _finished(workspace)
    w = window(workspace.root)
    select_run(w, "a")
    plots = w.training.plots
    plots.log_check.setChecked(True)
    QApplication.processEvents()
    h = w.controller().history
    _, ys = plots.best_marker.getData()
    assert ys[0] == pytest.approx(math.log10(h.best_val_loss))  # view units of a log axis
    top = plots.plots["loss"].viewRange()[1][1]
    assert top < math.log10(h.steps["loss"].max()) + 0.1  # not stretched up to a star at 10**value
    for name in ("loss", "grad"):
        texts = _labels(plots.plots[name].getAxis("left"))
        assert len(texts) >= 2, name
        rects = [rect for rect, _flags, _text in texts]
        assert not any(a.intersects(b) for i, a in enumerate(rects) for b in rects[i + 1:]), name
        assert all("·" not in text and float(text) > 0 for _rect, _flags, text in texts), name


def test_log_ticks_keep_their_distance_over_any_range():
    for lo, hi in ((0.7, 1.1), (1.0, 80.0), (1e-4, 3e-3), (1.7, 1.75), (0.01, 1000.0)):
        for size in (120, 300, 800):
            vals = log_ticks(math.log10(lo), math.log10(hi), size)
            assert len(vals) >= 2, (lo, hi, size)
            gaps = np.diff(np.log10(vals)) * size / (math.log10(hi) - math.log10(lo))
            assert gaps.min() >= 22 and lo <= vals[0] and vals[-1] <= hi


def test_a_new_fork_ranges_over_its_parents_curves(qtbot, window, workspace):
    parent = workspace.run("tiny")
    write_finished_run(parent.dir, steps=100)
    w = window(workspace.root)
    child = w.session.fork_run(parent.dir, parent.checkpoints()[0].path, {"train.max_steps": 300}, "kid")
    w.runs_panel.select_run(child.dir)
    QApplication.processEvents()
    lo, hi = w.training.plots.plots["loss"].viewRange()[1]
    losses = w.session.controller(parent.dir).history.steps["loss"]
    assert lo <= losses.min() and hi >= losses.max() * 0.9  # the parent's loss is on screen
    glo, ghi = w.training.plots.plots["grad"].viewRange()[1]
    assert ghi >= w.session.controller(parent.dir).history.steps["grad_norm"].max() * 0.95
    step = parent.checkpoints()[0].step  # the bar starts where the fork will (it keeps the step count)
    assert w.training.progress.value() == step and w.training.progress.maximum() == 300, step


def _legend(w: MainWindow) -> list[str]:
    return [label.text for _sample, label in w.training.plots.plots["loss"].legend.items]


def test_a_copy_is_not_a_parent_and_no_run_is_listed_twice(qtbot, window, workspace):
    parent = workspace.run("tiny")
    write_finished_run(parent.dir, steps=100)
    w = window(workspace.root)
    w.copy_run(parent.dir)  # "New from this": a fresh copy of the settings
    assert not any("(parent)" in text for text in _legend(w)) and not w.training.plots.overlay_items
    child = w.session.fork_run(parent.dir, parent.checkpoints()[0].path, {"train.max_steps": 300}, "kid")
    w.runs_panel.select_run(child.dir)
    tree = w.runs_panel.tree
    tree.topLevelItem(0).setCheckState(0, Qt.CheckState.Checked)  # tick the parent for comparison too
    legend = _legend(w)
    assert "tiny (parent)" in legend and len(legend) == len(set(legend))
    assert sum("tiny" in text for text in legend) == 1


def _overfitting_run(workspace, name: str = "a", steps: int = 300) -> None:
    """A run whose val loss is best early (step 20) and rises after: the note's hard case."""
    from core import layout
    from core.protocol import encode, make_event

    run = workspace.create_run(name, workspace.run("tiny").read_config_text())
    lines = [make_event("start", max_steps=steps, start_step=0, resumed=False, config={"train": {}})]
    best = math.inf
    for s in range(1, steps + 1):
        loss = 3.0 * math.exp(-s / 15) + 1.0
        lines.append(make_event("step", step=s, tokens=256 * s, loss=loss, lr=1e-3, grad_norm=1.0,
                                clipped=False, tokens_per_s=2e4, elapsed_s=0.05 * s, step_ms=50.0))
        if s % 10 == 0:
            val = 1.4 + 0.004 * (s - 20) ** 2 / 10
            best = min(best, val)
            lines.append(make_event("eval", step=s, tokens=256 * s, train_loss=loss, val_loss=val,
                                    val_ppl=math.exp(val), best_val_loss=best))
    lines.append(make_event("done", step=steps, checkpoint="", best_val_loss=best))
    layout.atomic_write(os.path.join(run.dir, layout.METRICS), "".join(encode(e) for e in lines))


@pytest.mark.parametrize("shape", ["late", "early"])
def test_best_val_note_is_inside_the_plot_and_off_the_curves(qtbot, window, workspace, shape):
    if shape == "late":
        _finished(workspace, steps=300)
    else:
        _overfitting_run(workspace)
    w = window(workspace.root)
    select_run(w, "a")
    plots = w.training.plots
    plots.redraw()
    QApplication.processEvents()
    text, vb = plots.best_text, plots.plots["loss"].vb
    box = text.sceneBoundingRect()
    assert "best val" in text.toPlainText()
    assert vb.sceneBoundingRect().contains(box)
    for key in ("raw", "smooth", "val"):
        xs, ys = plots.curves[key].getData()
        hits = [i for i in range(0, len(xs), 3) if box.contains(vb.mapViewToScene(QPointF(xs[i], ys[i])))]
        assert not hits, key


def test_a_small_window_drops_the_legend_and_the_note_never_covers_it(qtbot, window, workspace):
    """At 1024 x 640 beside the runs list the loss plot is a strip: its legend hid the curves and the
    best-val note was drawn across it."""
    _finished(workspace, steps=300)
    w = window(workspace.root)
    select_run(w, "a")
    plots = w.training.plots
    legend, vb = plots.plots["loss"].legend, plots.plots["loss"].vb
    for size, shows_legend in (((1024, 640), False), ((1400, 980), True)):
        w.resize(*size)
        plots.redraw()
        QApplication.processEvents()
        assert legend.isVisible() == shows_legend, (size, vb.boundingRect().height())
        if shows_legend:
            assert not plots.best_text.sceneBoundingRect().intersects(legend.sceneBoundingRect())


def test_clip_label_is_readable_and_readout_clears_on_leave(qtbot, window, workspace):
    _finished(workspace)
    w = window(workspace.root)
    select_run(w, "a")
    plots = w.training.plots
    plots.redraw()
    QApplication.processEvents()  # the views take their ranges
    label = plots.clip_line.label
    assert plots.clip_line.isVisible() and label.toPlainText().startswith("clip 1")
    assert plots.clip_line.zValue() > plots.curves["grad"].zValue()
    assert label.fill.color().name() == plot_colors()["background"]  # a box under the text
    vb = plots.plots["loss"].vb
    plots._on_scene_mouse_moved((vb.mapViewToScene(QPointF(50, 2.0)),))
    assert plots.readout.text().startswith("step 50") and plots.cursors["loss"].isVisible()
    QApplication.sendEvent(plots.view, QEvent(QEvent.Type.Leave))
    assert plots.readout.text().strip() == "" and not plots.cursors["loss"].isVisible()


def test_compared_runs_are_named_in_the_key_even_where_the_legend_hides(qtbot, window, workspace):
    """Ticking runs to compare drew their curves in new colours, but at the default window size the
    loss plot is too low for its legend: nothing said which curve was which run. The controls row names
    each run in its curves' colour, whatever the size; with no other run drawn it is empty."""
    for name in "abcdef":
        _finished(workspace, name)
    w = window(workspace.root)
    select_run(w, "a")
    plots, colours = w.training.plots, plot_colors()
    assert plots.key.text() == ""
    w.runs_panel.set_compared(workspace.run("b").dir, True)
    QApplication.processEvents()
    assert not plots.plots["loss"].legend.isVisible()  # 1360 x 860 with four entries: no room
    key = plots.key.text()
    assert plots.key.isVisible() and "a (this run)" in key and "b" in key
    assert key.index(colours["smooth"]) < key.index("a (this run)") < key.index(colours["overlay"][0])
    overlay = [item for _plot, item in plots.overlay_items if item.name() == "b"]
    assert overlay and overlay[0].opts["pen"].color().name() == colours["overlay"][0]
    assert not plots.key.below.isVisible()  # in the controls row while it has room
    w.resize(1024, 640)  # a laptop window: the key never widens the tab; it goes to a row of its own
    QApplication.processEvents()
    assert w.minimumSizeHint().width() <= 1024 and plots.smooth_label.width() >= plots.smooth_label.minimumSizeHint().width()
    below = plots.key.below  # at 1024 px only '━ a' showed, cut, in the controls row
    assert below.isVisible() and not plots.key.isVisible() and below.text() == key
    assert below.width() >= below.sizeHint().width() and below.geometry().top() > plots.log_check.geometry().bottom()
    w.resize(1360, 860)
    QApplication.processEvents()
    assert plots.key.isVisible() and not below.isVisible()  # room again: back in the row
    for name in "cdef":  # past three other runs the key counts the rest; its tooltip names them all
        w.runs_panel.set_compared(workspace.run(name).dir, True)
    QApplication.processEvents()
    assert len(plots._overlays) == 5 and "+2 more" in plots.key.text()
    assert all(name in plots.key.toolTip() for name in "bcdef")
    for name in "bcdef":
        w.runs_panel.set_compared(workspace.run(name).dir, False)
    QApplication.processEvents()
    assert plots.key.text() == ""


def test_early_gradient_spikes_do_not_flatten_the_rest_of_the_run(qtbot, window, workspace):
    """A fresh model's gradient norm is tens of times its later size for a few steps: the plot's range
    followed them and the other 290 steps were a flat line on the axis. The early steps are drawn but do
    not set the range; a spike later in the run still does."""
    from core import layout
    from core.protocol import encode, make_event

    def run_with(name: str, norms: list[float]) -> None:
        run = workspace.create_run(name, workspace.run("tiny").read_config_text())
        lines = [make_event("start", max_steps=len(norms), start_step=0, resumed=False, config={"train": {}})]
        for s, g in enumerate(norms, 1):
            lines.append(make_event("step", step=s, tokens=256 * s, loss=2.0, lr=1e-3, grad_norm=g,
                                    clipped=False, tokens_per_s=2e4, elapsed_s=0.05 * s, step_ms=50.0))
        lines.append(make_event("done", step=len(norms), checkpoint="", best_val_loss=2.0))
        layout.atomic_write(os.path.join(run.dir, layout.METRICS), "".join(encode(e) for e in lines))

    calm = [0.8 + 0.2 * math.sin(s) for s in range(300)]
    run_with("early", [40.0, 25.0, 12.0] + calm[3:])
    run_with("late", calm[:200] + [6.0] + calm[201:])
    w = window(workspace.root)
    plots = w.training.plots
    tops = {}
    for name in ("early", "late"):
        select_run(w, name)
        qtbot.waitUntil(lambda n=name: plots.label == n)
        plots.redraw()
        QApplication.processEvents()
        tops[name] = plots.plots["grad"].viewRange()[1][1]
    assert 1.0 < tops["early"] < 2.0, tops  # the calm steps fill the plot
    assert tops["late"] >= 6.0, tops  # a spike mid-run is in view
    xs, ys = plots.curves["grad_early"].getData()
    ys_all = np.concatenate([ys, plots.curves["grad"].getData()[1]])
    assert len(ys_all) >= 300  # every step drawn, the early ones included
    w.runs_panel.set_compared(workspace.run("early").dir, True)  # on "late": a compared run's start neither
    QApplication.processEvents()
    plots.redraw()
    assert len(plots._overlays) == 1 and 6.0 <= plots.plots["grad"].viewRange()[1][1] < 10.0
    drawn = [item.getData()[1] for plot, item in plots.overlay_items if plot is plots.plots["grad"]]
    assert max(len(y) for y in drawn if y is not None) >= 280 and max(max(y) for y in drawn if y is not None and len(y)) == 40.0
