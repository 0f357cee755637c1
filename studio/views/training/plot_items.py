"""Plot pieces for MetricsPlots: an axis whose log-scale labels never overlap, the placement of a note
(the best val loss) in the corner of a plot where no curve runs, and image export.

pyqtgraph's own log axis labels every minor tick (2..9 x 10^n) in scientific notation: over less than a
decade they pile up ("8·10¹ 7·10¹ ..."). LogFriendlyAxis picks ticks by the pixel gap they will have.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg

MIN_GAP_PX = 22          # vertical room a tick label needs
DECADE_SETS = ((1, 2, 3, 4, 5, 6, 7, 8, 9), (1, 2, 5), (1, 3), (1,))


def log_ticks(lo_log: float, hi_log: float, size_px: float, min_gap: float = MIN_GAP_PX) -> list[float]:
    """Tick values (linear, not log) for a log axis from 10**lo_log to 10**hi_log drawn over size_px
    pixels: the densest 'nice' set whose labels are at least min_gap pixels apart."""
    if not (math.isfinite(lo_log) and math.isfinite(hi_log)) or hi_log <= lo_log or size_px <= 0:
        return []
    lo, hi = 10.0 ** lo_log, 10.0 ** hi_log
    px_per_decade = size_px / (hi_log - lo_log)

    def spaced(values) -> list[float] | None:
        vals = [v for v in values if lo <= v <= hi]
        if len(vals) < 2:
            return None
        gaps = np.diff(np.log10(vals)) * px_per_decade
        return vals if gaps.min() >= min_gap else None

    if hi / lo >= 10:  # a decade or more: 1-2-5 style sets per decade, then every k-th decade
        decades = range(math.floor(lo_log), math.ceil(hi_log) + 1)
        for mantissas in DECADE_SETS:
            vals = spaced([m * 10.0 ** d for d in decades for m in mantissas])
            if vals:
                return vals
        for k in (2, 3, 5, 10, 20):
            vals = spaced([10.0 ** d for d in decades if d % k == 0])
            if vals:
                return vals
        return [10.0 ** round(lo_log)] if lo <= 10.0 ** round(lo_log) <= hi else []
    # Less than a decade: evenly stepped values, the step rounded to 1, 2 or 5 x 10^k.
    k = math.floor(math.log10(hi - lo)) - 2
    for _ in range(8):
        for m in (1, 2, 5):
            step = m * 10.0 ** k
            first = math.ceil(lo / step) * step
            count = int((hi - first) / step) + 1
            if count <= 60:
                vals = spaced([first + i * step for i in range(count)])
                if vals:
                    return vals
        k += 1
    return []


class LogFriendlyAxis(pg.AxisItem):
    """An AxisItem that, in log mode, labels only ticks with room and writes them as plain numbers."""

    def tickValues(self, minVal: float, maxVal: float, size: float):  # noqa: N802, N803 (pyqtgraph API)
        if not self.logMode:
            return super().tickValues(minVal, maxVal, size)
        values = log_ticks(minVal, maxVal, size)
        return [(1.0, [math.log10(v) for v in values])]

    def tickStrings(self, values, scale, spacing):  # noqa: N802 (pyqtgraph API)
        if not self.logMode:
            return super().tickStrings(values, scale, spacing)
        return [f"{10.0 ** v:.3g}" for v in values]


def free_spot(spots: dict[str, tuple[float, float, float, float]], xs: np.ndarray, ys: np.ndarray) -> str:
    """The name of the spot (x, y, w, h in pixels) with the fewest curve points (xs, ys in pixels) under
    it; ties go to the first spot listed."""
    names = list(spots)

    def hits(name: str) -> int:
        x, y, w, h = spots[name]
        return int(np.count_nonzero((xs >= x) & (xs <= x + w) & (ys >= y) & (ys <= y + h)))

    return min(names, key=lambda n: (hits(n), names.index(n)))


def export_view(view, path: str, title: str, background: str) -> None:
    """Render a GraphicsLayoutWidget to PNG (2x, crisp on high-DPI screens) or SVG (by the extension)."""
    from PySide6.QtCore import QRectF, QSize
    from PySide6.QtGui import QColor, QImage, QPainter

    size = view.size()
    if path.lower().endswith(".svg"):
        # Qt's own SVG generator: pyqtgraph's SVG exporter chokes on paths with gaps (NaN losses).
        from PySide6.QtSvg import QSvgGenerator

        gen = QSvgGenerator()
        gen.setFileName(path)
        gen.setSize(QSize(size.width(), size.height()))
        gen.setViewBox(QRectF(0, 0, size.width(), size.height()))
        gen.setResolution(view.logicalDpiX())  # else 72 dpi against the screen's 96: text and axes drawn 4/3 large
        gen.setTitle(title)
        painter = QPainter(gen)
        view.render(painter)
        painter.end()
        return
    ratio = 2
    image = QImage(size.width() * ratio, size.height() * ratio, QImage.Format.Format_ARGB32)
    image.setDevicePixelRatio(ratio)
    image.fill(QColor(background))
    painter = QPainter(image)
    # the target in logical pixels: left null, QGraphicsView takes the image's device pixels (2x) as the
    # target and draws the scene twice as large, so only the top-left plot showed, cropped
    view.render(painter, QRectF(0, 0, size.width(), size.height()), view.viewport().rect())
    painter.end()
    if not image.save(path):
        raise OSError(f"could not write {path}")


def overlay_colour(i: int, kind: str, colours: dict) -> str:
    """The colour of the i-th run drawn under the shown one: grey for its parent, else the overlay cycle."""
    return colours["parent"] if kind == "parent" else colours["overlay"][i % len(colours["overlay"])]


def step_readout(h, x: np.ndarray, xv: float, smooth: np.ndarray) -> str:
    """The values of a run's step nearest to x = xv (x: its steps on the plots' x axis), in words."""
    i = int(np.clip(np.searchsorted(x, xv), 0, len(x) - 1))
    if i > 0 and abs(x[i - 1] - xv) < abs(x[i] - xv):
        i -= 1
    s = h.steps
    parts = [f"step {int(s['step'][i])}", f"tokens {int(s['tokens'][i]):,}" if math.isfinite(s["tokens"][i])
             else "", f"t {s['elapsed'][i]:.1f}s", f"loss {s['loss'][i]:.4f} (smoothed {smooth[i]:.4f})",
             f"lr {s['lr'][i]:.3g}", f"grad norm {s['grad_norm'][i]:.3g}",
             f"{s['tokens_per_s'][i]:,.0f} tok/s"]
    if len(h.evals):
        j = int(np.searchsorted(h.evals["step"], s["step"][i], side="right")) - 1
        if j >= 0:
            parts.append(f"val {h.evals['val_loss'][j]:.4f} @ {int(h.evals['step'][j])}")
    return "   ".join(p for p in parts if p)


EARLY_SHARE = 20  # the first 1/20 of the steps drawn (from 100 steps on) do not set the y range


def early_trace(plot: pg.PlotItem) -> pg.PlotDataItem:
    """A trace in `plot` that the plot's automatic y range ignores (draw_without_early_range's `early`)."""
    item = pg.PlotDataItem()
    plot.addItem(item, ignoreBounds=True)
    return item


def overlay_without_early_range(plot: pg.PlotItem, x: np.ndarray, y: np.ndarray, pen) -> list[pg.PlotDataItem]:
    """Another run's trace under this one's (z -10), its first steps out of the y range as the run's own
    (draw_without_early_range): a compared run's start had set the range the run's own trace leaves out.
    Returns the items added to `plot`, for removal."""
    early, rest = pg.PlotDataItem(pen=pen), pg.PlotDataItem(pen=pen)
    draw_without_early_range(early, rest, x, y)
    for item in (early, rest):
        item.setZValue(-10)
    plot.addItem(early, ignoreBounds=True)
    plot.addItem(rest)
    return [early, rest]


def draw_without_early_range(early: pg.PlotDataItem, rest: pg.PlotDataItem, x: np.ndarray, y: np.ndarray) -> None:
    """Draw a trace as two joined pieces: its first steps in `early` (added to the plot with ignoreBounds),
    the rest in `rest`. The gradient norm of a fresh model is tens of times its later size for a few steps;
    scaled to those, the rest of the run was a flat line along the axis. Spikes later in the run still set
    the range; the early ones are drawn and run off the top."""
    k = len(x) // EARLY_SHARE if len(x) >= 100 else 0
    early.setData(x[:k + 1] if k else [], y[:k + 1] if k else [], connect="finite")
    rest.setData(x[k:], y[k:], connect="finite")
