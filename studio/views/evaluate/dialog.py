"""Evaluate… on a checkpoint: a text file (loss, perplexity, bits per byte) or a pairs file (BLEU, ROUGE-L,
exact match of generated answers), with the pairs' decoding options; progress and Cancel while the engine
works, then the figures and a button to the checkpoint's results. The EvaluateJob does the work; the
engine keeps the result in the checkpoint's eval/ folder.
"""

from __future__ import annotations

import os

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from studio.controllers.chat import has_chat_template
from studio.controllers.evaluate import EvalRequest, EvalResult, EvaluateJob, data_set_of
from studio.demo import DEMO_DATA
from studio.views.common.checkpoint_picker import CheckpointPicker
from studio.views.common.job_dialog import JobDialog
from studio.views.common.screen_fit import resize_to_fit
from studio.workspace.workspace import example_file

KIND_TITLES = {"text": "Text file: loss, perplexity, bits per byte",
               "pairs": "Pairs file (.jsonl, prompt + reference): BLEU, ROUGE-L, exact match",
               "split": "Validation split of a prepared data set: loss, perplexity, bits per byte"}
FILTERS = {"text": "Text files (*.txt *.md *.text);;All files (*)",
           "pairs": "Pairs (*.jsonl *.json);;All files (*)"}

BASE_MODEL_NOTE = ("This checkpoint has no chat template (it is not an instruction fine-tune): each prompt goes "
                   "in the built-in instruction format, which it has never seen, so expect scores near zero. "
                   "Fine-tune it first (Run \u2192 Fine-tune), or tick Raw prompts to have it continue each "
                   "prompt as written.")


class EvaluateDialog(JobDialog):
    results_requested = Signal(str)   # a checkpoint: show its saved evaluations
    evaluated = Signal(object)        # the EvalResult of a finished (done) evaluation

    def __init__(self, job: EvaluateJob, workspace_root: str = "", run_dir: str = "",
                 checkpoint: str = "", parent: QWidget | None = None) -> None:
        super().__init__("Evaluate checkpoint", parent)
        self.job = job
        self.result: EvalResult | None = None
        self.picker = CheckpointPicker()
        self.picker.set_workspace(workspace_root)
        if run_dir:
            self.picker.set_run(run_dir)
        if checkpoint:
            self.picker.set_checkpoint(checkpoint)
        self.kind = QComboBox()
        for kind, title in KIND_TITLES.items():
            self.kind.addItem(title, kind)
        self.file = QLineEdit()
        self.file.setPlaceholderText("the file to evaluate on")
        self.file.textChanged.connect(self._on_file_text_changed)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._on_browse_clicked)
        row = QHBoxLayout()
        row.addWidget(self.file, 1)
        row.addWidget(browse)
        form = QFormLayout()
        form.addRow("Checkpoint", self.picker)
        form.addRow("Evaluate on", self.kind)
        form.addRow("File", row)
        self.file_label = form.labelForField(row)  # "Data set" for a validation split
        self._add_pairs_options(form)
        self.form = form
        self.results_button = QPushButton("Results…")
        self.results_button.setToolTip("Every saved evaluation of this checkpoint")
        self.results_button.clicked.connect(self._on_results_button_clicked)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.buttons.addButton(self.results_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.evaluate_button = self.buttons.addButton("Evaluate", QDialogButtonBox.ButtonRole.ActionRole)
        self.evaluate_button.clicked.connect(self._on_evaluate_button_clicked)
        self.buttons.rejected.connect(self._on_close)
        self._lay_out(form, self.buttons)
        # the workspace's example files (the demo's held-out text and question/answer pairs), filled in
        self.examples = {kind: example_file(workspace_root, kind) for kind in ("text", "pairs")}
        self.examples["split"] = ""  # the checkpoint's own data set (_defaults)
        self.kind.currentIndexChanged.connect(lambda _i: self._on_kind_changed())
        self.greedy.toggled.connect(lambda _on: self._update_options())
        self.picker.checkpoint_changed.connect(lambda _path: self._on_checkpoint_changed())
        self.picker.checkpoint_refused.connect(self.status.setText)
        job.progressed.connect(self._on_job_progressed)
        job.finished.connect(self._on_job_finished)
        resize_to_fit(self, 640, self.sizeHint().height())
        self._on_checkpoint_changed()

    def _add_pairs_options(self, form: QFormLayout) -> None:
        """Max new tokens, greedy or sampled (temperature, seed), raw prompts: pairs files only."""
        self.max_new = QSpinBox()
        self.max_new.setRange(1, 4096)
        self.max_new.setValue(128)
        self.max_new.setToolTip("Each answer stops at the end of turn or after this many tokens")
        self.greedy = QCheckBox("Greedy (the most likely token each time)")
        self.greedy.setChecked(True)
        self.temperature = QDoubleSpinBox()
        self.temperature.setRange(0.05, 5.0)
        self.temperature.setSingleStep(0.1)
        self.temperature.setValue(0.8)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.raw = QCheckBox("Raw prompts (no chat template)")
        tokens, sampling = QHBoxLayout(), QHBoxLayout()
        tokens.addWidget(self.max_new)
        tokens.addStretch(1)
        for label, widget in (("temperature", self.temperature), ("seed", self.seed)):
            widget.setPrefix(f"{label} ")
            sampling.addWidget(widget)
        sampling.addStretch(1)
        form.addRow("Max new tokens", tokens)
        form.addRow("Decoding", self.greedy)
        form.addRow("", sampling)
        form.addRow("Prompts", self.raw)
        self.raw.toggled.connect(lambda _on: self._update_options())
        # a base model (no chat template) evaluated on pairs: say why its answers will miss (see _update_options)
        self.prompt_note = QLabel("")
        self.prompt_note.setWordWrap(True)
        self.prompt_note.setStyleSheet("color: palette(placeholder-text);")
        form.addRow("", self.prompt_note)

    # ------------------------------------------------------------------ state
    def set_kind(self, kind: str) -> None:
        self.kind.setCurrentIndex(self.kind.findData(kind))

    def request(self) -> EvalRequest:
        kind = self.kind.currentData()
        return EvalRequest(self.picker.checkpoint(), kind, os.path.abspath(self.file.text().strip()),
                           self.max_new.value(), 0.0 if self.greedy.isChecked() else self.temperature.value(),
                           self.seed.value(), self.raw.isChecked())

    def _update_options(self) -> None:
        pairs = self.kind.currentData() == "pairs"
        for widget in (self.max_new, self.greedy, self.raw):
            widget.setEnabled(pairs)
        for widget in (self.temperature, self.seed):
            widget.setEnabled(pairs and not self.greedy.isChecked())
        base = pairs and not self.raw.isChecked() and bool(self.picker.checkpoint()) \
            and not has_chat_template(self.picker.checkpoint())
        self.prompt_note.setText(BASE_MODEL_NOTE if base else "")
        if base != self.form.isRowVisible(self.prompt_note):
            self.form.setRowVisible(self.prompt_note, base)
            self._fit_height()
        running = self.job.is_running()
        self.evaluate_button.setEnabled(not running and bool(self.file.text().strip()))
        self.results_button.setEnabled(bool(self.picker.checkpoint()))

    def start_evaluation(self) -> bool:
        request = self.request()
        if not request.checkpoint:
            self.status.setText("Choose a checkpoint first.")
            return False
        if not self.file.text().strip() or not self.job.start(request):
            return False
        self._show_busy(f"Evaluating {os.path.basename(request.checkpoint)} on {os.path.basename(request.file)} …")
        self.buttons.button(QDialogButtonBox.StandardButton.Close).setText("Cancel")
        self._update_options()
        return True

    # ------------------------------------------------------------------ slots
    def _on_file_text_changed(self, text: str) -> None:
        name = text.strip().lower()
        if name and os.path.isdir(text.strip()):
            self.set_kind("split")
        elif name.endswith((".jsonl", ".json")):
            self.set_kind("pairs")
        elif name.endswith((".txt", ".md", ".text")):
            self.set_kind("text")
        self._update_options()

    def _defaulted(self) -> bool:
        """Whether the file is one the dialog filled in (nothing, an example, the run's data set)."""
        return self.file.text().strip() in ("", *self.examples.values())

    def _on_checkpoint_changed(self) -> None:
        """While a file the dialog filled in is there: a model with a chat template (an instruction fine-tune)
        is evaluated on the example pairs it answers; the demo's runs on the held-out text written for them;
        any other on its data set's validation split (a Shakespeare run was given the demo's text)."""
        if self._defaulted():
            data = self.examples["split"] = data_set_of(self.picker.checkpoint())
            chat = has_chat_template(self.picker.checkpoint()) and self.examples["pairs"]
            demo = self.examples["text"] and os.path.basename(data) == DEMO_DATA
            self.set_kind("pairs" if chat else "split" if data and not demo else "text")
            self.file.setText(self.examples[self.kind.currentData()])
        self._update_options()

    def _on_kind_changed(self) -> None:
        """Another kind: a file the dialog filled in gives way to the one of that kind."""
        split = self.kind.currentData() == "split"
        self.file_label.setText("Data set" if split else "File")
        self.file.setPlaceholderText("a prepared data set's folder" if split else "the file to evaluate on")
        if self._defaulted():
            self.file.setText(self.examples[self.kind.currentData()])
        self._update_options()

    def _on_browse_clicked(self) -> None:
        kind = self.kind.currentData()
        if kind == "split":
            path = QFileDialog.getExistingDirectory(self, "Prepared data set", self.file.text())
        else:
            path, _ = QFileDialog.getOpenFileName(self, "File to evaluate on", self.file.text(), FILTERS[kind])
        if path:
            self.file.setText(path)

    def _on_evaluate_button_clicked(self) -> None:
        self.start_evaluation()

    def _on_close(self) -> None:
        if self.job.is_running():
            self.job.cancel()
        else:
            self.accept()

    def _on_job_progressed(self, stage: str, done: int, total: int) -> None:
        if total > 0:
            self.progress.setRange(0, total)
            self.progress.setValue(done)
            split = self.job.request is not None and self.job.request.kind == "split"
            unit = "pairs answered" if stage == "pairs" else "of the split read" if split else "of the file read"
            share = f"{done} of {total}" if stage == "pairs" else f"{100 * done // total}%"
            self.status.setText(f"Evaluating… {share} {unit}")

    def _on_job_finished(self, result: EvalResult) -> None:
        self.result = result
        self.buttons.button(QDialogButtonBox.StandardButton.Close).setText("Close")
        done = ""
        if result.ok and result.evaluation is not None:
            saved = os.path.relpath(result.evaluation.path, os.path.dirname(result.request.checkpoint))
            done = f"{result.evaluation.headline()}\nSaved as {saved}"
        self._show_outcome(result, "Evaluation", done)
        self._update_options()
        if result.ok:
            self.evaluated.emit(result)

    def _on_results_button_clicked(self) -> None:
        if self.picker.checkpoint():
            self.results_requested.emit(self.picker.checkpoint())
