"""TokenText: read-only text coloured by token boundaries; hovering a token shows its index and id.

Fed with display pieces (one string per token, as written by the engine to DATA_DIR/preview.json), so
the GUI needs no tokenizer. Newlines and tabs get a visible mark (↵, →) so whitespace tokens show.
"""

from __future__ import annotations

import bisect
import html

from PySide6.QtCore import QEvent, QPoint, Qt
from PySide6.QtGui import QColor, QFontDatabase, QPalette, QTextBlockFormat, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import QTextEdit, QToolTip, QWidget

# Pastel backgrounds cycled per token: neighbours always differ, the text stays readable.
TOKEN_COLOURS = ("#fbd3d3", "#cfe6fb", "#d4f2cc", "#fcefc0", "#e4d9fb")
# With a loss mask: trained tokens alternate two greens, masked (prompt) tokens two greys with grey text.
TRAINED_COLOURS = ("#b9ebb0", "#d8f5cf")
MASKED_COLOURS = ("#e4e6e9", "#f1f2f4")
ON_PASTEL = "#1b1f23"  # token text on the pastel token colours, in either theme
MASKED_TEXT = "#6a6f76"
LINE_GAP = 1.0  # pixels between a line's backgrounds and the next line's


def display_piece(piece: str) -> str:
    """The piece as shown: newline as ↵ plus a real line break, tab as →."""
    return piece.replace("\t", "→\t").replace("\n", "↵\n")


class TokenText(QTextEdit):
    """Shows a token sequence with alternating backgrounds; `token_at(point)` maps a point to a token."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setReadOnly(True)
        self.setMouseTracking(True)
        self.setLineWrapMode(QTextEdit.LineWrapMode.WidgetWidth)
        self.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.ids: list[int] = []
        self.pieces: list[str] = []
        self.trained: list[bool] | None = None
        self._starts: list[int] = []   # document position where each token's text begins
        self._end = 0

    def set_tokens(self, ids: list[int], pieces: list[str], trained: list[int] | None = None) -> None:
        """Show tokens; `pieces[i]` is the display text of token `ids[i]`. With `trained` (1 per trained
        target, 0 per masked token: SFT data), trained tokens are green and masked ones grey."""
        self.clear()
        n = min(len(ids), len(pieces))
        self.ids, self.pieces = [int(i) for i in ids[:n]], [str(p) for p in pieces[:n]]
        self.trained = [bool(t) for t in trained[:n]] if trained is not None and len(trained) >= n else None
        self._starts = []
        cursor = QTextCursor(self.document())
        fmt = QTextCharFormat()
        for i, piece in enumerate(self.pieces):
            self._starts.append(cursor.position())
            fmt.setBackground(QColor(self.background(i)))
            masked = self.trained is not None and not self.trained[i]
            fmt.setForeground(QColor(MASKED_TEXT if masked else ON_PASTEL))
            cursor.insertText(display_piece(piece) or "∅", fmt)
        self._end = cursor.position()
        # A pixel between lines: at fractional scales (125 %) each line's token backgrounds were painted over
        # the line above's underscores ("<|im_end|>" read "<|im end|>").
        cursor.select(QTextCursor.SelectionType.Document)
        spaced = QTextBlockFormat()
        spaced.setLineHeight(LINE_GAP, QTextBlockFormat.LineHeightTypes.LineDistanceHeight.value)
        cursor.mergeBlockFormat(spaced)
        self.moveCursor(QTextCursor.MoveOperation.Start)

    def background(self, index: int) -> str:
        """The background colour of token `index`: by position, or by trained / masked."""
        if self.trained is None:
            return TOKEN_COLOURS[index % len(TOKEN_COLOURS)]
        return (TRAINED_COLOURS if self.trained[index] else MASKED_COLOURS)[index % 2]

    def show_message(self, text: str) -> None:
        """No tokens: a grey message instead (e.g. "no preview")."""
        self.ids, self.pieces, self._starts, self._end, self.trained = [], [], [], 0, None
        self.clear()
        colour = self.palette().color(QPalette.ColorRole.PlaceholderText).name()
        self.setHtml(f"<p style='color:{colour}'>{html.escape(text)}</p>")

    def token_index_at_position(self, position: int) -> int | None:
        """Index of the token that covers a document position, or None."""
        if not self._starts or position < 0 or position >= self._end:
            return None
        return bisect.bisect_right(self._starts, position) - 1

    def token_at(self, point: QPoint) -> int | None:
        """Index of the token under a viewport point (exactly on a character), or None."""
        offset = QPoint(self.horizontalScrollBar().value(), self.verticalScrollBar().value())
        position = self.document().documentLayout().hitTest(point + offset, Qt.HitTestAccuracy.ExactHit)
        return self.token_index_at_position(position)

    def tooltip_for(self, index: int) -> str:
        piece = self.pieces[index]
        role = "" if self.trained is None else (
            "  ·  trained" if self.trained[index] else "  ·  masked: not trained")
        return f"token #{index}  ·  id {self.ids[index]}  ·  {piece!r}{role}"

    def viewportEvent(self, event: QEvent) -> bool:  # noqa: N802 (Qt override)
        if event.type() == QEvent.Type.ToolTip:
            index = self.token_at(event.pos())
            if index is None:
                QToolTip.hideText()
            else:
                QToolTip.showText(event.globalPos(), self.tooltip_for(index), self.viewport())
            return True
        return super().viewportEvent(event)
