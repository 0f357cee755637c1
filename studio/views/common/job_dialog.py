"""JobDialog: the part the Import and Export dialogs share: a form, a busy bar, a status line, buttons, and
the words for how an engine job ended (done, cancelled, or failed with the engine's message)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QLabel, QLayout, QProgressBar, QVBoxLayout, QWidget


class JobDialog(QDialog):
    """Subclasses build their form and buttons, then call `_lay_out(form, *widgets_below)`."""

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        # Wide enough for a path: at its natural size the source field showed "a Hugging Face ..." cut short
        self.setMinimumWidth(self.fontMetrics().horizontalAdvance("x") * 90)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.hide()  # shown while a job runs and after one succeeded: idle, it was an empty box
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)  # a path, a command

    def _lay_out(self, form: QLayout, *below: QWidget) -> None:
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        for widget in below:
            layout.addWidget(widget)

    def _set_status(self, text: str) -> None:
        """The status line; the dialog grows to show all of it (a failure's lines squeezed the buttons)."""
        self.status.setText(text)
        self._fit_height()

    def _fit_height(self) -> None:
        """Grow (never shrink) to the height the contents need at this width, wrapped lines included."""
        layout = self.layout()
        if layout is not None:
            layout.activate()
            need = (layout.totalHeightForWidth(self.width()) if layout.hasHeightForWidth()
                    else layout.totalSizeHint().height())
            if need > self.height():
                self.resize(self.width(), need)

    def _show_busy(self, text: str) -> None:
        self.progress.setRange(0, 0)  # busy: the engine reports no counts to a pipe
        self.progress.show()
        self._set_status(text)

    def _show_outcome(self, result, noun: str, done_text: str) -> None:
        """`result` has ok, status and failure (an EngineFailure); `noun` is "Import" or "Export"."""
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        self.progress.setVisible(result.ok)  # a failure's 0 % said nothing the status line does not
        if result.ok:
            self._set_status(done_text)
        elif result.status == "cancelled":
            self._set_status(f"{noun} cancelled.")
        else:
            self._set_status(f"{noun} failed: {result.failure.headline}\n" + "\n".join(result.failure.details))
