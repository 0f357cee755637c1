"""ForkDialog: pick a checkpoint of a run and the settings to change for the forked run.

"Train until step" defaults to the checkpoint's step plus the parent's planned length (a fork that
trains nowhere is the engine's refusal waiting to happen), follows the checkpoint chosen, and the dialog
refuses to create a fork that would not train beyond its checkpoint (the engine's rule, said the same way).
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from studio.theme import banner_style
from studio.workspace.metrics import Checkpoint


class ForkDialog(QDialog):
    """The fork continues the checkpoint's step count, weights and optimizer state."""

    def __init__(self, run_name: str, checkpoints: list[Checkpoint], train: dict, suggested_name: str,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Fork {run_name} from a checkpoint")
        self.checkpoint = QComboBox()
        for ck in reversed(checkpoints):
            self.checkpoint.addItem(f"step {ck.step}", ck.path)
            self.checkpoint.setItemData(self.checkpoint.count() - 1, ck.step, Qt.ItemDataRole.UserRole + 1)
        self._planned = max(1, int(train.get("max_steps", 1000)))
        self.name = QLineEdit(suggested_name)
        self.lr = self._float_box(train.get("lr", 1e-3))
        self.min_lr = self._float_box(train.get("min_lr", 1e-4))
        self.max_steps = QSpinBox()
        self.max_steps.setRange(1, 1 << 30)
        self.max_steps.setValue(self.checkpoint_step() + self._planned)
        self.checkpoint.currentIndexChanged.connect(self._on_checkpoint_changed)
        self._initial = {"train.lr": self.lr.value(), "train.min_lr": self.min_lr.value()}
        self.problem = QLabel()
        self.problem.setObjectName("banner")
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet(banner_style("error"))
        self.problem.hide()
        form = QFormLayout()
        form.addRow("Checkpoint", self.checkpoint)
        form.addRow("New run name", self.name)
        form.addRow("Learning rate", self.lr)
        form.addRow("Final learning rate", self.min_lr)
        form.addRow("Train until step", self.max_steps)
        hint = QLabel("The new run starts from the checkpoint's weights and optimizer state "
                      "(train.init_from) and keeps its step count; edit anything else on the Config tab "
                      "before you start it.")
        hint.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Create fork")
        buttons.accepted.connect(self._on_accepted)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(hint)
        lay.addWidget(self.problem)
        lay.addWidget(buttons)

    @staticmethod
    def _float_box(value: float) -> QDoubleSpinBox:
        box = QDoubleSpinBox()
        box.setDecimals(6)
        box.setRange(0.0, 10.0)
        box.setSingleStep(1e-4)
        box.setValue(float(value))
        return box

    def checkpoint_step(self) -> int:
        step = self.checkpoint.currentData(Qt.ItemDataRole.UserRole + 1)
        return int(step) if step is not None else 0

    def problems(self) -> list[str]:
        """Why this fork could not train (the engine's set-up rule); empty when it can."""
        step, until = self.checkpoint_step(), self.max_steps.value()
        if until <= step:
            return [f"train.max_steps: {until} is not beyond the checkpoint's step {step}; "
                    f"raise Train until step to train further"]
        if not self.name.text().strip():
            return ["the new run needs a name"]
        return []

    def _on_checkpoint_changed(self, _index: int) -> None:
        self.max_steps.setValue(self.checkpoint_step() + self._planned)
        self.problem.hide()

    def _on_accepted(self) -> None:
        problems = self.problems()
        self.problem.setText("\n".join(problems))
        self.problem.setVisible(bool(problems))
        if not problems:
            self.accept()

    def checkpoint_path(self) -> str:
        return self.checkpoint.currentData()

    def changes(self) -> dict:
        """The settings the user changed, as dotted config paths, and always where to train until."""
        now = {"train.lr": self.lr.value(), "train.min_lr": self.min_lr.value()}
        changed = {k: v for k, v in now.items() if v != self._initial[k]}
        return {**changed, "train.max_steps": self.max_steps.value()}
