"""Notifier: a desktop notification when a run finishes or fails while the window is in the background.

Through the system tray's balloon (QSystemTrayIcon.showMessage) where the desktop has a tray, else the
window alert (a blinking task-bar entry). `sent` records what was shown, for the status bar and tests.
"""

from __future__ import annotations

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QApplication, QSystemTrayIcon, QWidget


class Notifier(QObject):
    """Tells the desktop about a run's end when nobody is looking at the window."""

    def __init__(self, window: QWidget) -> None:
        super().__init__(window)
        self.window = window
        self.sent: list[tuple[str, str, str]] = []   # (title, message, how: "tray" | "alert")
        self.tray: QSystemTrayIcon | None = None

    def in_background(self) -> bool:
        return not (self.window.isVisible() and self.window.isActiveWindow() and not self.window.isMinimized())

    def run_finished(self, name: str, status: str, detail: str = "") -> bool:
        """Notify when the window is in the background; returns whether a notification was given."""
        if not self.in_background():
            return False
        title = f"{name} {'finished' if status == 'done' else status}"
        message = detail or {"done": "Training finished.", "stopped": "Training stopped; resume it any time.",
                             "failed": "Training failed: see the Training tab."}.get(status, status)
        self.notify(title, message, critical=status == "failed")
        return True

    def notify(self, title: str, message: str, critical: bool = False) -> None:
        if QSystemTrayIcon.isSystemTrayAvailable() and QSystemTrayIcon.supportsMessages():
            if self.tray is None:
                self.tray = QSystemTrayIcon(QApplication.windowIcon(), self)
                self.tray.setToolTip("LLM Training Studio")
                self.tray.messageClicked.connect(self._raise_window)
            self.tray.show()
            icon = QSystemTrayIcon.MessageIcon.Critical if critical else QSystemTrayIcon.MessageIcon.Information
            self.tray.showMessage(title, message, icon, 10000)
            how = "tray"
        else:
            QApplication.alert(self.window, 0)
            how = "alert"
        self.sent.append((title, message, how))

    def _raise_window(self) -> None:
        self.window.showNormal()
        self.window.raise_()
        self.window.activateWindow()
