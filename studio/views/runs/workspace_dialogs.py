"""File > New Workspace and File > Open Workspace: which folder, asked so that nothing is littered.

New asks for a name for a new folder (a folder dialog can only pick existing ones). Open takes a workspace
(a folder with runs/ or workspace.json); any other folder that is not empty is made a workspace (data/,
runs/, workspace.json written into it) only after the user says yes. Both start next to the workspace
open now (the home folder when that is the demo one), never in the directory the studio was started from.
Each returns the folder to open, or None (cancelled, refused, or said why in a message box).
"""

from __future__ import annotations

import os

from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from studio.workspace.workspace import Workspace


def start_dir(current: Workspace | None) -> str:
    return os.path.dirname(current.root) if current is not None else os.path.expanduser("~")


def ask_new(parent: QWidget, current: Workspace | None) -> str | None:
    path, _ = QFileDialog.getSaveFileName(parent, "New workspace: a name for its folder", start_dir(current),
                                          options=QFileDialog.Option.DontConfirmOverwrite)
    return _checked(parent, path) if path else None


def ask_open(parent: QWidget, current: Workspace | None) -> str | None:
    path = QFileDialog.getExistingDirectory(parent, "Open workspace", start_dir(current))
    return _checked(parent, path) if path else None


def folder_problem(path: str) -> str | None:
    """Why `path` cannot hold a workspace (None when it can: missing, an empty folder or a workspace)."""
    if os.path.exists(path) and not os.path.isdir(path):
        return f"{path} is a file, not a folder"
    parent = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    while parent and not os.path.isdir(parent):
        parent = os.path.dirname(parent)
    if not os.access(parent or ".", os.W_OK):
        return f"{parent} cannot be written to"
    return None


def _checked(parent: QWidget, path: str) -> str | None:
    problem = folder_problem(path)
    if problem:
        QMessageBox.warning(parent, "Workspace", f"No workspace was opened: {problem}.")
        return None
    if os.path.isdir(path) and os.listdir(path) and not Workspace.is_workspace(path):
        answer = QMessageBox.question(
            parent, "Make this folder a workspace?",
            f"{path} is not a workspace and is not empty. Make it one? The studio will add the folders data/ "
            f"and runs/ and a workspace.json to it; nothing in it is changed or removed.")
        if answer != QMessageBox.StandardButton.Yes:
            return None
    return path
