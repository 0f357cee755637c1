"""YamlConfigEditor: a plain YAML editor with validation, used until the full ConfigEditor is present.

Same interface as studio.views.config_editor.ConfigEditor (set_base_dir, set_text, text, load_file, save,
config, problems; signals changed, validity_changed).
"""

from __future__ import annotations

from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import QLabel, QPlainTextEdit, QVBoxLayout, QWidget

from core.config import Config, ConfigError, Problem, loads


class YamlConfigEditor(QWidget):
    changed = Signal()
    validity_changed = Signal(bool, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._base_dir: str | None = None
        self._config: Config | None = None
        self._problems: list[Problem] = []
        self.edit = QPlainTextEdit()
        self.edit.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.status = QLabel(" ")
        self.status.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 8, 8, 8)
        lay.addWidget(self.edit, 1)
        lay.addWidget(self.status)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(250)
        self._timer.timeout.connect(self._validate)
        self.edit.textChanged.connect(self._on_edit_text_changed)

    def set_base_dir(self, path: str) -> None:
        self._base_dir = path
        self._validate()

    def set_text(self, text: str) -> None:
        self.edit.setPlainText(text)
        self._validate()

    def text(self) -> str:
        return self.edit.toPlainText()

    def load_file(self, path: str) -> None:
        with open(path, encoding="utf-8") as fh:
            self.set_text(fh.read())

    def save(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(self.text())

    def config(self) -> Config | None:
        return self._config

    def problems(self) -> list[Problem]:
        return list(self._problems)

    def _on_edit_text_changed(self) -> None:
        self.changed.emit()
        self._timer.start()

    def _validate(self) -> None:
        try:
            self._config, self._problems = loads(self.text(), base_dir=self._base_dir), []
        except ConfigError as exc:
            self._config, self._problems = None, list(exc.problems)
        message = "\n".join(str(p) for p in self._problems)
        self.status.setText(message or "Configuration is valid.")
        self.validity_changed.emit(not self._problems, message)
