"""TokenOutput: generated text that knows its tokens.

Each generated token is an anchor in the document, optionally shaded by the model's probability of it
(red: unlikely, green: likely); hovering shows the top alternatives with their probabilities, clicking
asks the panel to offer them (`token_clicked`). The prompt is shown first, unshaded.
"""

from __future__ import annotations

import html

from PySide6.QtCore import QEvent, QPoint, Signal
from PySide6.QtGui import QColor, QFontDatabase, QPalette, QTextCharFormat, QTextCursor, QTextFormat
from PySide6.QtWidgets import QTextEdit, QToolTip, QWidget

from studio.views.common.token_text import ON_PASTEL
from studio.workspace.token_labels import visible

MUTED = QTextFormat.Property.UserProperty + 1  # char-format mark of the prompt's grey: re-coloured with the theme


def prob_color(p: float) -> QColor:
    """A pastel from red (p = 0) through yellow to green (p = 1); light enough to read text on."""
    p = max(0.0, min(1.0, float(p)))
    return QColor.fromHsvF(p / 3.0, 0.36, 1.0)


class TokenOutput(QTextEdit):
    token_clicked = Signal(int, QPoint)   # token index, global position

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setReadOnly(True)
        self.setMouseTracking(True)
        font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        font.setPointSizeF(max(font.pointSizeF(), 10.5))
        self.setFont(font)
        self.colouring = True
        self.tokens: list[dict] = []   # the token replies, in order (text, prob, top, token_id)
        self._starts: list[int] = []   # document position where each token starts
        self.prompt = ""
        self.click_hint = "Click to continue from an alternative"  # "" where clicking does nothing

    # ------------------------------------------------------------------ content
    def begin(self, prompt: str) -> None:
        self.clear()
        self.tokens, self._starts, self.prompt = [], [], prompt
        fmt = QTextCharFormat()
        fmt.setProperty(MUTED, True)
        fmt.setForeground(self._muted())
        self.textCursor().insertText(prompt, fmt)

    def _muted(self) -> QColor:
        return self.palette().color(QPalette.ColorRole.PlaceholderText)

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 (Qt override)
        """A theme switch: the prompt's grey follows it (the theme's own text colour, never written into
        the document, follows by itself; written in, a chat's messages stayed dark on the dark theme)."""
        super().changeEvent(event)
        if event.type() != QEvent.Type.PaletteChange:
            return
        cursor, block = QTextCursor(self.document()), self.document().begin()
        while block.isValid():
            it = block.begin()
            while not it.atEnd():
                frag = it.fragment()
                if frag.charFormat().property(MUTED):
                    cursor.setPosition(frag.position())
                    cursor.setPosition(frag.position() + frag.length(), QTextCursor.MoveMode.KeepAnchor)
                    fmt = QTextCharFormat()
                    fmt.setForeground(self._muted())
                    cursor.mergeCharFormat(fmt)
                it += 1
            block = block.next()

    def append_token(self, ev: dict) -> None:
        cursor = QTextCursor(self.document())
        cursor.movePosition(QTextCursor.MoveOperation.End)
        self._starts.append(cursor.position())
        self.tokens.append(ev)
        cursor.insertText(ev.get("text", ""), self._format(len(self.tokens) - 1))
        self.ensureCursorVisible()

    def append_note(self, text: str, color: str = "#d93025", bold: bool = False) -> None:
        """Plain text after the output, not a token: an error (red), or a chat turn's heading and text."""
        cursor = QTextCursor(self.document())
        cursor.movePosition(QTextCursor.MoveOperation.End)
        fmt = QTextCharFormat()
        if color:  # else the theme's text colour, at paint time
            fmt.setForeground(QColor(color))
        if bold:
            fmt.setFontWeight(700)
        cursor.insertText(text, fmt)
        self.ensureCursorVisible()

    def truncate(self, n: int) -> None:
        """Keep the first n generated tokens."""
        if n >= len(self.tokens):
            return
        cursor = QTextCursor(self.document())
        cursor.setPosition(self._starts[n])
        cursor.movePosition(QTextCursor.MoveOperation.End, QTextCursor.MoveMode.KeepAnchor)
        cursor.removeSelectedText()
        del self.tokens[n:], self._starts[n:]

    def output_text(self) -> str:
        return "".join(t.get("text", "") for t in self.tokens)

    def set_colouring(self, on: bool) -> None:
        self.colouring = on
        cursor = QTextCursor(self.document())
        for i, start in enumerate(self._starts):
            cursor.setPosition(start)
            cursor.setPosition(start + len(self.tokens[i].get("text", "")), QTextCursor.MoveMode.KeepAnchor)
            cursor.setCharFormat(self._format(i))

    def _format(self, i: int) -> QTextCharFormat:
        ev = self.tokens[i]
        fmt = QTextCharFormat()
        fmt.setAnchor(True)
        fmt.setAnchorHref(f"tok:{i}")
        if self.colouring and ev.get("prob") is not None:
            fmt.setBackground(prob_color(ev["prob"]))
            fmt.setForeground(QColor(ON_PASTEL))  # the theme's text was light on the pastels in the dark theme
        if ev.get("picked"):
            fmt.setFontUnderline(True)
        return fmt

    # ------------------------------------------------------------------ hover and click
    def token_at(self, pos: QPoint) -> int | None:
        href = self.anchorAt(pos)
        if href.startswith("tok:"):
            i = int(href[4:])
            return i if i < len(self.tokens) else None
        return None

    def tooltip_html(self, i: int) -> str:
        ev = self.tokens[i]
        rows = []
        for text, token_id, p in ev.get("top", []):
            mark = "font-weight:bold;" if token_id == ev.get("token_id") else ""
            rows.append(f"<tr style='{mark}'><td><code>{html.escape(visible(text))}</code></td>"
                        f"<td align='right'>{100 * p:.1f}%</td></tr>")
        prob = ev.get("prob")
        head = (f"<b>{html.escape(visible(ev.get('text', '')))}</b> — token {i}, "
                f"p = {100 * prob:.1f}%" if prob is not None else f"token {i}")
        return (f"<p style='white-space:nowrap'>{head}</p><table cellspacing='0' cellpadding='2'>"
                f"{''.join(rows)}</table>" + (f"<p style='color:#57606a'>{self.click_hint}</p>" if self.click_hint else ""))

    def viewportEvent(self, event: QEvent) -> bool:  # noqa: N802 (Qt override)
        if event.type() == QEvent.Type.ToolTip:
            i = self.token_at(event.pos())
            if i is not None:
                QToolTip.showText(event.globalPos(), self.tooltip_html(i), self.viewport())
            else:
                QToolTip.hideText()
            return True
        return super().viewportEvent(event)

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().mouseReleaseEvent(event)
        pos = event.position().toPoint()
        i = self.token_at(pos)
        if i is not None and not self.textCursor().hasSelection():
            self.token_clicked.emit(i, self.viewport().mapToGlobal(pos))
