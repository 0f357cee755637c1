"""Persistent user settings (QSettings): recent workspaces, window state, theme, plot options.

LLM_STUDIO_SETTINGS=path.ini points them at a file instead (tests, portable installs).
"""

from __future__ import annotations

import os

from PySide6.QtCore import QByteArray, QSettings

MAX_RECENT = 8


class Settings:
    """Typed access to the studio's QSettings."""

    def __init__(self) -> None:
        path = os.environ.get("LLM_STUDIO_SETTINGS")
        if path:
            self.qsettings = QSettings(path, QSettings.Format.IniFormat)
        else:
            self.qsettings = QSettings("LLM Training Studio", "studio")

    def value(self, key: str, default=None, kind: type | None = None):
        value = self.qsettings.value(key, default)
        if kind is bool and isinstance(value, str):
            return value.lower() in ("1", "true", "yes")
        if kind is not None and value is not None:
            try:
                return kind(value)
            except (TypeError, ValueError):
                return default
        return value

    def set_value(self, key: str, value) -> None:
        self.qsettings.setValue(key, value)

    def recent_workspaces(self) -> list[str]:
        value = self.qsettings.value("recent_workspaces", [])
        if isinstance(value, str):
            value = [value]
        return [p for p in (value or []) if isinstance(p, str) and os.path.isdir(p)]

    def add_recent_workspace(self, path: str) -> None:
        path = os.path.abspath(path)
        recent = [p for p in self.recent_workspaces() if os.path.abspath(p) != path]
        self.qsettings.setValue("recent_workspaces", [path, *recent][:MAX_RECENT])

    def clear_recent_workspaces(self) -> None:
        self.qsettings.setValue("recent_workspaces", [])

    def bytes_value(self, key: str) -> QByteArray | None:
        value = self.qsettings.value(key)
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    def sync(self) -> None:
        self.qsettings.sync()
