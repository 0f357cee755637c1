"""ConsoleView: the engine's stderr (human log lines), batched so a chatty engine never floods the UI."""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtGui import QFontDatabase, QTextCursor
from PySide6.QtWidgets import QPlainTextEdit, QWidget

MAX_LINES = 5000
FLUSH_MS = 100


class ConsoleView(QPlainTextEdit):
    """Read-only, monospace, bounded; lines are appended in batches every FLUSH_MS."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setReadOnly(True)
        self.setMaximumBlockCount(MAX_LINES)
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.setPlaceholderText("The engine's log appears here while a run trains.")
        self._pending: list[str] = []
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(FLUSH_MS)
        self._timer.timeout.connect(self.flush)

    def append_line(self, line: str) -> None:
        self._pending.append(line)
        if not self._timer.isActive():
            self._timer.start()

    def set_lines(self, lines: list[str]) -> None:
        self._pending.clear()
        self.setPlainText("\n".join(lines[-MAX_LINES:]))
        # the last line's start, not its end: a long last line (a checkpoint path) would scroll the view
        # sideways and cut the start of every line
        self.moveCursor(QTextCursor.MoveOperation.End)
        self.moveCursor(QTextCursor.MoveOperation.StartOfBlock)
        self._show_last_line()
        QTimer.singleShot(0, self, self._show_last_line)  # again once the scroll ranges follow the new text

    def _show_last_line(self) -> None:
        self.horizontalScrollBar().setValue(0)
        self.verticalScrollBar().setValue(self.verticalScrollBar().maximum())

    def flush(self) -> None:
        if not self._pending:
            return
        bar = self.verticalScrollBar()
        at_end = bar.value() >= bar.maximum() - 4
        text, self._pending = "\n".join(self._pending[-MAX_LINES:]), []
        self.appendPlainText(text)
        if at_end:
            bar.setValue(bar.maximum())
