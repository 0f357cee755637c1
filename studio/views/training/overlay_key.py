"""OverlayKey: which colour is which run on the training plots, in the controls row above them, or in a
row of its own under it where the controls leave it no room (a 1024 px window showed '━ demo' cut).

The plots' own legend hides when a plot is too low for it, and compared runs must never go unnamed."""

from __future__ import annotations

from html import escape

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QLabel, QSizePolicy

from studio.views.training.plot_items import overlay_colour


def overlay_key(own: str, overlays: list[tuple[str, object, str]], colours: dict, shown: int = 3) -> tuple[str, str]:
    """(rich text, tooltip) naming the colour of each run on the plots. Empty when no other run is drawn;
    past `shown` runs the rest are counted, and the tooltip lists them all."""
    if not overlays:
        return "", ""

    def swatch(colour: str, name: str) -> str:
        return f'<span style="color:{colour}">&#9473;&#9473;</span>&nbsp;{escape(name)}'

    entries = [swatch(colours["smooth"], f"{own} (this run)" if own else "this run")]
    entries += [swatch(overlay_colour(i, kind, colours), label) for i, (label, _h, kind) in enumerate(overlays)]
    more = len(entries) - 1 - shown
    text = "&nbsp;&nbsp; ".join(entries[:shown + 1]) + (f"&nbsp;&nbsp; +{more} more" if more > 0 else "")
    return text, "<br>".join(entries)


class OverlayKey(QLabel):
    """The key in the controls row (stretching into the room the controls leave; it never widens the tab).
    When that room is narrower than the key, it hides (keeping its place, so Export stays put) and `below`,
    a label for a row of its own under the controls, shows it instead: cut only where even the tab's whole
    width is too narrow, and whole in both labels' tooltips."""

    def __init__(self) -> None:
        super().__init__("")
        self.below = QLabel("")
        for label in (self, self.below):
            label.setTextFormat(Qt.TextFormat.RichText)
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        policy = self.sizePolicy()
        policy.setRetainSizeWhenHidden(True)
        self.setSizePolicy(policy)
        self.below.hide()

    def event(self, event: QEvent) -> bool:
        """Watch the parent (the plots widget): its layout sizes this label before the parent's resize
        reaches eventFilter, also while this label is hidden (its own resize events wait until shown)."""
        if event.type() == QEvent.Type.ParentChange and self.parentWidget() is not None:
            self.parentWidget().installEventFilter(self)
        return super().event(event)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt's name)
        if watched is self.parentWidget() and event.type() in (QEvent.Type.Resize, QEvent.Type.Show):
            self._fit()  # the key may have more or less room
        return False

    def show_key(self, own: str, overlays: list, colours: dict) -> None:
        text, tip = overlay_key(own, overlays, colours)
        for label in (self, self.below):
            label.setText(text)
            label.setToolTip(tip)
        self._fit()

    def _fit(self) -> None:
        shown = self.parentWidget() is not None and self.parentWidget().isVisible()
        under = shown and bool(self.text()) and self.width() < self.sizeHint().width()
        self.setVisible(not under)  # hidden, it keeps its place (retainSizeWhenHidden) and so its width
        self.below.setVisible(under)

