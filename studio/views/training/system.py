"""SystemView: CPU and memory of the training run's processes, and GPU utilisation, memory and temperature
when there is a GPU, plotted against wall time beside the training curves (observes a SystemMonitor)."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from studio.controllers.system import SystemMonitor
from studio.theme import plot_colors


def _fmt(value, unit: str, digits: int = 0) -> str:
    return "–" if value is None or (isinstance(value, float) and not math.isfinite(value)) else \
        f"{value:.{digits}f} {unit}"


class SecondsAxis(pg.AxisItem):
    """The time axis with its unit on each label ('12 s'): no axis title row under plots this low."""

    def tickStrings(self, values, scale, spacing):  # noqa: N802 (pyqtgraph's name)
        return [f"{s} s" for s in super().tickStrings(values, scale, spacing)]


class SystemView(QWidget):
    """Three small plots (CPU %, memory MiB, GPU % and °C) and a line of the latest figures."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.monitor: SystemMonitor | None = None
        self.summary = QLabel("System figures appear while the run trains.")
        self.plots: dict[str, pg.PlotWidget] = {}
        self.curves: dict[str, pg.PlotDataItem] = {}
        # In the bottom pane's ~130 px the plot area was ~25 px under a title row and a row for 's': the
        # left axis's labels ran into each other. The unit goes on the time labels, the left axis labels
        # only as many levels as fill half its height, and the plots show once there is something to plot.
        self.plot_row = QWidget()
        row = QHBoxLayout(self.plot_row)
        row.setContentsMargins(0, 0, 0, 0)
        for key, title in (("cpu", "CPU %  (100 = one core)"), ("mem", "Memory (MiB)"), ("gpu", "GPU % / °C")):
            plot = pg.PlotWidget(axisItems={"bottom": SecondsAxis("bottom")})
            plot.setTitle(title, size="9pt")
            plot.setMinimumHeight(90)
            plot.showGrid(x=True, y=True, alpha=0.2)
            plot.getAxis("left").setStyle(textFillLimits=[(0, 0.5)])  # no level of labels filling over half
            self.plots[key] = plot
            row.addWidget(plot)
        self.plots["gpu"].hide()
        self.plot_row.hide()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 4, 0, 0)
        lay.addWidget(self.summary)
        lay.addWidget(self.plot_row, 1)
        lay.addStretch(0)
        self.apply_theme()

    def apply_theme(self) -> None:
        colors = plot_colors()
        for plot in self.plots.values():
            plot.setBackground(colors["background"])
        pens = {"cpu_percent": ("cpu", colors["smooth"], "CPU"), "rss_mb": ("mem", colors["lr"], "RAM"),
                "gpu_mem_mb": ("mem", colors["grad"], "GPU memory"),
                "gpu_util_percent": ("gpu", colors["speed"], "GPU %"), "gpu_temp_c": ("gpu", colors["val"], "°C")}
        for key, (plot, color, label) in pens.items():
            if key in self.curves:
                self.curves[key].setPen(pg.mkPen(color, width=1.5))
            else:
                if plot in ("mem", "gpu") and self.plots[plot].plotItem.legend is None:
                    self.plots[plot].addLegend(offset=(4, 4), labelTextSize="8pt")
                self.curves[key] = self.plots[plot].plot(pen=pg.mkPen(color, width=1.5), name=label)

    def _list_gpu_memory(self, has_gpu: bool) -> None:
        """The memory plot's legend names 'GPU memory' only where there is a GPU (it was listed, with no
        curve, on every machine)."""
        legend, curve = self.plots["mem"].plotItem.legend, self.curves["gpu_mem_mb"]
        if has_gpu and legend.getLabel(curve) is None:
            legend.addItem(curve, "GPU memory")
        elif not has_gpu and legend.getLabel(curve) is not None:
            legend.removeItem(curve)

    def set_monitor(self, monitor: SystemMonitor) -> None:
        self.monitor = monitor
        monitor.sampled.connect(self.redraw)
        self.redraw()

    def redraw(self) -> None:
        m = self.monitor
        if m is None:
            return
        t = np.asarray(m.series["t"], dtype=float)
        for key, curve in self.curves.items():
            y = np.asarray(m.series[key], dtype=float)
            ok = np.isfinite(y)
            curve.setData(t[ok], y[ok]) if ok.any() else curve.setData([], [])
        self.plots["gpu"].setVisible(bool(m.has_gpu))
        self._list_gpu_memory(bool(m.has_gpu))
        last = m.last
        self.plot_row.setVisible(bool(last))  # empty plots only showed pyqtgraph's 0..1 axes
        if not last:
            self.summary.setText("System figures appear while the run trains.")
            return
        text = (f"CPU {_fmt(last.get('cpu_percent'), '%')} · RAM {_fmt(last.get('rss_mb'), 'MiB')}"
                f" · {last.get('processes', 1)} process(es)")
        if m.has_gpu:
            text += (f" · GPU {_fmt(last.get('gpu_util_percent'), '%')}, "
                     f"{_fmt(last.get('gpu_mem_mb'), 'MiB')} of {_fmt(last.get('gpu_mem_total_mb'), 'MiB')}, "
                     f"{_fmt(last.get('gpu_temp_c'), '°C')}")
        elif m.has_gpu is None:
            text += " · GPU: asking nvidia-smi…"
        else:
            text += " · no GPU (nvidia-smi not found)"
        self.summary.setText(text)
