"""File -> Import model...: pick an HF folder, a .gguf file or a PEFT LoRA adapter folder (then also the base
model it goes on: the workspace's import of the model it names, preselected) and a name; the ImportJob does
the work."""

from __future__ import annotations

import os

from PySide6.QtWidgets import (
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QWidget,
)

from core.import_config import is_adapter
from studio.controllers.import_job import (
    ImportJob,
    ImportResult,
    adapter_base,
    describe_source,
    import_name,
    missing_for_source,
)
from studio.views.common.checkpoint_picker import CheckpointPicker
from studio.views.common.job_dialog import JobDialog
from studio.views.common.start_folder import start_folder


class ImportDialog(JobDialog):
    """Source, destination name (a new folder under the workspace's runs/), busy progress, the outcome."""

    def __init__(self, job: ImportJob, runs_dir: str, unique_name, parent: QWidget | None = None) -> None:
        super().__init__("Import model", parent)
        self.job, self.runs_dir, self._unique_name = job, runs_dir, unique_name
        self.result: ImportResult | None = None
        self._missing = ""  # what the source needs that is not installed
        self._refused = ""  # why the source cannot be imported (its config.json)
        self._note = ""     # the status the source gave (replaced when the source changes)
        self.source = QLineEdit()
        self.source.setPlaceholderText("a Hugging Face model folder, a .gguf file, or a LoRA adapter folder (PEFT)")
        self.source.textChanged.connect(self._on_source_text_changed)
        self.folder_button, self.file_button = QPushButton("Folder…"), QPushButton("GGUF file…")
        self.folder_button.clicked.connect(self._on_folder_button_clicked)
        self.file_button.clicked.connect(self._on_file_button_clicked)
        row = QHBoxLayout()
        row.addWidget(self.source, 1)
        row.addWidget(self.folder_button)
        row.addWidget(self.file_button)
        self.name = QLineEdit()
        self.base = CheckpointPicker()  # for an adapter: the model it goes on
        self.base.set_workspace(os.path.dirname(runs_dir))
        self.base.combo.setPlaceholderText("the model the adapter was trained on")
        self.base.combo.setCurrentIndex(-1)  # none until found or picked: a wrong base gives wrong outputs
        self.base.checkpoint_changed.connect(lambda _path: self._update_button())
        form = QFormLayout()
        form.addRow("Source", row)
        form.addRow("Base model", self.base)
        form.addRow("Name in workspace", self.name)
        self.form = form
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.import_button = self.buttons.addButton("Import", QDialogButtonBox.ButtonRole.AcceptRole)
        self.import_button.clicked.connect(self._on_import_button_clicked)
        self.buttons.rejected.connect(self._on_cancel)
        self._lay_out(form, self.buttons)
        job.finished.connect(self._on_job_finished)
        self._on_source_text_changed("")

    def _on_source_text_changed(self, text: str) -> None:
        if text and not self.name.isModified():  # follow the source until the user edits the name; a name
            self.name.setText(self._unique_name(import_name(text)))  # taken shows as the one it will get
        missing = missing_for_source(text)  # said at once, not after an engine start that fails
        summary, refused = describe_source(text)  # what the folder holds, or why it cannot come in
        note = missing or refused or summary
        if note or self.status.text() == self._note:  # an outcome shown stays until the source says more
            self._set_status(note)
        self._missing, self._refused, self._note = missing, refused, note
        adapter = bool(text.strip()) and is_adapter(text.strip())
        self.form.setRowVisible(self.base, adapter)
        if adapter and not self.base.pinned:  # the workspace's import of the model it names, when there is one
            found = adapter_base(text, self.base.checkpoints())
            if found:
                self.base.set_checkpoint(found)
                self.base.pinned = False  # another adapter may name another model
            else:
                self.base.combo.setCurrentIndex(-1)
        self._update_button()

    def _update_button(self) -> None:
        text = self.source.text().strip()
        needs_base = bool(text) and is_adapter(text) and not self.base.checkpoint()
        self.import_button.setEnabled(bool(text) and not self._missing and not self._refused and not needs_base
                                      and not self.job.is_running())

    def _start_folder(self) -> str:
        """Where the pickers open: beside the source typed or picked last, else the home folder (they
        opened in the folder the studio was started from)."""
        return start_folder([self.source.text().strip()])

    def _on_folder_button_clicked(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Hugging Face model folder", self._start_folder())
        if path:
            self.source.setText(path)

    def _on_file_button_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "GGUF model file", self._start_folder(), "GGUF (*.gguf)")
        if path:
            self.source.setText(path)

    def start_import(self) -> bool:
        source = self.source.text().strip()
        run_dir = os.path.join(self.runs_dir, self._unique_name(self.name.text().strip() or import_name(source)))
        base = self.base.checkpoint() if is_adapter(source) else ""
        if not self.job.start(source, run_dir, base):
            return False
        self._show_busy(f"Importing {source} …")
        self.import_button.setEnabled(False)
        return True

    def _on_import_button_clicked(self) -> None:
        self.start_import()

    def _on_cancel(self) -> None:
        if self.job.is_running():
            self.job.cancel()
        elif self.result is not None and self.result.ok:
            self.accept()
        else:
            self.reject()

    def _on_job_finished(self, result: ImportResult) -> None:
        self.result = result
        what = "a LoRA fine-tune under its base model" if self.job.base else "a base model"
        self._show_outcome(result, "Import", f"Imported as {os.path.basename(result.run_dir)}: {what} in the runs list.")
        if result.ok:
            self.import_button.hide()
            self.buttons.button(QDialogButtonBox.StandardButton.Cancel).setText("Close")
        self.import_button.setEnabled(bool(self.source.text().strip()) and not result.ok and not self._missing
                                      and not self._refused)


def run_import_dialog(ws, parent: QWidget | None = None, on_imported=None) -> ImportResult | None:
    """File -> Import Model…: the model becomes a run folder (a base model) in `ws`'s runs list;
    `on_imported(result)` runs as soon as an import succeeds, while the dialog still shows the outcome."""
    job = ImportJob(parent)
    dialog = ImportDialog(job, ws.runs_dir, lambda name: ws.unique_run_name(name, counted=False), parent)
    if on_imported is not None:
        job.finished.connect(lambda result: on_imported(result) if result.ok else None)
    dialog.exec()
    job.shutdown()
    return dialog.result
