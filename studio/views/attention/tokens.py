"""TokenAttentionView: click a token of the text, see where each head of a layer looks from it.

One line per head (plus the mean over heads and the rollout through this layer): the text again, each
token shaded by the weight the chosen token gives it, scaled to that line's largest weight so weak heads
stay readable; the exact weights are in each token's tooltip. Tokens after the chosen one are greyed:
a causal model cannot look at them.
"""

from __future__ import annotations

import html

import numpy as np
from PySide6.QtCore import QUrl, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QTextBrowser, QVBoxLayout, QWidget

from studio.theme import current_theme
from studio.workspace.attention_math import AttentionSet, rollout
from studio.workspace.token_labels import visible

# Per theme: the ground, the text, the labels, tokens after the chosen one (a causal model cannot look at
# them), and the one hue the weights are shaded with, alpha-blended onto the ground so the text on top
# stays readable. Same ground as the heat map beside it (it was white paper in both themes).
COLOURS = {
    "light": {"base": "#ffffff", "text": "#1f2328", "muted": "#555555", "future": "#b0b4b8",
              "shade": (31, 119, 180)},
    "dark": {"base": "#1e1f22", "text": "#dfe1e5", "muted": "#8b949e", "future": "#5c6370",
             "shade": (98, 168, 234)},
}
CHOSEN = "background-color:#ffd33d; color:#1f2328; font-weight:bold;"  # the chosen token, in both themes
MAX_ALPHA = 0.6


def _colours() -> dict:
    return COLOURS[current_theme()]


def _shade(weight: float, c: dict) -> str:
    a = MAX_ALPHA * max(0.0, min(1.0, weight))
    base = QColor(c["base"])
    r, g, b = (round(ground + (hue - ground) * a)
               for hue, ground in zip(c["shade"], (base.red(), base.green(), base.blue()), strict=True))
    return f"#{r:02x}{g:02x}{b:02x}"


def _piece_html(piece: str) -> str:
    shown = piece.replace("\n", "⏎").replace("\t", "⇥")
    return html.escape(shown).replace(" ", "&nbsp;") or "∅"


class TokenAttentionView(QWidget):
    token_selected = Signal(int)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.browser = QTextBrowser()
        self.browser.setOpenLinks(False)
        self.browser.anchorClicked.connect(self._on_browser_anchor_clicked)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.browser)
        self.selected: int | None = None
        self._data: AttentionSet | None = None
        self._layer = 0
        self.rows: dict[str, np.ndarray] = {}  # line name -> weights from the selected token (tests read it)
        self.apply_theme()

    def apply_theme(self) -> None:
        """The theme's ground and text (the token colours are blended onto that ground)."""
        c = _colours()
        self.browser.setStyleSheet(f"QTextBrowser {{ background: {c['base']}; color: {c['text']}; }}")
        if self._data is not None:
            self._render()

    def set_data(self, data: AttentionSet | None, layer: int, selected: int | None = None) -> None:
        self._data, self._layer = data, layer
        if data is not None and (selected is None or selected >= data.T):
            selected = data.T - 1 if self.selected is None or self.selected >= data.T else self.selected
        self.selected = selected
        self._render()

    def select_token(self, index: int) -> None:
        if self._data is not None and 0 <= index < self._data.T:
            self.selected = index
            self._render()
            self.token_selected.emit(index)

    def _on_browser_anchor_clicked(self, url: QUrl) -> None:
        text = url.toString()
        if text.startswith("tok:"):
            self.select_token(int(text[4:]))

    def _render(self) -> None:
        d, q = self._data, self.selected
        c = _colours()
        if d is None or q is None:
            self.rows = {}
            self.browser.setHtml(f"<p style='color:{c['muted']}'>No attention loaded yet.</p>")
            return
        layer = self._layer
        self.rows = {f"head {h}": d.probs[layer, h, q] for h in range(d.n_head)}
        self.rows["mean of heads"] = d.probs[layer, :, q].mean(axis=0)
        self.rows[f"rollout 0–{layer}"] = rollout(d.probs[: layer + 1])[layer, q]
        parts = ["<div style='font-family:monospace; font-size:10pt'>",
                 f"<p style='color:{c['muted']}'>Layer {layer}: where token <b>#{q}</b> "
                 f"<b>{html.escape(visible(d.tokens[q]))}</b> looks. Click any token to choose another.</p>",
                 "<table cellspacing='0' cellpadding='3'>"]
        parts.append(f"<tr><td style='color:{c['muted']}'>text</td><td>{self._line(None, q, c)}</td></tr>")
        for name, weights in self.rows.items():
            parts.append(f"<tr><td style='color:{c['muted']}; white-space:nowrap'>{name}</td>"
                         f"<td>{self._line(weights, q, c)}</td></tr>")
        parts.append("</table></div>")
        self.browser.setHtml("".join(parts))

    def _line(self, weights: np.ndarray | None, q: int, c: dict) -> str:
        d = self._data
        top = float(weights[: q + 1].max()) if weights is not None else 1.0
        out = []
        for j, piece in enumerate(d.tokens):
            style = f"text-decoration:none; color:{c['text']};"
            tip = f"#{j}"
            if weights is None:
                if j == q:
                    style += CHOSEN
            elif j > q:
                style += f"color:{c['future']};"
            else:
                style += f"background-color:{_shade(float(weights[j]) / max(top, 1e-9), c)};"
                tip += f": {float(weights[j]):.3f}"
                if j == q:
                    style += "font-weight:bold;"
            out.append(f"<a href='tok:{j}' title='{tip}' style='{style}'>{_piece_html(piece)}</a>")
        return "".join(out)
