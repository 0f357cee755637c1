"""MetricsPlots: the live training curves (loss, val loss, LR, grad norm, tokens/s) of one run.

Reads a RunHistory (numpy views, no copies) and redraws at most every REDRAW_MS, however fast events
arrive: `mark_dirty()` only starts a timer. The whole history stays plotted; pyqtgraph downsamples it
(peak mode) and clips to the view. Parent runs and runs picked for comparison are drawn underneath.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QMenu,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.theme import plot_colors
from studio.views.training.overlay_key import OverlayKey
from studio.views.training.plot_items import (
    LogFriendlyAxis,
    draw_without_early_range,
    early_trace,
    export_view,
    free_spot,
    overlay_colour,
    overlay_without_early_range,
    step_readout,
)
from studio.workspace.metrics import RunHistory, Smoother

pg.setConfigOptions(antialias=False, imageAxisOrder="row-major")

REDRAW_MS = 100       # one panel per tick: <= 10 repaints/s, each panel ~2.5 times a second
X_MODES = {"step": ("Step", "step"), "tokens": ("Tokens", "tokens"), "time": ("Wall time (s)", "elapsed")}
PANELS = ("loss", "lr", "grad", "speed")
TITLES = {"loss": "Loss", "lr": "Learning rate", "grad": "Gradient norm", "speed": "Throughput (tokens/s)"}
LEGEND_ROOM = 2.5     # the loss plot shows its legend when at least this many legend heights tall


class MetricsPlots(QWidget):
    """Four linked plots plus their controls (x axis, smoothing, log-y, export) and a hover read-out."""

    export_requested = Signal(str)   # "png" | "svg" | "csv"; the owner asks for a path and calls export_*

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.history: RunHistory | None = None
        self.label = ""
        self.x_mode = "step"
        self.redraws = 0
        self._panel_version, self._next_panel = {}, PANELS[0]
        self._fixed_range = False  # empty-run ranges are set; auto-range resumes with the first step
        self._planned_steps = 0
        self._x_extent = 0.0  # the x range currently pinned (0 = auto)
        self._overlays: list[tuple[str, RunHistory, str]] = []
        self._smoother = Smoother(0.9)
        self._speed_smoother = Smoother(0.9)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(REDRAW_MS)
        self._timer.timeout.connect(self._on_timer_timeout)
        self._build_controls()
        self._build_plots()
        self._label_axes()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(4)
        lay.addLayout(self._controls)
        lay.addWidget(self.key.below)
        lay.addWidget(self.view, 1)
        lay.addWidget(self.readout)

    # ------------------------------------------------------------------ construction
    def _build_controls(self) -> None:
        self.x_combo = QComboBox()
        for key, (text, _col) in X_MODES.items():
            self.x_combo.addItem(text, key)
        self.x_combo.currentIndexChanged.connect(self._on_x_combo_changed)
        self.smooth_slider = QSlider(Qt.Orientation.Horizontal)
        self.smooth_slider.setRange(0, 99)
        self.smooth_slider.setValue(90)
        self.smooth_slider.setFixedWidth(120)
        self.smooth_slider.setToolTip("Exponential moving average of the train loss (0 = raw)")
        self.smooth_label = QLabel("0.90")
        self.smooth_slider.valueChanged.connect(self._on_smooth_slider_changed)
        self.log_check = QCheckBox("Log y")
        self.log_check.toggled.connect(self.set_log_y)
        self.export_button = QToolButton()
        self.export_button.setText("Export")
        self.export_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.export_button)
        for fmt, text in (("png", "Image (PNG)…"), ("svg", "Vector (SVG)…"), ("csv", "Data (CSV)…")):
            menu.addAction(text, lambda f=fmt: self.export_requested.emit(f))
        self.export_button.setMenu(menu)
        c = self._controls = QHBoxLayout()
        c.setSpacing(8)
        c.addWidget(QLabel("X axis"))
        c.addWidget(self.x_combo)
        c.addSpacing(12)
        c.addWidget(QLabel("Smoothing"))
        c.addWidget(self.smooth_slider)
        c.addWidget(self.smooth_label)
        c.addSpacing(12)
        c.addWidget(self.log_check)
        c.addSpacing(12)
        self.key = OverlayKey()  # which colour is which run, when other runs are drawn; under the row if narrow
        c.addWidget(self.key, 1)
        c.addWidget(self.export_button)
        self.readout = QLabel(" ")
        self.readout.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

    def _build_plots(self) -> None:
        self.view = pg.GraphicsLayoutWidget()
        self.plots: dict[str, pg.PlotItem] = {}
        for i, name in enumerate(PANELS):
            plot = self.view.addPlot(row=i // 2, col=i % 2, title=TITLES[name],
                                     axisItems={"left": LogFriendlyAxis("left")})
            plot.setDownsampling(auto=True, mode="peak")
            plot.setClipToView(True)
            plot.showGrid(x=True, y=True)
            for axis in ("left", "bottom"):
                # Grid lines on major ticks only: minor-tick grids cost ~60% of a repaint in software.
                plot.getAxis(axis).setStyle(maxTickLevel=0)
            plot.setMenuEnabled(False)
            plot.getAxis("left").setWidth(52)
            if name != "loss":
                plot.setXLink(self.plots["loss"])
            self.plots[name] = plot
        self.plots["loss"].addLegend(offset=(-10, 10), labelTextSize="8pt")
        P = self.plots
        self.overlay_items: list[tuple[pg.PlotItem, pg.PlotDataItem]] = []
        self.curves = {
            "raw": P["loss"].plot(name="train (raw)"),
            "smooth": P["loss"].plot(name="train (smoothed)"),
            "val": P["loss"].plot(name="val", symbol="o", symbolSize=5),
            "lr": P["lr"].plot(),
            "grad": P["grad"].plot(),
            "speed_raw": P["speed"].plot(),
            "speed": P["speed"].plot(),
        }
        self.curves["grad_early"] = early_trace(P["grad"])  # its first steps: drawn, not ranged over
        self.best_marker = pg.ScatterPlotItem(size=13, symbol="star")
        P["loss"].addItem(self.best_marker)
        # The best-val note sits in pixels in a corner of the loss plot free of curves (not in data
        # coordinates, where it ran across the curves and off the left edge).
        self.best_text = pg.TextItem(anchor=(0, 0))
        self.best_text.setParentItem(P["loss"].vb)
        self.best_corner = "bottom-left"
        P["loss"].vb.sigResized.connect(self._place_best_text)
        P["loss"].vb.sigRangeChanged.connect(self._place_best_text)
        self.clip_line = pg.InfiniteLine(angle=0, movable=False, label="clip",
                                         labelOpts={"position": 0.08, "anchors": [(0, 1), (0, 1)]})
        self.clip_line.setZValue(20)  # over the gradient-norm trace, its label on a filled box
        P["grad"].addItem(self.clip_line)
        self.clip_line.hide()
        self.cursors = {}
        for name, plot in P.items():
            line = pg.InfiniteLine(angle=90, movable=False)
            line.hide()
            plot.addItem(line, ignoreBounds=True)
            self.cursors[name] = line
        self.view.installEventFilter(self)
        self._mouse_proxy = pg.SignalProxy(self.view.scene().sigMouseMoved, rateLimit=30,
                                           slot=self._on_scene_mouse_moved)
        self.apply_theme()

    def apply_theme(self) -> None:
        c = plot_colors()
        self.view.setBackground(c["background"])
        for plot in self.plots.values():
            for axis in ("left", "bottom"):
                ax = plot.getAxis(axis)
                ax.setPen(pg.mkPen(c["foreground"]))
                ax.setTextPen(pg.mkPen(c["foreground"]))
            plot.titleLabel.setText(plot.titleLabel.text, color=c["foreground"], size="9pt")
            plot.showGrid(x=True, y=True, alpha=c["grid"])
        pens = {"raw": (c["raw"], 1), "smooth": (c["smooth"], 2), "val": (c["val"], 2), "lr": (c["lr"], 2),
                "grad": (c["grad"], 1), "grad_early": (c["grad"], 1), "speed_raw": (c["raw"], 1),
                "speed": (c["speed"], 2)}
        for key, (color, width) in pens.items():
            self.curves[key].setPen(pg.mkPen(color, width=width))
        self.curves["val"].setSymbolBrush(c["val"])
        self.curves["val"].setSymbolPen(c["val"])
        self.best_marker.setBrush(pg.mkBrush(c["best"]))
        self.best_marker.setPen(pg.mkPen(c["foreground"]))
        self.best_text.setColor(c["foreground"])
        self.clip_line.setPen(pg.mkPen(c["clip"], width=1, style=Qt.PenStyle.DashLine))
        self.clip_line.label.setColor(c["clip"])
        self.clip_line.label.fill = pg.mkBrush(c["background"])
        self.clip_line.label.border = pg.mkPen(c["clip"])
        self.clip_line.label.update()
        for line in self.cursors.values():
            line.setPen(pg.mkPen(c["cursor"], width=1, style=Qt.PenStyle.DotLine))
        legend = self.plots["loss"].legend
        if legend is not None:
            legend.setLabelTextColor(c["foreground"])
        self._panel_version, self._next_panel = {}, PANELS[0]  # every panel stale
        if hasattr(self, "x_mode"):
            self._label_axes()
        self._draw_overlays()
        self.mark_dirty()

    # ------------------------------------------------------------------ inputs
    def set_history(self, history: RunHistory | None, label: str = "", planned_steps: int = 0) -> None:
        """Follow `history`; before its first step the axes span the planned steps (not -0.5..0.5)."""
        self.history, self.label = history, label
        self.key.show_key(self.label, self._overlays, plot_colors())
        self._smoother.reset()
        self._speed_smoother.reset()
        self._panel_version, self._next_panel = {}, PANELS[0]  # every panel stale
        self._planned_steps = planned_steps
        self._x_extent = 0.0
        if history is None or not len(history.steps):
            for plot in self.plots.values():
                plot.setRange(xRange=(0, max(1, planned_steps or 100)), yRange=(0, 1), padding=0.02)
            self._fixed_range = True
        else:
            self._apply_x_extent(history)
        self.mark_dirty()

    def x_extent(self, h: RunHistory) -> float:
        """Where the x axis ends while a run trains: its planned end (steps or tokens); 0 = auto-range.

        A fixed extent means the x axes do not move as points arrive, so a refresh repaints one panel's
        curves instead of all four plots' axes (they are linked) - the main cost of following a run.
        """
        planned = h.max_steps or self._planned_steps
        if not planned or self.x_mode == "time":
            return 0.0
        if self.x_mode == "tokens":
            per_step = (h.start or {}).get("tokens_per_step") or 0
            seen = h.steps["tokens"][-1] if len(h.steps) else 0
            return float(max(planned * per_step, seen))
        return float(max(planned, h.step))  # a run may go past the plan (resumed with more steps)

    def _apply_x_extent(self, h: RunHistory) -> None:
        extent = self.x_extent(h)
        if extent == self._x_extent:
            return
        self._x_extent = extent
        if extent > 0:
            self.plots["loss"].setXRange(0, extent, padding=0.02)  # the other plots are x-linked
        else:
            for plot in self.plots.values():
                plot.enableAutoRange(axis="x")

    def set_overlays(self, overlays: list[tuple[str, RunHistory, str]]) -> None:
        """Other runs drawn under this one: (label, history, kind) with kind 'parent' or 'compare'."""
        self._overlays = list(overlays)
        self._draw_overlays()
        if self._fixed_range and self._overlays:  # an empty fork: range over its parent's curves
            for plot in self.plots.values():
                plot.enableAutoRange(axis="y")

    def set_smoothing(self, weight: float) -> None:
        self.smooth_slider.setValue(int(round(max(0.0, min(0.99, weight)) * 100)))

    def smoothing(self) -> float:
        return self.smooth_slider.value() / 100.0

    def set_x_mode(self, mode: str) -> None:
        index = self.x_combo.findData(mode)
        if index >= 0:
            self.x_combo.setCurrentIndex(index)

    def set_log_y(self, on: bool) -> None:
        if self.log_check.isChecked() != on:
            self.log_check.setChecked(on)
            return
        for name in ("loss", "grad"):
            self.plots[name].setLogMode(y=on)
        self._panel_version = {}  # the best-val star and the clip line are placed in view units
        self.redraw()

    def mark_dirty(self) -> None:
        """Ask for a redraw; many calls within REDRAW_MS make one redraw."""
        if not self._timer.isActive():
            self._timer.start()

    # ------------------------------------------------------------------ drawing
    def _x(self, history: RunHistory, table: str = "steps") -> np.ndarray:
        return getattr(history, table)[X_MODES[self.x_mode][1]]

    def _on_timer_timeout(self) -> None:
        """Bring one stale panel up to date per tick (round robin), so a tick costs one panel's repaint.

        With four panels at REDRAW_MS each panel refreshes ~5 times a second; a full repaint of all four
        in software rendering is what made the event loop stall before.
        """
        h = self.history
        if h is None:
            self.redraw()
            return
        stale = [name for name in PANELS if self._panel_version.get(name) != h.version]
        if not stale:
            return
        start = PANELS.index(self._next_panel)
        name = next(n for n in PANELS[start:] + PANELS[:start] if n in stale)
        self._next_panel = PANELS[(PANELS.index(name) + 1) % len(PANELS)]
        self._draw_panel(name, h)
        if name == "loss":
            self.redraws += 1
        if len(stale) > 1:
            self._timer.start()

    def redraw(self) -> None:
        """Bring every panel up to date now (exports, screenshots, tests)."""
        h = self.history
        if h is None:
            for curve in self.curves.values():
                curve.setData([], [])
            self.best_marker.setData([], [])
            self.best_text.setText("")
            self.clip_line.hide()
            self._panel_version = {}
            return
        if all(self._panel_version.get(n) == h.version for n in PANELS):
            return
        self.redraws += 1
        for name in PANELS:
            self._draw_panel(name, h)

    def _draw_panel(self, name: str, h: RunHistory) -> None:
        self._panel_version[name] = h.version
        if self._fixed_range and len(h.steps):
            self._fixed_range = False
            for plot in self.plots.values():
                plot.enableAutoRange(axis="y")
            self._x_extent = -1.0  # force: the empty-run range is replaced by the run's extent
        if name == "loss":
            self._apply_x_extent(h)
        x, s = self._x(h), h.steps
        if name == "loss":
            self._smoother.set_weight(self.smoothing())
            self.curves["raw"].setData(x, s["loss"], connect="finite")
            self.curves["smooth"].setData(x, self._smoother.update(s["loss"]), connect="finite")
            self.curves["val"].setData(self._x(h, "evals"), h.evals["val_loss"], connect="finite")
            self._draw_best(h)
        elif name == "lr":
            self.curves["lr"].setData(x, s["lr"], connect="finite")
        elif name == "grad":
            draw_without_early_range(self.curves["grad_early"], self.curves["grad"], x, s["grad_norm"])
            clip = h.grad_clip
            if math.isfinite(clip) and clip > 0 and h.config_value("train", "clip_mode") in (None, "norm"):
                self.clip_line.show()  # first: a hidden label ignores setFormat (pyqtgraph InfLineLabel)
                self.clip_line.label.setFormat(f"clip {clip:g}")
                self.clip_line.setValue(math.log10(clip) if self.log_check.isChecked() else clip)
            else:
                self.clip_line.hide()
        else:
            self.curves["speed_raw"].setData(x, s["tokens_per_s"], connect="finite")
            self._speed_smoother.set_weight(self.smoothing())
            self.curves["speed"].setData(x, self._speed_smoother.update(s["tokens_per_s"]), connect="finite")

    def _draw_best(self, h: RunHistory) -> None:
        if h.best_val_step < 0:
            self.best_marker.setData([], [])
            self.best_text.setText("")
            return
        steps = h.evals["step"]
        i = int(np.searchsorted(steps, h.best_val_step))
        bx = float(self._x(h, "evals")[min(i, len(steps) - 1)])
        by = h.best_val_loss
        log = self.log_check.isChecked()
        if log and by <= 0:
            self.best_marker.setData([], [])
        else:  # a ScatterPlotItem does not follow the plot's log mode: give it view units
            self.best_marker.setData([bx], [math.log10(by) if log else by])
        self.best_text.setText(f"best val {by:.4f} @ step {h.best_val_step}")
        self._place_best_text()

    def _place_best_text(self, *_args) -> None:
        """Put the best-val note where the fewest curve points are: a corner of the loss plot, its top
        middle, or under the legend (pixels of the view box, so it never leaves the plot), never on the
        legend. A plot too low for its legend (a small window) shows the curves without it."""
        vb = self.plots["loss"].vb
        rect, box = vb.boundingRect(), self.best_text.boundingRect()
        W, H, bw, bh, m = rect.width(), rect.height(), box.width(), box.height(), 6.0  # noqa: N806
        legend = self.plots["loss"].legend
        if legend is not None:
            legend.setVisible(H >= LEGEND_ROOM * legend.boundingRect().height())
        if W <= bw or H <= bh or not self.best_text.toPlainText():
            return
        (x0, x1), (y0, y1) = vb.viewRange()
        xs, ys = [], []
        for key in ("raw", "smooth", "val"):
            cx, cy = self.curves[key].getData()
            if cx is not None and len(cx):
                xs.append((np.asarray(cx, dtype=float) - x0) / max(x1 - x0, 1e-12) * W)
                ys.append((y1 - np.asarray(cy, dtype=float)) / max(y1 - y0, 1e-12) * H)
        shown = legend is not None and legend.isVisible()
        lx, ly = (legend.pos().x(), legend.pos().y()) if shown else (W, 0.0)
        lw, lh = (legend.boundingRect().width(), legend.boundingRect().height()) if shown else (0.0, 0.0)
        spots = {"bottom-left": (m, H - m - bh), "top-left": (m, m), "top-middle": ((W - bw) / 2, m),
                 "under-legend": (W - m - bw, ly + lh + m), "bottom-right": (W - m - bw, H - m - bh)}
        spots = {k: (x, y, bw, bh) for k, (x, y) in spots.items() if y + bh <= H and not (
                 x < lx + lw and lx < x + bw and y < ly + lh and ly < y + bh)} or {"top-left": (m, m, bw, bh)}
        self.best_corner = free_spot(spots, np.concatenate(xs) if xs else np.empty(0),
                                     np.concatenate(ys) if ys else np.empty(0))
        self.best_text.setAnchor((0, 0))
        self.best_text.setPos(*spots[self.best_corner][:2])

    def _draw_overlays(self) -> None:
        for plot_item, item in self.overlay_items:
            plot_item.removeItem(item)
        self.overlay_items = []
        c = plot_colors()
        self.key.show_key(self.label, self._overlays, plot_colors())
        for i, (label, h, kind) in enumerate(self._overlays):
            color = overlay_colour(i, kind, c)
            width = 1 if kind == "parent" else 2
            x = self._x(h)
            smooth = Smoother(self.smoothing()).update(h.steps["loss"])
            items = [(self.plots["loss"], pg.PlotDataItem(x, smooth, connect="finite", name=label,
                                                          pen=pg.mkPen(color, width=width))),
                     (self.plots["loss"], pg.PlotDataItem(self._x(h, "evals"), h.evals["val_loss"],
                                                          connect="finite",
                                                          pen=pg.mkPen(color, style=Qt.PenStyle.DashLine))),
                     (self.plots["lr"], pg.PlotDataItem(x, h.steps["lr"], pen=pg.mkPen(color))),
                     (self.plots["speed"], pg.PlotDataItem(x, h.steps["tokens_per_s"], connect="finite",
                                                           pen=pg.mkPen(color)))]
            for plot_item, item in items:
                item.setZValue(-10)  # under the run's own curves
                plot_item.addItem(item)
                self.overlay_items.append((plot_item, item))
            grad = self.plots["grad"]
            self.overlay_items += [(grad, i) for i in overlay_without_early_range(grad, x, h.steps["grad_norm"],
                                                                                 pg.mkPen(color))]

    # ------------------------------------------------------------------ hover read-out
    def _on_scene_mouse_moved(self, args) -> None:
        pos = args[0]
        h = self.history
        for plot in self.plots.values():
            if plot.sceneBoundingRect().contains(pos) and h is not None and len(h.steps):
                xv = plot.vb.mapSceneToView(pos).x()
                self.readout.setText(self.readout_text(xv))
                for line in self.cursors.values():
                    line.setValue(xv)
                    line.show()
                return
        self.clear_readout()

    def clear_readout(self) -> None:
        """The mouse left the plots: no frozen values, no cursor line."""
        self.readout.setText(" ")
        for line in self.cursors.values():
            line.hide()

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 (Qt override)
        if watched is self.view and event.type() == QEvent.Type.Leave:
            self.clear_readout()
        return super().eventFilter(watched, event)

    def readout_text(self, xv: float) -> str:
        """The values of the step nearest to x = xv, in words."""
        h = self.history
        if h is None or not len(h.steps):
            return " "
        return step_readout(h, self._x(h), xv, self._smoother.update(h.steps["loss"]))

    # ------------------------------------------------------------------ export
    def export_image(self, path: str) -> None:
        """PNG or SVG of all four plots (by the file's extension)."""
        self.redraw()
        export_view(self.view, path, self.label or "training curves", plot_colors()["background"])

    def _label_axes(self) -> None:
        for name in ("grad", "speed"):
            self.plots[name].setLabel("bottom", X_MODES[self.x_mode][0], color=plot_colors()["foreground"])

    def _on_x_combo_changed(self, _index: int) -> None:
        self.x_mode = self.x_combo.currentData()
        self._label_axes()
        self._panel_version, self._next_panel = {}, PANELS[0]  # every panel stale
        self._draw_overlays()
        self.redraw()
        for plot in self.plots.values():
            plot.enableAutoRange(axis="y")
        self._x_extent = -1.0
        if self.history is not None:
            self._apply_x_extent(self.history)

    def _on_smooth_slider_changed(self, value: int) -> None:
        self.smooth_label.setText(f"{value / 100:.2f}")
        self._panel_version, self._next_panel = {}, PANELS[0]  # every panel stale
        self._draw_overlays()
        self.mark_dirty()
