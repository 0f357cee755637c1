"""CheckpointPicker: choose a checkpoint of the workspace's runs (or any folder), shared by the generation
and attention panels.

The list is read from the run folders (studio.workspace.checkpoints, core.layout's definition of a
checkpoint) each time it opens, so checkpoints a running training writes appear without a refresh
button. A folder picked by hand that the engine would refuse is refused here with the engine's message
(`checkpoint_refused`).
"""

from __future__ import annotations

import os

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QFileDialog, QHBoxLayout, QToolButton, QWidget

from studio.workspace.checkpoints import checkpoint_label, checkpoint_refusal, offered_checkpoints, run_of

__all__ = ["CheckpointPicker", "checkpoint_label", "run_of"]

BROWSE = "__browse__"


class _Combo(QComboBox):
    about_to_show = Signal()

    def showPopup(self) -> None:  # noqa: N802 (Qt override)
        self.about_to_show.emit()
        super().showPopup()


class CheckpointPicker(QWidget):
    checkpoint_changed = Signal(str)   # an absolute checkpoint folder
    checkpoint_refused = Signal(str)   # why a folder given is not a checkpoint (the engine's message)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.workspace_root = ""
        self.extra: list[str] = []  # folders picked by hand or set by code, kept in the list
        self.combo = _Combo()
        self.combo.setMinimumContentsLength(18)
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.combo.about_to_show.connect(self.refresh)
        self.combo.activated.connect(self._on_combo_activated)
        browse = QToolButton()
        browse.setText("…")
        browse.setToolTip("Pick a checkpoint folder")
        browse.clicked.connect(self.browse)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.combo, 1)
        layout.addWidget(browse)
        self.combo.setPlaceholderText("no checkpoint yet")

    def set_workspace(self, root: str) -> None:
        self.workspace_root = root or ""
        self.refresh()
        if not self.checkpoint() and self.combo.count():
            self._select_index(self._last_real_index())

    def checkpoints(self) -> list[str]:
        """Every checkpoint of the workspace's runs, runs by name, then the extra folders still there."""
        return offered_checkpoints(self.workspace_root, self.extra)

    def refresh(self) -> None:
        current = self.checkpoint()
        self.combo.blockSignals(True)
        self.combo.clear()
        for path in self.checkpoints():
            self.combo.addItem(checkpoint_label(path), path)
            self.combo.setItemData(self.combo.count() - 1, path, 3)  # tooltip role: the full path
        self.combo.addItem("Other folder…", BROWSE)
        index = self.combo.findData(current) if current else -1
        self.combo.setCurrentIndex(index)
        self.combo.blockSignals(False)

    def checkpoint(self) -> str:
        data = self.combo.currentData()
        return data if isinstance(data, str) and data != BROWSE else ""

    def set_checkpoint(self, path: str) -> bool:
        """Select `path` (added to the list if it is not a workspace checkpoint) and emit checkpoint_changed;
        a folder the engine would refuse is not selected: checkpoint_refused says why."""
        path = os.path.abspath(path)
        problem = checkpoint_refusal(path)
        if problem:
            self.refresh()
            self.checkpoint_refused.emit(problem)
            return False
        if path not in self.checkpoints():
            self.extra.append(path)
        self.refresh()
        self._select_index(self.combo.findData(path))
        return True

    def browse(self) -> None:
        start = self.checkpoint() or self.workspace_root or os.getcwd()
        path = QFileDialog.getExistingDirectory(self, "Checkpoint folder", start)
        if path:
            self.set_checkpoint(path)
        else:
            self.refresh()

    def _last_real_index(self) -> int:
        return self.combo.count() - 2  # the entry before "Other folder…"

    def _select_index(self, index: int) -> None:
        if index < 0:
            return
        changed = self.combo.currentIndex() != index
        self.combo.setCurrentIndex(index)
        if changed or self.checkpoint():
            self.checkpoint_changed.emit(self.checkpoint())

    def _on_combo_activated(self, index: int) -> None:
        if self.combo.itemData(index) == BROWSE:
            self.browse()
        else:
            self.checkpoint_changed.emit(self.checkpoint())
