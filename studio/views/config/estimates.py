"""The config editor's estimates panel: parameters, tokens and FLOPs per step, memory by component."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import (
    QColor,
    QPainter,
    QPalette,
)
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QLabel,
    QWidget,
)

from core.config import (
    human_bytes,
    human_count,
)
from studio.workspace.run import format_duration

MEMORY_PARTS = (("weights", "#2e86c1"), ("grads", "#28b463"), ("optimizer", "#d68910"),
                ("activations", "#8e44ad"))


class MemoryBar(QWidget):
    """A stacked bar of memory by component (weights, grads, optimizer, activations)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.parts: dict[str, float] = {}
        self.setMinimumHeight(14)
        self.setMaximumHeight(14)

    def set_parts(self, parts: dict[str, float]) -> None:
        self.parts = parts
        self.update()

    def paintEvent(self, _event) -> None:  # noqa: N802 (Qt override)
        painter = QPainter(self)
        rect = self.rect().adjusted(0, 0, -1, -1)
        painter.fillRect(rect, self.palette().color(QPalette.ColorRole.Mid))
        total = sum(self.parts.get(name, 0) for name, _ in MEMORY_PARTS)
        x = float(rect.left())
        for name, colour in MEMORY_PARTS:
            width = rect.width() * self.parts.get(name, 0) / total if total else 0
            painter.fillRect(int(x), rect.top(), max(0, round(x + width) - int(x)), rect.height() + 1,
                             QColor(colour if self.isEnabled() else "#b3b6b7"))
            x += width
        painter.end()


class EstimatesPanel(QFrame):
    """Parameter count, tokens per step, FLOPs and memory for the current (valid) config."""

    ROWS = (("params", "Parameters"), ("params_non_embedding", "  non-embedding"),
            ("trainable_params", "  trainable"), ("vocab", "Vocabulary"),
            ("tokens_per_step", "Tokens / step"), ("flops_per_token", "FLOPs / token"),
            ("flops_per_step", "FLOPs / step"), ("precision", "Precision"), ("exports", "Exports to"),
            ("weights", "Weights"),
            ("grads", "Gradients"), ("optimizer", "Optimizer state"), ("activations", "Activations"),
            ("total", "Memory total"))

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("estimates")
        self.setStyleSheet("#estimates { background: palette(alternate-base); border: 1px solid palette(mid); "
                           "border-radius: 4px; }"
                           " QLabel { background: transparent; }")
        grid = QGridLayout(self)
        grid.setContentsMargins(12, 10, 12, 10)
        grid.setVerticalSpacing(4)
        title = QLabel("Estimates")
        title.setStyleSheet("font-weight: 600; font-size: 11pt;")
        grid.addWidget(title, 0, 0, 1, 2)
        self.values: dict[str, QLabel] = {}
        colours = dict(MEMORY_PARTS)
        row = 1
        for key, text in self.ROWS:
            if key == "weights":
                head = QLabel("Memory (training, per process)")
                head.setStyleSheet("font-weight: 600; margin-top: 8px;")
                grid.addWidget(head, row, 0, 1, 2)
                self.bar = MemoryBar()
                grid.addWidget(self.bar, row + 1, 0, 1, 2)
                row += 2
            label = QLabel(text)
            if key in colours:
                label.setText(f"<span style='color:{colours[key]}'>■</span> {text}")
            value = QLabel("—")
            value.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            if key in ("params", "total"):
                value.setStyleSheet("font-weight: 600;")
            grid.addWidget(label, row, 0)
            grid.addWidget(value, row, 1)
            self.values[key] = value
            row += 1
        head = self.timing_head = QLabel("Time (before Start)")
        head.setStyleSheet("font-weight: 600; margin-top: 8px;")
        grid.addWidget(head, row, 0, 1, 2)
        row += 1
        self.timing: dict[str, QLabel] = {}
        self.timing_names: dict[str, QLabel] = {}
        for key, text in (("step", "Time / step"), ("total", "Training time")):
            value = QLabel("—")
            value.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.timing_names[key] = QLabel(text)
            self.timing_names[key].setWordWrap(True)  # "Training, 823 steps from 177" in a narrow panel
            grid.addWidget(self.timing_names[key], row, 0)
            grid.addWidget(value, row, 1)
            self.timing[key] = value
            row += 1
        self.timing_note = QLabel("No run has trained on this machine yet: the first one measures it.")
        self.timing_note.setWordWrap(True)
        self.timing_note.setStyleSheet("color: palette(placeholder-text);")
        grid.addWidget(self.timing_note, row, 0, 1, 2)
        row += 1
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: palette(placeholder-text); margin-top: 8px;")
        grid.addWidget(self.note, row, 0, 1, 2)
        grid.setRowStretch(row + 1, 1)

    def show_estimate(self, est: dict, vocab_source: str) -> None:
        mem = est["memory"]
        self.values["params"].setToolTip(f"{est['params']:,} parameters")
        self.values["vocab"].setToolTip(vocab_source)
        self.values["exports"].setToolTip(est["export_refusal"] or "Run > Export Checkpoint: a Hugging Face folder "
                                          "(transformers), a GGUF file (llama.cpp) or an ONNX graph")
        text = {"params": human_count(est["params"]),
                "params_non_embedding": human_count(est["params_non_embedding"]),
                # LoRA: only the adapters train (the share says how much smaller the update is)
                "trainable_params": human_count(est["trainable_params"]) + (
                    f" ({100 * est['trainable_params'] / est['params']:.2g}%)"
                    if est["trainable_params"] != est["params"] else ""),
                "vocab": f"{est['vocab_size']:,}" + (" (data)" if vocab_source == "(from data)" else ""),
                "tokens_per_step": f"{est['tokens_per_step']:,}",
                "flops_per_token": human_count(est["flops_per_token"]),
                "flops_per_step": human_count(est["flops_per_step"]),
                "precision": est["precision"],
                "exports": "HF, GGUF, ONNX" if not est["export_refusal"] else "ONNX only"}
        text.update({k: human_bytes(mem[k]) for k in ("weights", "grads", "optimizer", "activations", "total")})
        for key, label in self.values.items():
            label.setText(text[key])
        self.bar.set_parts({k: float(mem[k]) for k, _ in MEMORY_PARTS})
        self.setEnabled(True)
        optimizer = est.get("optimizer", "AdamW")  # the engine's words (core.estimate): AdamW, or Muon + AdamW
        refusal = est["export_refusal"]  # said before the run trains, not at its export
        self.note.setText(f"Vocabulary {vocab_source}. Analytic: {optimizer}, fp32 master weights, "
                          "activations without recomputation." + (
                              f" No Hugging Face or GGUF export: {refusal}." if refusal else ""))

    def show_timing(self, timing: dict | None, device: str = "auto", imported: bool = False) -> None:
        """Time per step and in all (controllers.timing.time_estimate), with where the figure comes from;
        `device`: the config's train.device (no figure from a run on another kind of device). An imported
        model does not train in its run: no time, a note saying where training happens instead."""
        for widget in (self.timing_head, *self.timing.values(), *self.timing_names.values()):
            widget.setVisible(not imported)
        if imported:
            self.timing_note.setText("An imported model trains in a run of its own: Run → Fine-tune on My "
                                     "Data… makes one.")
            return
        if timing is None:
            for label in self.timing.values():
                label.setText("—")
            self.timing_names["total"].setText("Training time")
            where = "" if device in ("", "auto") else f" on {device}"
            self.timing_note.setText(f"No run has trained{where} on this machine yet: the first one measures it.")
            return
        step = timing["step_s"]
        self.timing["step"].setText(f"≈ {1000 * step:,.0f} ms" if step < 10 else f"≈ {step:,.0f} s" if step < 60
                                    else f"≈ {format_duration(step)}")
        start = timing.get("start", 0)
        if not timing["steps"]:  # a finished run: nothing left ("0 steps from 1,000, 0s" said nothing)
            self.timing["total"].setText("—")
            self.timing_names["total"].setText(f"Training: max_steps ({start:,}) reached")
        else:
            self.timing["total"].setText(f"≈ {format_duration(timing['total_s'])}")
            self.timing_names["total"].setText(f"Training, {timing['steps']:,} steps" + (f" from {start:,}" if start else ""))
        self.timing_note.setText(timing["source"][:1].upper() + timing["source"][1:] + ".")

    def show_stale(self, reason: str) -> None:
        """Keep the last numbers, greyed, while the config is invalid."""
        self.setEnabled(False)
        self.note.setText(f"Showing the last valid config: {reason}")

    def show_none(self, reason: str) -> None:
        """No figures: the config shown has not been valid since it was loaded (the last valid numbers
        were another run's, or another text's)."""
        for label in (*self.values.values(), *self.timing.values()):
            label.setText("—")
            label.setToolTip("")
        self.bar.set_parts({})
        self.timing_note.setText("")
        self.setEnabled(False)
        self.note.setText(f"No estimates until the config is valid: {reason}")


# ------------------------------------------------------------------------------ the editor
