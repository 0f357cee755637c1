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
from PySide6.QtWidgets import QTextBrowser, QVBoxLayout, QWidget

from studio.workspace.attention_math import AttentionSet, rollout

SHADE = (31, 119, 180)  # one hue, alpha-blended onto white: the text on top stays readable
MAX_ALPHA = 0.6


def _shade(weight: float) -> str:
    a = MAX_ALPHA * max(0.0, min(1.0, weight))
    r, g, b = (round(255 + (c - 255) * a) for c in SHADE)
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
        # White paper in both themes, like the heat map: the token colours are chosen for a light ground
        # (dark text on the dark theme's base was unreadable).
        self.browser.setStyleSheet("QTextBrowser { background: #ffffff; color: #1f2328; }")
        self.browser.anchorClicked.connect(self._on_browser_anchor_clicked)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.browser)
        self.selected: int | None = None
        self._data: AttentionSet | None = None
        self._layer = 0
        self.rows: dict[str, np.ndarray] = {}  # line name -> weights from the selected token (tests read it)

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
        if d is None or q is None:
            self.rows = {}
            self.browser.setHtml("<p style='color:#777'>No attention loaded yet.</p>")
            return
        layer = self._layer
        self.rows = {f"head {h}": d.probs[layer, h, q] for h in range(d.n_head)}
        self.rows["mean of heads"] = d.probs[layer, :, q].mean(axis=0)
        self.rows[f"rollout 0–{layer}"] = rollout(d.probs[: layer + 1])[layer, q]
        parts = ["<div style='font-family:monospace; font-size:10pt'>",
                 f"<p style='color:#555'>Layer {layer}: where token <b>#{q}</b> "
                 f"<b>{_piece_html(d.tokens[q])}</b> looks. Click any token to choose another.</p>",
                 "<table cellspacing='0' cellpadding='3'>"]
        parts.append(f"<tr><td style='color:#555'>text</td><td>{self._line(None, q)}</td></tr>")
        for name, weights in self.rows.items():
            parts.append(f"<tr><td style='color:#555; white-space:nowrap'>{name}</td>"
                         f"<td>{self._line(weights, q)}</td></tr>")
        parts.append("</table></div>")
        self.browser.setHtml("".join(parts))

    def _line(self, weights: np.ndarray | None, q: int) -> str:
        d = self._data
        top = float(weights[: q + 1].max()) if weights is not None else 1.0
        out = []
        for j, piece in enumerate(d.tokens):
            style = "text-decoration:none; color:#1f2328;"
            tip = f"#{j}"
            if weights is None:
                if j == q:
                    style += "background-color:#ffd33d; font-weight:bold;"
            elif j > q:
                style += "color:#b0b4b8;"
            else:
                style += f"background-color:{_shade(float(weights[j]) / max(top, 1e-9))};"
                tip += f": {float(weights[j]):.3f}"
                if j == q:
                    style += "font-weight:bold;"
            out.append(f"<a href='tok:{j}' title='{tip}' style='{style}'>{_piece_html(piece)}</a>")
        return "".join(out)
