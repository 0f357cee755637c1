"""ForkDialog: pick a checkpoint of a run and the settings to change for the forked run."""

from __future__ import annotations

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
        self.name = QLineEdit(suggested_name)
        self.lr = self._float_box(train.get("lr", 1e-3))
        self.min_lr = self._float_box(train.get("min_lr", 1e-4))
        self.max_steps = QSpinBox()
        self.max_steps.setRange(1, 1 << 30)
        self.max_steps.setValue(int(train.get("max_steps", 1000)))
        self._initial = {"train.lr": self.lr.value(), "train.min_lr": self.min_lr.value(),
                         "train.max_steps": self.max_steps.value()}
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
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(hint)
        lay.addWidget(buttons)

    @staticmethod
    def _float_box(value: float) -> QDoubleSpinBox:
        box = QDoubleSpinBox()
        box.setDecimals(6)
        box.setRange(0.0, 10.0)
        box.setSingleStep(1e-4)
        box.setValue(float(value))
        return box

    def checkpoint_path(self) -> str:
        return self.checkpoint.currentData()

    def changes(self) -> dict:
        """Only the settings the user changed, as dotted config paths."""
        now = {"train.lr": self.lr.value(), "train.min_lr": self.min_lr.value(),
               "train.max_steps": self.max_steps.value()}
        return {k: v for k, v in now.items() if v != self._initial[k]}
