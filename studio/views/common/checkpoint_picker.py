"""CheckpointPicker: choose a checkpoint of the workspace's runs (or any folder), shared by the generation
and attention panels.

The list is read from the run folders (studio.workspace.checkpoints, core.layout's definition of a
checkpoint) each time it opens, so checkpoints a running training writes appear without a refresh
button. Newest first: the selected run's checkpoints lead, each run's latest step on top; until the user
picks one by hand, the picker follows the selected run and preselects its latest checkpoint. A folder picked by hand that the engine would refuse is refused here with the engine's message
(`checkpoint_refused`).
"""

from __future__ import annotations

import os

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QStyle,
    QStyleOptionComboBox,
    QStylePainter,
    QToolButton,
    QWidget,
)

from core.layout import checkpoint_step
from studio.workspace.checkpoints import checkpoint_label, checkpoint_refusal, offered_checkpoints, run_of

__all__ = ["CheckpointPicker", "checkpoint_label", "run_of"]

BROWSE = "__browse__"


class _Combo(QComboBox):
    """A combo box that elides its text in the middle: cut at the right, 'demo-ft-tasks-chat · step 300'
    read 'demo-ft-tasks-chat · step 30' in a narrow panel. The full text is its tooltip."""
    about_to_show = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.view().setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.currentTextChanged.connect(self.setToolTip)

    def showPopup(self) -> None:  # noqa: N802 (Qt override)
        self.about_to_show.emit()
        super().showPopup()

    def shown_text(self, option: QStyleOptionComboBox) -> str:
        """The current text as it fits the edit field, elided in the middle."""
        field = self.style().subControlRect(QStyle.ComplexControl.CC_ComboBox, option,
                                            QStyle.SubControl.SC_ComboBoxEditField, self)
        return option.fontMetrics.elidedText(option.currentText, Qt.TextElideMode.ElideMiddle, field.width())

    def paintEvent(self, _event) -> None:  # noqa: N802 (Qt override)
        painter = QStylePainter(self)
        option = QStyleOptionComboBox()
        self.initStyleOption(option)
        painter.drawComplexControl(QStyle.ComplexControl.CC_ComboBox, option)
        option.currentText = self.shown_text(option)
        painter.drawControl(QStyle.ControlElement.CE_ComboBoxLabel, option)


class CheckpointPicker(QWidget):
    checkpoint_changed = Signal(str)   # an absolute checkpoint folder
    checkpoint_refused = Signal(str)   # why a folder given is not a checkpoint (the engine's message)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.workspace_root = ""
        self.extra: list[str] = []  # folders picked by hand or set by code, kept in the list
        self.run_dir = ""           # the selected run: its checkpoints lead the list
        self.pinned = False         # the user chose a checkpoint: selecting runs no longer changes it
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
        self.pinned = False
        self.refresh()
        self.offer_latest()

    def set_run(self, run_dir: str) -> None:
        """The selected run: its checkpoints lead the list; its latest is preselected unless pinned."""
        self.run_dir = os.path.abspath(run_dir) if run_dir else ""
        self.refresh()
        self.offer_latest(follow_run=not self.pinned)

    def offer_latest(self, follow_run: bool = False) -> None:
        """Select the newest checkpoint (the selected run's first) when none is selected, or when
        `follow_run` and the one selected is not the selected run's latest."""
        if self.combo.view().isVisible():
            return  # the list is open: do not reshuffle it under the user
        self.refresh()
        first = self.combo.itemData(0) if self.combo.count() > 1 else None
        if not first:
            return
        current = self.checkpoint()
        if not current or (follow_run and current != first and self.run_dir and run_of(first) == self.run_dir):
            self._select_index(0)

    def checkpoints(self) -> list[str]:
        """Every checkpoint of the workspace's runs, newest first: the selected run's, then the other
        runs by name, then the extra folders still there."""
        offered = offered_checkpoints(self.workspace_root, self.extra)
        runs = {p: run_of(p) for p in offered}
        names = sorted({r for r in runs.values() if r}, key=lambda r: (r != self.run_dir, os.path.basename(r)))
        order = {r: i for i, r in enumerate(names)}
        by_run = [p for p in offered if runs[p]]
        by_run.sort(key=lambda p: (order[runs[p]], -(checkpoint_step(p) or 0)))
        return by_run + [p for p in offered if not runs[p]]

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
        self.pinned = True
        self._select_index(self.combo.findData(path))
        return True

    def browse(self) -> None:
        start = self.checkpoint() or self.workspace_root or os.getcwd()
        path = QFileDialog.getExistingDirectory(self, "Checkpoint folder", start)
        if path:
            self.set_checkpoint(path)
        else:
            self.refresh()

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
            self.pinned = True
            self.checkpoint_changed.emit(self.checkpoint())
