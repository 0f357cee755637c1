"""ElidedLabel: a one-line label that shortens its text with '…' to the width it is given, instead of
widening its layout (a long run name must not push the runs list aside); the whole text is its tooltip."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget


class ElidedLabel(QLabel):
    def __init__(self, text: str = "", parent: QWidget | None = None,
                 mode: Qt.TextElideMode = Qt.TextElideMode.ElideMiddle, min_chars: int = 12) -> None:
        super().__init__(parent)
        self._full, self._tail, self._mode, self._min_chars = "", "", mode, min_chars
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.setText(text)

    def setText(self, text: str, tail: str = "") -> None:  # noqa: N802 (Qt API)
        """Show `text` + `tail`; only `text` is shortened, `tail` (" — running") always shows whole."""
        self._full, self._tail = text + tail, tail
        self.setToolTip(self._full)
        self._elide()

    def text(self) -> str:
        """The whole text, not the shortened one shown."""
        return self._full

    def shown_text(self) -> str:
        return super().text()

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt API): a few characters, not the whole text
        hint = super().minimumSizeHint()
        return QSize(self.fontMetrics().horizontalAdvance("x" * self._min_chars), hint.height())

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt API)
        return QSize(self.fontMetrics().horizontalAdvance(self._full) + 4, super().sizeHint().height())

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 (Qt API)
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        fm, head = self.fontMetrics(), self._full[:len(self._full) - len(self._tail)]
        room = max(0, self.width() - 2 - fm.horizontalAdvance(self._tail))
        super().setText(fm.elidedText(head, self._mode, room) + self._tail)
