"""The question asked when the studio closes while runs are training: stop them, or leave them running."""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget


def ask_about_running(parent: QWidget, names: list[str]) -> str:
    """'stop' | 'leave' | 'cancel' for the runs named (modal)."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Question)
    box.setWindowTitle("Training in progress")
    box.setText(f"{', '.join(names)} {'is' if len(names) == 1 else 'are'} still training.")
    box.setInformativeText("Stop gracefully (a checkpoint is written), or leave it running? A run left "
                           "running is followed again when you reopen this workspace.")
    stop = box.addButton("Stop", QMessageBox.ButtonRole.DestructiveRole)
    leave = box.addButton("Leave Running", QMessageBox.ButtonRole.AcceptRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(leave)
    box.exec()
    clicked = box.clickedButton()
    return "stop" if clicked is stop else "leave" if clicked is leave else "cancel"
