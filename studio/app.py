"""The QApplication: high-DPI policy, names for QSettings, theme."""

from __future__ import annotations

import sys

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QIcon
from PySide6.QtWidgets import QApplication

from studio.settings import Settings
from studio.theme import apply_theme


def create_application(argv: list[str] | None = None, theme: str | None = None) -> QApplication:
    """The one QApplication (reused if it exists), themed from settings unless `theme` is given."""
    app = QApplication.instance()
    if app is None:
        # Fractional scale factors (125 %, 150 %) render crisply instead of being rounded.
        QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
        app = QApplication(list(argv if argv is not None else sys.argv[:1]))
    app.setApplicationName("LLM Training Studio")
    app.setOrganizationName("LLM Training Studio")
    app.setApplicationDisplayName("LLM Training Studio")
    app.setDesktopFileName("llm-studio")
    icon = _icon_path()
    if icon:
        app.setWindowIcon(QIcon(icon))
    apply_theme(app, theme or Settings().value("theme", "light", str))
    return app


def _icon_path() -> str | None:
    import os

    from studio.engine.command import resources_dir

    path = resources_dir("icons", "llm-studio.svg")
    return path if os.path.exists(path) else None
