"""LrFindDialog: Run → Find Learning Rate…, a learning-rate range test on the run's config (`llm-train
lr-find`, which writes nothing). The loss of each step is drawn against its rate as it comes (a log axis),
then the average and two rates that bracket the ones worth a run: the steepest fall of the loss and, more
cautious, a tenth of the rate at its lowest. Each has a *Use* button that puts it in train.lr (and a tenth
of it in train.min_lr)."""

from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QDialogButtonBox, QFormLayout, QHBoxLayout, QSpinBox, QWidget

from studio.controllers.lr_find import LrFindJob, LrFindResult
from studio.theme import plot_colors
from studio.views.common.job_dialog import JobDialog
from studio.views.common.screen_fit import resize_to_fit

STARTS = (1e-7, 1e-6, 1e-5, 1e-4)
ENDS = (1e-2, 1e-1, 1.0, 10.0)


class LrFindDialog(JobDialog):
    use_lr = Signal(float)  # the rate to put in train.lr

    def __init__(self, job: LrFindJob, run_name: str, config_path: str, parent: QWidget | None = None) -> None:
        super().__init__(f"Find a learning rate for {run_name}", parent)
        self.job, self.config_path = job, config_path
        self.result: LrFindResult | None = None
        self.steps = QSpinBox()
        self.steps.setRange(10, 1000)
        self.steps.setValue(60)
        self.steps.setSuffix(" steps")
        self.start, self.end = QComboBox(), QComboBox()
        for combo, values, pick in ((self.start, STARTS, 1e-6), (self.end, ENDS, 1.0)):
            for v in values:
                combo.addItem(f"{v:g}", v)
            combo.setCurrentIndex(values.index(pick))
        rates = QHBoxLayout()
        for widget in (self.start, self.end, self.steps):
            rates.addWidget(widget)
        rates.addStretch(1)
        form = QFormLayout()
        form.addRow("Rates from, to, in", rates)
        self.plot = pg.PlotWidget()
        self.plot.setLogMode(x=True)
        self.plot.setLabel("bottom", "learning rate")
        self.plot.setTitle("Training loss at each rate", size="10pt")  # a left label ran into the ticks
        self.plot.setMinimumHeight(260)
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.plot.addLegend(offset=(10, -10))  # bottom left: the loss starts high, it ends high
        for side in ("bottom", "left"):  # "learning rate (x0.001)" under ticks 1, 10, 100 read as rates of 1
            self.plot.getAxis(side).enableAutoSIPrefix(False)
        self.plot.setXRange(math.log10(STARTS[1]), math.log10(ENDS[2]), padding=0.02)  # the rates to come
        self.raw = self.plot.plot([], [], pen=None, symbol="o", symbolSize=4, name="one step")
        self.smooth = self.plot.plot([], [], name="average")
        self.mark = pg.InfiniteLine(angle=90, movable=False)        # the steepest fall
        self.cautious_mark = pg.InfiniteLine(angle=90, movable=False)  # a tenth of the lowest point's rate
        for mark in (self.mark, self.cautious_mark):
            mark.hide()
            self.plot.addItem(mark)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.run_button = self.buttons.addButton("Run the test", QDialogButtonBox.ButtonRole.ActionRole)
        self.run_button.clicked.connect(self.run_test)
        self.use_button = self.buttons.addButton("Use", QDialogButtonBox.ButtonRole.AcceptRole)
        self.use_button.clicked.connect(lambda: self._use("suggested_lr"))
        self.cautious_button = self.buttons.addButton("Use", QDialogButtonBox.ButtonRole.AcceptRole)
        self.cautious_button.clicked.connect(lambda: self._use("cautious_lr"))
        for button in (self.use_button, self.cautious_button):
            button.setEnabled(False)
        self.buttons.rejected.connect(self._on_close)
        self._lay_out(form, self.plot, self.buttons)
        self._set_status("Trains a copy of the model for a few dozen steps, raising the rate at every step, and "
                         "suggests the rate where the loss falls fastest. Nothing of the run is written.")
        job.progressed.connect(self._on_job_progressed)
        job.finished.connect(self._on_job_finished)
        self._points: tuple[list[float], list[float]] = ([], [])
        self.apply_theme()
        resize_to_fit(self, 720, 560)

    def apply_theme(self) -> None:
        c = plot_colors()
        self.plot.setBackground(c["background"])
        self.raw.setSymbolBrush(pg.mkBrush(c["raw"]))
        self.raw.setSymbolPen(pg.mkPen(c["raw"]))
        self.smooth.setPen(pg.mkPen(c["smooth"], width=2))
        self.mark.setPen(pg.mkPen(c["val"], width=1.5, style=Qt.PenStyle.DashLine))
        self.cautious_mark.setPen(pg.mkPen(c["foreground"], width=1, style=Qt.PenStyle.DotLine))

    def run_test(self) -> bool:
        start, end = self.start.currentData(), self.end.currentData()
        if not self.job.start(self.config_path, self.steps.value(), start, end):
            return False
        self._points = ([], [])
        for item in (self.raw, self.smooth):
            item.setData([], [])
        self.mark.hide()
        self.cautious_mark.hide()
        self.plot.setXRange(math.log10(start), math.log10(end), padding=0.02)
        self.plot.enableAutoRange(axis="y")
        self.result = None
        for button in (self.use_button, self.cautious_button):
            button.setEnabled(False)
            button.setText("Use")
        self.run_button.setEnabled(False)
        self.buttons.button(QDialogButtonBox.StandardButton.Close).setText("Cancel")
        self.progress.setRange(0, self.steps.value())
        self.progress.setValue(0)
        self.progress.show()
        self._set_status("Starting the engine…")
        return True

    def _on_job_progressed(self, step: int, steps: int, lr: float, loss: float) -> None:
        xs, ys = self._points
        xs.append(lr)
        ys.append(loss)
        self.raw.setData(xs, ys)
        self.progress.setRange(0, max(1, steps))
        self.progress.setValue(step)
        self._set_status(f"Step {step} of {steps}: rate {lr:.2g}, loss {loss:.4f}")

    def _on_job_finished(self, result: LrFindResult) -> None:
        self.result = result
        self.run_button.setEnabled(True)
        self.buttons.button(QDialogButtonBox.StandardButton.Close).setText("Close")
        if not result.ok:
            self._show_outcome(result, "The test", "")
            return
        self.raw.setData(result.lrs, result.losses)
        self.smooth.setData(result.lrs, result.smoothed)
        ended = (f" The loss diverged at {result.diverged_at:.2g}, after {len(result.lrs)} steps."
                 if result.diverged_at is not None else "")
        self._show_outcome(result, "The test", (
            f"Suggested train.lr: {result.suggested_lr:.2g} ({result.how}); more cautious: "
            f"{result.cautious_lr:.2g}, a tenth of the rate at the lowest loss. Rates between the two are worth a "
            f"run: how long it trains decides which is best.{ended}"
            if result.suggested_lr is not None and result.cautious_lr is not None
            else f"No suggestion: {result.how}.{ended}"))
        for key, mark, button in (("suggested_lr", self.mark, self.use_button),
                                  ("cautious_lr", self.cautious_mark, self.cautious_button)):
            lr = getattr(result, key)
            if lr is not None:
                mark.setValue(math.log10(lr))  # the view's units: the axis is log10
                mark.show()
                button.setText(f"Use {lr:.2g}")
                button.setEnabled(True)
        if result.smoothed:  # the range where it learns, not the divergence's heights
            first, low = result.smoothed[0], min(result.smoothed + result.losses)  # the steps' dots in view too
            span = max(first - low, 0.02 * abs(low) + 1e-3)
            self.plot.setYRange(low - 0.3 * span, first + 0.6 * span)

    def _use(self, key: str) -> None:
        lr = getattr(self.result, key) if self.result is not None else None
        if lr is not None:
            self.use_lr.emit(float(f"{lr:.2g}"))
            self.accept()

    def _on_close(self) -> None:
        if self.job.is_running():
            self.job.cancel()
        else:
            self.reject()
