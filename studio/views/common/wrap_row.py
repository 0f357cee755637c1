"""WrapRow: two groups of controls side by side, the second going under the first when the row is too
narrow for both, so a small window (a 1024 px laptop screen with the runs list shown) never cuts a button
short. Qt has no flow layout; two groups are all the bars need."""

from __future__ import annotations

from PySide6.QtCore import QSize
from PySide6.QtWidgets import QGridLayout, QLayout, QWidget


class WrapRow(QWidget):
    """`first` and `second` (layouts) in one row when they fit, in two rows otherwise."""

    def __init__(self, first: QLayout, second: QLayout, parent: QWidget | None = None, *,
                 halves: bool = False) -> None:
        """`halves`: in one row each group takes half the width (else the second takes the room left)."""
        super().__init__(parent)
        self.halves = halves
        self.first, self.second = QWidget(), QWidget()
        for holder, layout in ((self.first, first), (self.second, second)):
            layout.setContentsMargins(0, 0, 0, 0)
            holder.setLayout(layout)
        self._grid = QGridLayout(self)
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._grid.setSizeConstraint(QLayout.SizeConstraint.SetNoConstraint)  # our minimum is ours to say
        self._grid.setHorizontalSpacing(12)
        self._grid.setVerticalSpacing(4)
        self.wrapped: bool | None = None
        self._place(False)

    def _one_row_width(self) -> int:
        return (self.first.minimumSizeHint().width() + self._grid.horizontalSpacing()
                + self.second.minimumSizeHint().width())

    def _place(self, wrapped: bool) -> None:
        if wrapped == self.wrapped:
            return
        self.wrapped = wrapped
        for w in (self.first, self.second):
            self._grid.removeWidget(w)
        self._grid.addWidget(self.first, 0, 0)
        self._grid.addWidget(self.second, 1 if wrapped else 0, 0 if wrapped else 1)
        # one row: halves, or the second group takes the room
        self._grid.setColumnStretch(0, 1 if wrapped or self.halves else 0)
        self._grid.setColumnStretch(1, 0 if wrapped else 1)
        self.updateGeometry()

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt API): as narrow as the wider group
        height = self._grid.minimumSize().height()
        return QSize(max(self.first.minimumSizeHint().width(), self.second.minimumSizeHint().width()), height)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt API)
        return QSize(max(self._one_row_width(), self._grid.sizeHint().width()), self._grid.sizeHint().height())

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        self._place(event.size().width() < self._one_row_width())
        super().resizeEvent(event)
