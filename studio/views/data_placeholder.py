"""DataPlaceholder: lists the workspace's prepared data sets until the full DataPanel is present."""

from __future__ import annotations

import json
import os

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget


class DataPlaceholder(QWidget):
    data_prepared = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = QLabel()
        self.label.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(12, 12, 12, 12)
        lay.addWidget(self.label)
        lay.addStretch(1)

    def set_workspace(self, path: str) -> None:
        data = os.path.join(path, "data")
        lines = []
        for name in sorted(os.listdir(data)) if os.path.isdir(data) else []:
            try:
                with open(os.path.join(data, name, "meta.json"), encoding="utf-8") as fh:
                    meta = json.load(fh)
                lines.append(f"<b>{name}</b>: {meta.get('train_tokens', '?')} train tokens, vocabulary "
                             f"{meta.get('vocab_size', '?')} ({meta.get('tokenizer', '?')})")
            except (OSError, ValueError, TypeError):
                continue
        self.label.setText("<h3>Prepared data</h3>" + ("<br>".join(lines) or "None yet.") +
                           "<p>Prepare more with <code>llm-train prepare --input FILES --out "
                           f"{data}/NAME</code>.</p>")
