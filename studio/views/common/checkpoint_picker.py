"""CheckpointPicker: choose a checkpoint of the workspace's runs (or any folder), shared by the generation
and attention panels.

The list is read from the run folders (studio.workspace, no torch) each time it opens, so checkpoints a
running training writes appear without a refresh button.
"""

from __future__ import annotations

import os

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QFileDialog, QHBoxLayout, QToolButton, QWidget

from studio.workspace.run import Run
from studio.workspace.workspace import Workspace

BROWSE = "__browse__"


def checkpoint_label(path: str) -> str:
    """'run · step 500' for RUN/checkpoints/step-000500, else the folder name."""
    parts = os.path.normpath(path).split(os.sep)
    if len(parts) >= 3 and parts[-2] == "checkpoints" and parts[-1].startswith("step-"):
        return f"{parts[-3]} · step {int(parts[-1][5:])}"
    return parts[-1]


def run_of(checkpoint: str) -> str:
    """The run folder of RUN/checkpoints/step-N ('' when the path is not laid out that way)."""
    parent = os.path.dirname(os.path.normpath(checkpoint))
    return os.path.dirname(parent) if os.path.basename(parent) == "checkpoints" else ""


class _Combo(QComboBox):
    about_to_show = Signal()

    def showPopup(self) -> None:  # noqa: N802 (Qt override)
        self.about_to_show.emit()
        super().showPopup()


class CheckpointPicker(QWidget):
    checkpoint_changed = Signal(str)   # an absolute checkpoint folder

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
        """Every checkpoint of the workspace's runs, oldest run first, then the extra folders."""
        out: list[str] = []
        if self.workspace_root:
            runs_dir = Workspace(self.workspace_root).runs_dir
            try:
                names = sorted(os.listdir(runs_dir))
            except OSError:
                names = []
            for name in names:  # any run folder with checkpoints (made by the studio or the CLI)
                out += [c.path for c in Run(os.path.join(runs_dir, name)).checkpoints()
                        if os.path.isfile(os.path.join(c.path, "meta.json"))]
        out = [os.path.abspath(p) for p in out]
        return out + [p for p in self.extra if p not in out]

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

    def set_checkpoint(self, path: str) -> None:
        """Select `path` (added to the list if it is not a workspace checkpoint); emits checkpoint_changed."""
        path = os.path.abspath(path)
        if path not in self.checkpoints():
            self.extra.append(path)
        self.refresh()
        self._select_index(self.combo.findData(path))

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
