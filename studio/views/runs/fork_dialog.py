"""ForkDialog: pick a checkpoint of a run and the settings to change for the forked run.

"Train until step" defaults to the checkpoint's step plus the parent's planned length (a fork that
trains nowhere is the engine's refusal waiting to happen), follows the checkpoint chosen, and the dialog
refuses to create a fork that would not train beyond its checkpoint (the engine's rule, said the same way).

The learning rate schedule starts over at the checkpoint (train.restart_step, core.schedule): by default
with a fresh warm-up to a peak rate and a decay to the final rate by the fork's last step, which trained
further than the alternatives measured (core.schedule.goes_on); "go on from the checkpoint's rate" decays
from the parent's rate there instead (the default where the parent was still at its peak rate: constant or
the stable phase of wsd). Before, the parent's schedule was stretched to the fork's length, which sent a
decayed rate back up without a warm-up.
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

    GO_ON, WARM_UP = 0, 1  # the schedule choices, in the combo's order

    def __init__(self, run_name: str, checkpoints: list[Checkpoint], train: dict, suggested_name: str,
                 rates: dict[int, tuple[float, bool]] | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Fork {run_name} from a checkpoint")
        self.checkpoint = QComboBox()
        for ck in reversed(checkpoints):
            self.checkpoint.addItem(f"step {ck.step}", ck.path)
            self.checkpoint.setItemData(self.checkpoint.count() - 1, ck.step, Qt.ItemDataRole.UserRole + 1)
        self._planned = max(1, int(train.get("max_steps", 1000)))
        self._rates = dict(rates or {})  # step -> (the parent's rate there, whether to go on from it)
        self.name = QLineEdit(suggested_name)
        self.schedule = QComboBox()
        self.schedule.addItems(["Go on from the checkpoint's rate", "Warm up again to a peak rate"])
        self.start_lr = self._float_box(self._rate_at_checkpoint())
        self.start_lr.setToolTip("The rate the fork starts at (the parent's at this checkpoint); it decays "
                                 "from there to the final rate by the last step (train.restart_lr)")
        self.lr = self._float_box(train.get("lr", 1e-3))
        self.lr.setToolTip("The rate a fresh warm-up reaches before the decay (train.lr)")
        self.min_lr = self._float_box(train.get("min_lr", 1e-4))
        self.max_steps = QSpinBox()
        self.max_steps.setRange(1, 1 << 30)
        self.max_steps.setValue(self.checkpoint_step() + self._planned)
        self.checkpoint.currentIndexChanged.connect(self._on_checkpoint_changed)
        self.schedule.currentIndexChanged.connect(self._show_rate_row)
        self.why = QLabel()  # what the chosen schedule does from this checkpoint
        self.why.setWordWrap(True)
        self._initial = {"train.lr": self.lr.value(), "train.min_lr": self.min_lr.value()}
        self.problem = QLabel()
        self.problem.setObjectName("banner")
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet(banner_style("error"))
        self.problem.hide()
        self.form = form = QFormLayout()
        form.addRow("Checkpoint", self.checkpoint)
        form.addRow("New run name", self.name)
        form.addRow("Learning rate", self.schedule)
        form.addRow("", self.why)
        form.addRow("Start learning rate", self.start_lr)
        form.addRow("Peak learning rate", self.lr)
        form.addRow("Final learning rate", self.min_lr)
        form.addRow("Train until step", self.max_steps)
        self.schedule.setCurrentIndex(self._default_schedule())
        self._show_rate_row()
        hint = QLabel("The new run starts from the checkpoint's weights and optimizer state "
                      "(train.init_from) and keeps its step count; its learning rate schedule starts over "
                      "at the checkpoint. Edit anything else on the Config tab before you start it.")
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

    def _rate_at_checkpoint(self) -> float:
        return float(f"{self._rates.get(self.checkpoint_step(), (0.0, False))[0]:.6g}")

    def _default_schedule(self) -> int:
        """Go on where the parent was still at its peak rate, else warm up again (core.schedule.goes_on)."""
        return self.GO_ON if self._rates.get(self.checkpoint_step(), (0.0, False))[1] else self.WARM_UP

    def _show_rate_row(self) -> None:
        going_on = self.schedule.currentIndex() == self.GO_ON
        self.form.setRowVisible(self.start_lr, going_on)
        self.form.setRowVisible(self.lr, not going_on)
        self.why.setText(self._why(going_on))

    def _why(self, going_on: bool) -> str:
        rate, go_on_recommended = self._rates.get(self.checkpoint_step(), (None, False))
        if rate is None:
            return ""
        if going_on and go_on_recommended:
            return ("The parent was still at its peak rate here: the fork goes on at it and decays to the final "
                    "rate by its last step, no warm-up needed.")
        if going_on:
            return ("The rate goes on from the parent's here and decays to the final rate by the last step: the "
                    "loss does not rise, but the model ends worse than after a fresh warm-up (on the demo run, "
                    "1000 more steps from its end: val 1.295 against 1.253).")
        if go_on_recommended:
            return ("A fresh warm-up to the peak rate, then a decay to the final rate; the parent was still at its "
                    "peak rate here, so going on needs no warm-up.")
        return ("A fresh warm-up to the peak rate, then a decay to the final rate by the last step: the loss "
                "rises for a while, then falls below where going on from the parent's rate would take it (on "
                "the demo run, 1000 more steps from its end: val 1.253 against 1.295).")

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
        if self.schedule.currentIndex() == self.WARM_UP and self.min_lr.value() > self.lr.value():
            return [f"train.min_lr: the final learning rate {self.min_lr.value():g} is larger than the peak "
                    f"learning rate {self.lr.value():g}"]
        return []

    def _on_checkpoint_changed(self, _index: int) -> None:
        self.max_steps.setValue(self.checkpoint_step() + self._planned)
        self.start_lr.setValue(self._rate_at_checkpoint())
        self.schedule.setCurrentIndex(self._default_schedule())
        self._show_rate_row()  # the reason names this checkpoint even when the choice stays the same
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
        """The settings the user changed, as dotted config paths, and always where to train until and where
        and how the schedule starts over."""
        now = {"train.lr": self.lr.value(), "train.min_lr": self.min_lr.value()}
        changed = {k: v for k, v in now.items() if v != self._initial[k]}
        going_on = self.schedule.currentIndex() == self.GO_ON
        if going_on:
            changed.pop("train.lr", None)  # the peak rate is not used: the fork starts from start_lr
        return {**changed, "train.max_steps": self.max_steps.value(), "train.restart_step": self.checkpoint_step(),
                "train.restart_lr": self.start_lr.value() if going_on else None}
