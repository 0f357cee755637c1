"""SamplesView: the evaluation samples of a run (`sample` events: step, prompt, text) as a browsable
history: steps on the left, the chosen step's prompt and generated text on the right."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import QListWidget, QListWidgetItem, QPlainTextEdit, QSplitter, QVBoxLayout, QWidget


class SamplesView(QWidget):
    """Newest sample selected unless the user picked an older one."""

    PLACEHOLDER = "Samples generated at each evaluation appear here."
    NONE_WRITTEN = ("This run writes no samples (train.sample_tokens is 0). Set train.sample_tokens on the Config "
                    "tab to have a run write some text at each evaluation, e.g. 120; a fork or a new run from "
                    "this one can, and Generate talks to any checkpoint.")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.samples: list[dict] = []
        self.steps = QListWidget()
        self.steps.setMinimumWidth(90)
        self.steps.currentRowChanged.connect(self._on_steps_current_row_changed)
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.text.setPlaceholderText(self.PLACEHOLDER)
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.steps)
        split.addWidget(self.text)
        split.setStretchFactor(1, 1)
        split.setSizes([120, 600])
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(split)

    def set_sample_tokens(self, tokens: int | None) -> None:
        """Say why the view stays empty when the run writes no samples (train.sample_tokens: 0)."""
        self.text.setPlaceholderText(self.PLACEHOLDER if tokens is None or tokens > 0 else self.NONE_WRITTEN)

    def set_samples(self, samples: list[dict]) -> None:
        """Show `samples` (a run's history.samples); only new ones are added when the list grew."""
        if len(samples) < len(self.samples) or samples[:1] != self.samples[:1]:
            self.steps.clear()
            self.samples = []
        follow = self.steps.currentRow() in (-1, self.steps.count() - 1)
        for ev in samples[len(self.samples):]:
            self.steps.addItem(QListWidgetItem(f"step {ev.get('step', '?')}"))
        self.samples = list(samples)
        if follow and self.samples:
            self.steps.setCurrentRow(len(self.samples) - 1)
        elif not self.samples:
            self.text.clear()

    def select_step(self, step: int) -> bool:
        for i, ev in enumerate(self.samples):
            if ev.get("step") == step:
                self.steps.setCurrentRow(i)
                return True
        return False

    def _on_steps_current_row_changed(self, row: int) -> None:
        self.text.clear()
        if not 0 <= row < len(self.samples):
            return
        ev = self.samples[row]
        cursor = self.text.textCursor()
        bold = QTextCharFormat()
        bold.setFontWeight(QFont.Weight.Bold)
        prompt = str(ev.get("prompt") or "")
        cursor.insertText(prompt, bold)  # the prompt in bold, then what the model wrote
        text = str(ev.get("text") or "")
        cursor.insertText(text[len(prompt):] if prompt and text.startswith(prompt) else text, QTextCharFormat())
        self.text.moveCursor(QTextCursor.MoveOperation.Start)
