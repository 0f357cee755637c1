"""AttentionGrid: every head of a layer (or every layer x head) as a clickable thumbnail.

Thumbnails are plain QImages made through the heatmap's colour table (cheap: no plot per head); a click
asks for that head in the big map.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QImage, QPixmap
from PySide6.QtWidgets import QGridLayout, QLabel, QScrollArea, QToolButton, QWidget

from studio.theme import plot_colors
from studio.views.attention.heatmap import lookup_table

THUMB = 110  # largest thumbnail side, pixels


def matrix_image(matrix: np.ndarray, size: int = THUMB, levels: tuple[float, float] = (0.0, 1.0),
                 blank: str = "#ffffff") -> QImage:
    """A [T, T] matrix as a size x size RGB image (nearest neighbour, so cells stay crisp); the masked
    cells in `blank`, the big map's background, as there."""
    lo, hi = levels
    scaled = np.clip((np.asarray(matrix, dtype=np.float32) - lo) / max(hi - lo, 1e-9), 0.0, 1.0)
    rgb = lookup_table()[(scaled * 255).astype(np.uint8)]
    color = QColor(blank)
    rgb[np.triu_indices(rgb.shape[0], 1)] = (color.red(), color.green(), color.blue())
    rgb = np.ascontiguousarray(rgb)
    h, w = rgb.shape[:2]
    image = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()  # copy: own the pixels
    return image.scaled(size, size, Qt.AspectRatioMode.IgnoreAspectRatio, Qt.TransformationMode.FastTransformation)


class AttentionGrid(QScrollArea):
    """Rows are layers, columns heads; the selected head is checked."""

    head_clicked = Signal(int, int)  # layer, head

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWidgetResizable(True)
        self._inner = QWidget()
        self._grid = QGridLayout(self._inner)
        self._grid.setSpacing(4)
        self._grid.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.setWidget(self._inner)
        self.buttons: dict[tuple[int, int], QToolButton] = {}
        self._key: tuple | None = None
        self._probs: np.ndarray | None = None

    def set_maps(self, probs: np.ndarray, layers: list[int], selected: tuple[int, int] | None = None,
                 levels: tuple[float, float] = (0.0, 1.0)) -> None:
        """Thumbnails of probs[layer, head] for the given layers (rebuilt only when they change)."""
        blank = plot_colors()["background"]  # a theme change draws them again
        key = (tuple(layers), levels, self.viewport().size().toTuple(), blank)
        if probs is self._probs and key == self._key:  # holding `probs` keeps its identity unique
            self.select(selected)
            return
        self._probs, self._key = probs, key
        while self._grid.count():
            w = self._grid.takeAt(0).widget()
            if w is not None:
                w.hide()  # at once: deleteLater only acts on the next event-loop pass
                w.deleteLater()
        self.buttons = {}
        n_head = probs.shape[1]
        vp = self.viewport()
        size = min((vp.width() - 80) // n_head, (vp.height() - 30) // max(1, len(layers))) - 10
        size = max(40, min(THUMB, size))  # fit the whole grid when there is room, else scroll
        for h in range(n_head):
            head_label = QLabel(f"head {h}")
            head_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            self._grid.addWidget(head_label, 0, h + 1)
        for r, layer in enumerate(layers):
            self._grid.addWidget(QLabel(f"layer {layer}"), r + 1, 0)
            for h in range(n_head):
                b = QToolButton()
                b.setCheckable(True)
                b.setAutoRaise(True)
                b.setIcon(QIcon(QPixmap.fromImage(matrix_image(probs[layer, h], size, levels, blank))))
                b.setIconSize(QSize(size, size))
                b.setToolTip(f"layer {layer}, head {h}: click to open")
                b.clicked.connect(lambda _c=False, lh=(layer, h): self._on_thumb_clicked(*lh))
                self._grid.addWidget(b, r + 1, h + 1)
                self.buttons[(layer, h)] = b
        self.select(selected)

    def select(self, selected: tuple[int, int] | None) -> None:
        for key, b in self.buttons.items():
            b.setChecked(key == selected)

    def _on_thumb_clicked(self, layer: int, head: int) -> None:
        self.select((layer, head))
        self.head_clicked.emit(layer, head)
