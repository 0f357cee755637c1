"""FinetuneDialog: fine-tune a base model on one's own data, in four steps on one page.

1. Base model: any checkpoint (an imported model, or a run's) with its shape and chat template.
2. Data: a `.jsonl` file of instruction data (prompt/completion or messages) or a text file; the engine
   previews the first examples with the base's tokenizer and template, trained tokens green, masked
   (prompt) tokens grey, and names a bad line by file and line before anything is written.
3. Method: LoRA (rank, alpha, which projections) or full; the trainable parameter count and the memory
   estimate follow every change.
4. Training: run name, learning rate, steps, batch size; "Create run" prepares the data set
   (WORKSPACE/data/<name>, the engine's `prepare --tokenizer-from`), creates the run and, when asked,
   starts it so the usual live curves follow.
"""

from __future__ import annotations

import os

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from core.config import ConfigError
from core.estimate import human_bytes, human_count
from studio.controllers.finetune import (
    DEFAULT_LR,
    LORA_TARGETS,
    FinetuneChoices,
    Preview,
    PreviewJob,
    data_format,
    prepared_already,
    problems,
    read_base,
    sizes,
    suggested_names,
)
from studio.controllers.prepare import PrepareJob, PrepareResult
from studio.theme import banner_style
from studio.views.common.checkpoint_picker import CheckpointPicker
from studio.views.common.elided_label import ElidedLabel
from studio.views.common.job_dialog import JobDialog
from studio.views.common.screen_fit import resize_to_fit
from studio.views.common.token_text import MASKED_COLOURS, TRAINED_COLOURS, TokenText
from studio.workspace.workspace import example_file

FILTER = "Instruction data or text (*.jsonl *.json *.txt *.md *.text);;All files (*)"
TARGET_TIPS = {"attn_qkv": "query, key and value projections", "attn_out": "attention output projection",
               "mlp_in": "feed-forward input (and gate) projections", "mlp_out": "feed-forward output projection"}
PREVIEW_DELAY_MS = 250  # typing a path: preview once it settles


def _legend(colour: str, text: str) -> QLabel:
    label = QLabel(f"<span style='background:{colour}; color:{colour}'>&nbsp;■■&nbsp;</span>&nbsp;{text}")
    label.setTextFormat(Qt.TextFormat.RichText)
    return label


def _note() -> ElidedLabel:
    """A line of explanation, shortened with '…' where the dialog is narrow, whole in its tooltip (not
    wrapped: a wrapped QLabel in a form reserves the height of its narrowest layout, leaving a gap under
    one line of text; cut at the edge, the line ended mid-word with no sign of more)."""
    return ElidedLabel("", mode=Qt.TextElideMode.ElideRight)


def _wrapped(text: str = "", lines: int = 3, rich: bool = False) -> QLabel:
    """A wrapped label that keeps room for `lines` lines at the dialog's minimum size (the dialog's own
    minimum does not follow wrapped text, which was cut off at the bottom of its box)."""
    label = QLabel(text)
    label.setWordWrap(True)
    if rich:
        label.setTextFormat(Qt.TextFormat.RichText)
    label.setMinimumHeight(lines * label.fontMetrics().lineSpacing() + 2)
    return label


class FinetuneDialog(JobDialog):
    created = Signal(str, bool)  # the new run's folder, whether to start training now

    def __init__(self, session, run_dir: str = "", checkpoint: str = "", parent: QWidget | None = None) -> None:
        super().__init__("Fine-tune a model", parent)
        self.session = session
        ws = session.workspace
        self.data_root, self.runs_root = ws.data_dir, ws.runs_dir
        self.prepare_job = PrepareJob(self)
        self.preview_job = PreviewJob(self)
        self.base = None                       # BaseModel of the picked checkpoint
        self.preview: Preview | None = None
        self._pending: FinetuneChoices | None = None  # what the running prepare is for
        self._names_touched = {"data": False, "run": False}
        self._prepared: tuple[str, dict] | None = None  # a data set made from this file and base already
        self._preview_timer = QTimer(self)
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(PREVIEW_DELAY_MS)
        self._preview_timer.timeout.connect(self._start_preview)

        body = QVBoxLayout()
        body.addWidget(self._build_base_box(ws.root, run_dir, checkpoint))
        body.addWidget(self._build_data_box(), 1)
        row = QHBoxLayout()
        row.addWidget(self._build_method_box(), 1)
        row.addWidget(self._build_training_box(), 1)
        body.addLayout(row)
        self.problem = QLabel()
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet(banner_style("error"))
        self.problem.hide()
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.create_button = self.buttons.addButton("Prepare data and create run",
                                                    QDialogButtonBox.ButtonRole.AcceptRole)
        self.create_button.clicked.connect(self._on_create_button_clicked)
        self.buttons.rejected.connect(self._on_cancel)
        self._lay_out(body, self.problem, self.buttons)
        self.progress.hide()

        self.picker.checkpoint_changed.connect(lambda _p: self._on_base_changed())
        self.picker.checkpoint_refused.connect(self._show_base_problem)
        self.preview_job.finished.connect(self._on_preview_finished)
        self.prepare_job.progressed.connect(self._on_prepare_progressed)
        self.prepare_job.finished.connect(self._on_prepare_finished)
        resize_to_fit(self, 980, 860)  # a 768 px laptop screen had the buttons below its edge
        self._on_base_changed()
        self.data_file.setText(example_file(ws.root, "finetune"))  # the demo's instruction examples, if any

    # ------------------------------------------------------------------ construction
    def _build_base_box(self, root: str, run_dir: str, checkpoint: str) -> QGroupBox:
        box = QGroupBox("1  Base model")
        self.picker = CheckpointPicker()
        self.picker.set_workspace(root)
        if run_dir:
            self.picker.set_run(run_dir)
        if checkpoint:
            self.picker.set_checkpoint(checkpoint)
        self.base_label = _note()
        form = QFormLayout(box)
        form.addRow("Checkpoint", self.picker)
        form.addRow("", self.base_label)
        return box

    def _build_data_box(self) -> QGroupBox:
        box = QGroupBox("2  Data")
        self.data_file = QLineEdit()
        self.data_file.setPlaceholderText("a .jsonl file of {\"prompt\", \"completion\"} or {\"messages\"} lines, "
                                          "or a text file")
        self.data_file.textChanged.connect(self._on_data_file_text_changed)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._on_browse_clicked)
        pick = QHBoxLayout()
        pick.addWidget(self.data_file, 1)
        pick.addWidget(browse)
        self.data_kind = _note()
        self.data_name = QLineEdit()
        self.data_name.textEdited.connect(lambda _t: self._touch("data"))
        self.data_name.textChanged.connect(lambda _t: self._update())
        self.reuse = QCheckBox()  # shown when this file was prepared with this base's tokenizer already
        self.reuse.setChecked(True)
        self.reuse.hide()
        self.reuse.toggled.connect(self._on_reuse_toggled)
        self.sample = TokenText()
        self.sample.setMinimumHeight(60)  # three lines; the dialog then fits a 640 px high screen
        self.sample.show_message("Choose a base model and a data file to see how its examples are trained.")
        legend = QHBoxLayout()
        legend.addWidget(_legend(TRAINED_COLOURS[0], "trained (the answer: in the loss)"))
        legend.addWidget(_legend(MASKED_COLOURS[0], "masked (the prompt and template: not trained)"))
        legend.addStretch(1)
        self.preview_status = QLabel("")
        self.preview_status.setWordWrap(True)
        form = QFormLayout()
        form.addRow("File", pick)
        form.addRow("", self.data_kind)
        form.addRow("Data set name", self.data_name)
        form.addRow("", self.reuse)
        lay = QVBoxLayout(box)
        lay.addLayout(form)
        lay.addWidget(self.sample, 1)
        lay.addLayout(legend)
        lay.addWidget(self.preview_status)
        return box

    def _build_method_box(self) -> QGroupBox:
        box = QGroupBox("3  Method")
        self.lora = QRadioButton("LoRA: freeze the base, train small adapters")
        self.full = QRadioButton("Full: train every weight")
        self.lora.setChecked(True)
        self.lora.toggled.connect(self._on_method_toggled)
        self.rank = QSpinBox()
        self.rank.setRange(1, 4096)
        self.rank.setValue(8)
        self.alpha = QDoubleSpinBox()
        self.alpha.setRange(0.0, 100000.0)
        self.alpha.setValue(16.0)
        self.rank.valueChanged.connect(lambda _v: self._update())
        self.alpha.valueChanged.connect(lambda _v: self._update())
        self.targets = {}
        targets = QHBoxLayout()
        for name in LORA_TARGETS:
            check = QCheckBox(name)
            check.setToolTip(TARGET_TIPS[name])
            check.setChecked(name in ("attn_qkv", "attn_out"))
            check.toggled.connect(lambda _on: self._update())
            targets.addWidget(check)
            self.targets[name] = check
        targets.addStretch(1)
        self.grad_ckpt = QCheckBox("Recompute activations (less memory, ~30% slower)")
        self.grad_ckpt.toggled.connect(lambda _on: self._update())
        self.estimate = _wrapped(rich=True)
        form = QFormLayout(box)
        form.addRow(self.lora)
        form.addRow("Rank", self.rank)
        form.addRow("Alpha", self.alpha)
        form.addRow("Adapt", targets)
        form.addRow(self.full)
        form.addRow(self.grad_ckpt)
        form.addRow(self.estimate)
        return box

    def _build_training_box(self) -> QGroupBox:
        box = QGroupBox("4  Training")
        self.run_name = QLineEdit()
        self.run_name.textEdited.connect(lambda _t: self._touch("run"))
        self.run_name.textChanged.connect(lambda _t: self._update())
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(6)
        self.lr.setRange(1e-6, 1.0)
        self.lr.setSingleStep(1e-4)
        self.lr.setValue(DEFAULT_LR["lora"])
        self.steps = QSpinBox()
        self.steps.setRange(1, 1 << 30)
        self.steps.setValue(300)
        self.batch = QSpinBox()
        self.batch.setRange(1, 4096)
        self.batch.setValue(8)
        for box_ in (self.lr, self.steps, self.batch):
            box_.valueChanged.connect(lambda _v: self._update())
        self.start_now = QCheckBox("Start training when the data is ready")
        self.start_now.setChecked(True)
        hint = _wrapped("It starts from the base's weights at step 0 with a fresh optimizer; edit the rest "
                        "on its Config tab.")
        form = QFormLayout(box)
        form.addRow("Run name", self.run_name)
        form.addRow("Learning rate", self.lr)
        form.addRow("Steps", self.steps)
        form.addRow("Batch size", self.batch)
        form.addRow(self.start_now)
        form.addRow(hint)
        return box

    # ------------------------------------------------------------------ state
    def choices(self) -> FinetuneChoices:
        method = "lora" if self.lora.isChecked() else "full"
        return FinetuneChoices(
            base=self.picker.checkpoint() or "", data_file=os.path.abspath(self.data_file.text().strip())
            if self.data_file.text().strip() else "", data_name=self.data_name.text().strip(),
            run_name=self.run_name.text().strip(), method=method, lora_rank=self.rank.value(),
            lora_alpha=self.alpha.value(), lora_targets=tuple(n for n, c in self.targets.items() if c.isChecked()),
            lr=self.lr.value(), max_steps=self.steps.value(), batch_size=self.batch.value(),
            grad_checkpointing=self.grad_ckpt.isChecked(), reuse=self._reusing())

    def _reusing(self) -> bool:
        return self._prepared is not None and self.reuse.isChecked()

    def problems(self) -> list[tuple[str, str]]:
        found = problems(self.choices(), self.data_root, self.runs_root)
        if self.preview is not None and self.preview.status == "failed" and self.preview.failure is not None:
            found.append(("data", self.preview.failure.headline))
        return found

    def _touch(self, which: str) -> None:
        self._names_touched[which] = True

    def _suggest_names(self) -> None:
        c = self.choices()
        if not (c.base and c.data_file):
            return
        taken_data = set(os.listdir(self.data_root)) if os.path.isdir(self.data_root) else set()
        taken_runs = set(os.listdir(self.runs_root)) if os.path.isdir(self.runs_root) else set()
        data, run = suggested_names(c.data_file, c.base, taken_data, taken_runs)
        self._prepared = prepared_already(self.data_root, c.data_file, c.base)
        if self._prepared is not None:
            name, meta = self._prepared
            size = (f"{meta['train_examples']:,} training examples" if isinstance(meta.get("train_examples"), int)
                    else f"{meta.get('train_tokens', 0):,} training tokens")
            shown = name if len(name) <= 32 else f"{name[:20]}…{name[-11:]}"  # the dialog keeps its width
            self.reuse.setText(f"Use {shown}: this file prepared with this model's tokenizer already ({size})")
            self.reuse.setToolTip(os.path.join(self.data_root, name))
        self.reuse.setVisible(self._prepared is not None)
        if self._reusing():
            self.data_name.setText(self._prepared[0])
        elif not self._names_touched["data"]:
            self.data_name.setText(data)
        self.data_name.setReadOnly(self._reusing())
        if not self._names_touched["run"]:
            self.run_name.setText(run)

    def _update(self) -> None:
        """Enable what applies, refresh the estimate, and say what blocks creating the run."""
        lora = self.lora.isChecked()
        for widget in (self.rank, self.alpha, *self.targets.values()):
            widget.setEnabled(lora)
        self._update_estimate()
        busy = self.prepare_job.is_running()
        self.create_button.setEnabled(not busy and not self.problems())
        self.create_button.setText("Create run" if self._reusing() else "Prepare data and create run")

    def _update_estimate(self) -> None:
        if self.base is None:
            self.estimate.setText("")
            return
        try:
            est = sizes(self.choices(), self.base)
        except ConfigError as exc:
            self.estimate.setText(f"<span style='color:#c0392b'>{exc.problems[0]}</span>")
            return
        mem = est["memory"]
        share = 100 * est["trainable_params"] / max(1, est["params"])
        share_text = f"{share:.0f}" if share >= 10 else f"{share:.2g}"  # .2g wrote a full fine-tune's "1e+02"
        self.estimate.setText(
            f"<b>Trainable: {human_count(est['trainable_params'])}</b> of {human_count(est['params'])} "
            f"parameters ({share_text}%)<br>"
            f"Memory ≈ <b>{human_bytes(mem['total'])}</b>: weights {human_bytes(mem['weights'])}, "
            f"optimizer {human_bytes(mem['optimizer'])}, activations {human_bytes(mem['activations'])} "
            f"({est['precision']} on {est['device']})")

    def _show_base_problem(self, text: str) -> None:
        self.base_label.setStyleSheet("color: #c0392b;")
        self.base_label.setText(text)

    # ------------------------------------------------------------------ preview
    def _start_preview(self) -> None:
        c = self.choices()
        if self.base is None or not c.data_file or not os.path.isfile(c.data_file):
            return
        self.preview = None
        self.preview_status.setText("Reading the first examples with the base model's tokenizer…")
        self.preview_job.start(c.base, c.data_file)

    def _on_preview_finished(self, preview: Preview) -> None:
        if (preview.base, preview.data_file) != (self.choices().base, self.choices().data_file):
            return  # the choices changed meanwhile; a newer preview follows
        self.preview = preview
        if preview.ok and preview.examples:
            self.sample.set_tokens(*preview.tokens())
            n, trained, total = preview.counts()
            cut = sum(1 for ex in preview.examples if ex.get("truncated"))
            what = "examples" if data_format(preview.data_file) == "sft" else "the start of the file"
            text = (f"First {n} {what}: {trained:,} of {total:,} tokens trained" if n > 1 or what == "examples"
                    else f"The start of the file: {total:,} tokens, every one trained")
            if cut:
                text += f"; {cut} cut at the model's context"
            text += "."
            if preview.unknown:
                text += (f"<br><span style='color:#b9770e'>{preview.unknown:,} of the {total:,} tokens are &lt;unk&gt;: "
                         "characters the base model's vocabulary does not have (a character-level model knows "
                         "only its training text's characters). It can neither read nor write them.</span>")
            self.preview_status.setText(text)
        elif preview.status == "failed" and preview.failure is not None:
            self.sample.show_message("No preview: the engine refused the data.")
            self.preview_status.setText(f"<span style='color:#c0392b'>{preview.failure.headline}</span>")
        self._update()

    # ------------------------------------------------------------------ slots
    def _on_base_changed(self) -> None:
        checkpoint = self.picker.checkpoint()
        self.base = None
        if checkpoint:
            try:
                self.base = read_base(checkpoint)
                self.base_label.setStyleSheet("")
                self.base_label.setText(self.base.summary())
            except Exception as exc:  # UsageError with the engine's words
                self._show_base_problem(str(exc))
        else:
            self.base_label.setStyleSheet("")
            self.base_label.setText("No checkpoint yet: train a run or import a model (File → Import Model…).")
        self._suggest_names()
        self._preview_timer.start()
        self._update()

    def _on_data_file_text_changed(self, text: str) -> None:
        path = text.strip()
        if not path:
            self.data_kind.setText("")
        elif data_format(path) == "sft":
            self.data_kind.setText("Instruction data (JSON Lines): only the answers are trained; the base "
                                   "model's chat template frames each conversation.")
        else:
            self.data_kind.setText("Plain text: continued pre-training, every token trained, with the base "
                                   "model's vocabulary.")
        self.preview = None
        self._suggest_names()
        self._preview_timer.start()
        self._update()

    def _on_browse_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Data to fine-tune on", self.data_file.text(), FILTER)
        if path:
            self.data_file.setText(path)

    def _on_method_toggled(self, lora: bool) -> None:
        if self.lr.value() == DEFAULT_LR["full" if lora else "lora"]:  # untouched: follow the method
            self.lr.setValue(DEFAULT_LR["lora" if lora else "full"])
        self._update()

    def _on_reuse_toggled(self, _on: bool) -> None:
        self._names_touched["data"] = False  # the suggestion again, or the prepared set's name
        self._suggest_names()
        self._update()

    def _on_create_button_clicked(self) -> None:
        self.create_run()

    def create_run(self) -> bool:
        """Prepare the data set (the engine), then create the run when it is done; False if blocked."""
        found = self.problems()
        self.problem.setText("\n".join(why for _f, why in found))
        self.problem.setVisible(bool(found))
        if found or self.base is None:
            return False
        choices = self.choices()
        if choices.reuse:  # prepared already: the run trains on that data set
            self._create(choices, os.path.join(self.data_root, choices.data_name), self._prepared[1], "Uses")
            return True
        self.progress.show()
        self._show_busy(f"Preparing {choices.data_name} with {os.path.basename(choices.base)}'s tokenizer…")
        self.prepare_job.start(choices.prepare_request(self.data_root))
        self.buttons.button(QDialogButtonBox.StandardButton.Cancel).setText("Cancel preparing")
        self._pending = choices
        self._update()
        return True

    def _on_prepare_progressed(self, stage: str, done: int, total: int) -> None:
        if total > 0:
            self.progress.setRange(0, total)
            self.progress.setValue(done)

    def _on_prepare_finished(self, result: PrepareResult) -> None:
        self.buttons.button(QDialogButtonBox.StandardButton.Cancel).setText("Cancel")
        if not result.ok:
            self._show_outcome(result, "Preparing the data", "")
            self._update()
            return
        self._create(self._pending, result.out, result.meta, "Prepared")

    def _create(self, choices: FinetuneChoices, data_dir: str, meta: dict, verb: str) -> None:
        text = choices.config_text(self.base, data_dir, self.session.workspace.run(choices.run_name).dir)
        run = self.session.finetune_run(choices.run_name, text, choices.base)
        examples = meta.get("train_examples")
        self.status.setText(f"{verb} {choices.data_name}"
                            + (f": {examples} training examples" if examples else "") + f"; created {run.name}.")
        self.created.emit(run.dir, self.start_now.isChecked())
        self.accept()

    def _on_cancel(self) -> None:
        if self.prepare_job.is_running():
            self.prepare_job.cancel()
        else:
            self.preview_job.cancel()
            self.reject()


def open_finetune(window, run_dir: str | None = None) -> FinetuneDialog | None:
    """Show the dialog over the main window, the base preselected from `run_dir`'s latest checkpoint; the
    run it creates is selected, then started (the Training tab's live curves) or shown on the Config tab."""
    if window.session.workspace is None:
        return None
    dialog = FinetuneDialog(window.session, run_dir or "", parent=window)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

    def created(new_run: str, start: bool) -> None:
        window.runs_panel.select_run(new_run)
        if not (start and window.start_training()):
            window.show_tab("config")

    dialog.created.connect(created)
    dialog.show()
    return dialog
