"""AttentionHeatmap: one [T, T] attention matrix as an image, tokens on both axes, colour bar, hover read-out.

Rows are the attending tokens ("from", top to bottom), columns the attended ones ("to", left to right),
so the causal structure is the familiar lower triangle. Images are row-major (pyqtgraph's default would
show the map transposed).
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtGui import QFont, QFontMetrics
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from studio.theme import plot_colors
from studio.workspace.token_labels import visible

pg.setConfigOptions(imageAxisOrder="row-major")

COLORMAP = "viridis"
MAX_LABELS = 48  # more tokens than this: label every k-th one so the axis stays readable


def colormap() -> pg.ColorMap:
    return pg.colormap.get(COLORMAP)


def lookup_table() -> np.ndarray:
    """(256, 3) uint8 colours of the map (thumbnails, the token view)."""
    return colormap().getLookupTable(0.0, 1.0, 256, alpha=False)


def _label(piece: str, width: int = 10) -> str:
    text = visible(piece)
    return text if len(text) <= width else text[: width - 1] + "…"


class AttentionHeatmap(QWidget):
    """The big map of the attention panel."""

    cell_hovered = Signal(int, int, float)   # from (row), to (column), weight
    cell_clicked = Signal(int, int)          # from (row), to (column)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._matrix = np.zeros((0, 0), dtype=np.float32)
        self._tokens: list[str] = []
        self.plot = pg.PlotWidget()
        item = self.plot.getPlotItem()
        item.setMenuEnabled(False)
        item.hideButtons()
        item.invertY(True)
        item.setAspectLocked(False)
        font = QFont()
        font.setPointSize(8)
        for side in ("left", "bottom"):
            item.getAxis(side).setStyle(tickFont=font, tickLength=0)
        self.image = pg.ImageItem(axisOrder="row-major")
        item.addItem(self.image)
        self.bar = pg.ColorBarItem(values=(0.0, 1.0), colorMap=colormap(), width=14, interactive=False,
                                   label="attention weight")
        self.bar.setImageItem(self.image, insert_in=item)
        self.apply_theme()
        self.title = QLabel()
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.title.setStyleSheet("font-weight: 600;")
        self.readout = QLabel("Hover over the map to read a weight.")
        self.readout.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.readout)
        self.plot.scene().sigMouseMoved.connect(self._on_scene_mouse_moved)
        self.plot.scene().sigMouseClicked.connect(self._on_scene_mouse_clicked)

    def apply_theme(self) -> None:
        """The theme's plot colours: background (the blank masked cells show it), axes, labels, colour bar
        (the map was a white card with grey labels in the dark theme)."""
        c = plot_colors()
        self.plot.setBackground(c["background"])
        item = self.plot.getPlotItem()
        bar_frame = [self.bar.getAxis(side) for side in ("left", "top", "bottom", "right")]
        for axis in (item.getAxis("left"), item.getAxis("bottom"), *bar_frame):
            axis.setTextPen(c["foreground"])
            axis.setPen(c["cursor"])
        # after the pens: an axis's setPen also recolours its title (grey, low contrast, in both themes)
        for side, label in (("left", "from (query token)"), ("bottom", "to (key token)")):
            item.setLabel(side, label, color=c["foreground"])
        self.bar.getAxis("left").setLabel("attention weight", color=c["foreground"])  # pyqtgraph puts it left

    # ------------------------------------------------------------------ content
    def set_matrix(self, matrix: np.ndarray, tokens: list[str], title: str = "",
                   levels: tuple[float, float] | None = (0.0, 1.0)) -> None:
        """Show a [T, T] matrix; levels None scales the colours to the matrix's own maximum."""
        matrix = np.asarray(matrix, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] != len(tokens):
            raise ValueError(f"expected a [T, T] matrix for {len(tokens)} tokens, got {list(matrix.shape)}")
        self._matrix, self._tokens = matrix, list(tokens)
        if levels is None:
            levels = (0.0, max(float(matrix.max()) if matrix.size else 1.0, 1e-6))
        shown = matrix.copy()
        shown[np.triu_indices(matrix.shape[0], 1)] = np.nan  # masked cells (the future) are left blank
        self.image.setImage(shown, autoLevels=False)
        self.image.setRect(0, 0, matrix.shape[1], matrix.shape[0])
        self.bar.setLevels(levels)
        self.title.setText(title)
        self._set_ticks()
        n = max(1, matrix.shape[0])
        self.plot.getPlotItem().setRange(xRange=(0, n), yRange=(0, n), padding=0.0)

    def _set_ticks(self) -> None:
        T = len(self._tokens)
        room = max(MAX_LABELS, self.plot.height() // 9)  # about one label per 9 pixels
        every = max(1, math.ceil(T / room))
        item = self.plot.getPlotItem()
        font = QFont()
        font.setPointSize(8 if T <= 40 else 7)
        labels = [_label(t) for t in self._tokens]
        # Below the map the labels stand side by side: word tokens (BPE) need more than a cell each, so
        # label every k-th column where the widest label would run into the next.
        cell = max(1.0, (item.vb.width() or self.plot.width()) / max(T, 1))
        metrics = QFontMetrics(font)
        widest = max((metrics.horizontalAdvance(t) for t in labels), default=0)
        every_x = max(every, math.ceil((widest + 3) / cell))
        # pyqtgraph drops a label that would stick out past the axis's left end: the first column's label
        # went missing whenever it was wider than a cell, so the bottom labels start at the first that fits
        first = next((i for i, t in enumerate(labels) if metrics.horizontalAdvance(t) / 2 <= (i + 0.5) * cell), 0)
        for side, k, start in (("bottom", every_x, first), ("left", every, 0)):
            item.getAxis(side).setStyle(tickFont=font)
            item.getAxis(side).setTicks([[(i + 0.5, labels[i]) for i in range(start, T, k)], []])

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt override): how many labels fit depends on the width
        super().resizeEvent(event)
        if self._tokens:
            self._set_ticks()

    def matrix(self) -> np.ndarray:
        return self._matrix

    def tokens(self) -> list[str]:
        return list(self._tokens)

    def clear(self) -> None:
        self._matrix, self._tokens = np.zeros((0, 0), dtype=np.float32), []
        self.image.clear()
        self.title.setText("")
        self._set_ticks()

    # ------------------------------------------------------------------ mouse
    def cell_at(self, scene_pos: QPointF) -> tuple[int, int] | None:
        if not self._matrix.size:
            return None
        p = self.plot.getPlotItem().vb.mapSceneToView(scene_pos)
        row, col = math.floor(p.y()), math.floor(p.x())
        T = self._matrix.shape[0]
        if 0 <= row < T and 0 <= col < T:
            return row, col
        return None

    def describe(self, row: int, col: int) -> str:
        w = float(self._matrix[row, col])
        return (f"from <b>{_label(self._tokens[row], 24)}</b> (#{row}) → to <b>{_label(self._tokens[col], 24)}"
                f"</b> (#{col}): weight <b>{w:.4f}</b>" + ("  (masked: a token never sees the future)"
                                                         if col > row and w == 0 else ""))

    def _on_scene_mouse_moved(self, pos: QPointF) -> None:
        cell = self.cell_at(pos)
        if cell is None:
            return
        row, col = cell
        self.readout.setText(self.describe(row, col))
        self.cell_hovered.emit(row, col, float(self._matrix[row, col]))

    def _on_scene_mouse_clicked(self, event) -> None:
        cell = self.cell_at(event.scenePos())
        if cell is not None:
            self.cell_clicked.emit(*cell)
