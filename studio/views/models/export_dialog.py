"""Export... on a checkpoint: format, number format, destination; busy progress, then the written path with a
button that opens its folder. The ExportJob does the work."""

from __future__ import annotations

import os

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QComboBox,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QWidget,
)

from core.layout import latest_checkpoint
from studio.controllers.export_job import (
    DTYPES,
    FOLDERS,
    ExportJob,
    ExportRequest,
    ExportResult,
    default_out,
    formats_for,
    hf_gguf_refusal,
    missing_packages,
    missing_text,
)
from studio.views.common.job_dialog import JobDialog

FORMAT_TITLES = {"hf": "Hugging Face folder (transformers)", "gguf": "GGUF file (llama.cpp, Ollama)",
                 "onnx": "ONNX graph (ONNX Runtime)", "peft": "LoRA adapter only (PEFT, on the base model)",
                 "gguf-lora": "LoRA adapter only (GGUF: llama.cpp --lora, Ollama ADAPTER)"}

LORA_NOTES = {"peft": "The adapters alone, for the base model's Hugging Face version.",
              "gguf-lora": "The adapters alone, for the base model's GGUF export."}


class ExportDialog(JobDialog):
    def __init__(self, job: ExportJob, checkpoint: str, parent: QWidget | None = None) -> None:
        super().__init__("Export checkpoint", parent)
        self.job, self.checkpoint = job, checkpoint
        self.refusal = hf_gguf_refusal(checkpoint)  # read once: _refresh runs at every keystroke of the path
        self.result: ExportResult | None = None
        self.format = QComboBox()
        formats = formats_for(checkpoint)
        self.lora = "peft" in formats  # a LoRA fine-tune: its adapters merged, or alone
        for fmt in formats:
            self.format.addItem(FORMAT_TITLES[fmt], fmt)
        self.dtype = QComboBox()
        self.out = QLineEdit()
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._on_browse_clicked)
        row = QHBoxLayout()
        row.addWidget(self.out, 1)
        row.addWidget(browse)
        form = QFormLayout()
        form.addRow("Checkpoint", QLabel(checkpoint))
        form.addRow("Format", self.format)
        form.addRow("Number format", self.dtype)
        form.addRow("Destination", row)
        self.open_button = QPushButton("Open Folder")
        self.open_button.setVisible(False)
        self.open_button.clicked.connect(self._on_open_button_clicked)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.export_button = self.buttons.addButton("Export", QDialogButtonBox.ButtonRole.ActionRole)
        self.export_button.clicked.connect(self._on_export_button_clicked)
        self.buttons.rejected.connect(self._on_close)
        self._lay_out(form, self.open_button, self.buttons)
        self.format.currentIndexChanged.connect(self._on_format_changed)
        self.dtype.currentIndexChanged.connect(self._on_dtype_changed)
        self.out.textChanged.connect(self._refresh)  # typed, browsed, or a new default
        job.finished.connect(self._on_job_finished)
        if self.refusal:  # a model only ONNX can carry: offered first, not a failure
            self.format.setCurrentIndex(self.format.findData("onnx"))
        self._on_format_changed()

    def _on_format_changed(self, *_args) -> None:
        self.dtype.blockSignals(True)
        self.dtype.clear()
        self.dtype.addItems(list(DTYPES[self.format.currentData()]))
        self.dtype.blockSignals(False)
        self._on_dtype_changed()
        self._refresh()

    def _on_dtype_changed(self, *_args) -> None:
        self.out.setText(default_out(self.checkpoint, self.format.currentData(), self.dtype.currentText()))

    def _refresh(self, *_args) -> None:
        """What stops an export is said now, not after a click on Export: the format has no architecture for
        the model, its package is missing, or the destination exists (an export replaces nothing)."""
        missing = missing_packages(self.format.currentData())
        out = self.out.text().strip()
        if self.refusal and self.format.currentData() != "onnx":
            problem = f"{FORMAT_TITLES[self.format.currentData()]} cannot carry this model: {self.refusal}."
        elif missing:
            problem = missing_text(self.format.currentData(), missing)
        elif out and os.path.exists(out):
            problem = f"{out} already exists: choose another name (an export replaces nothing)."
        else:
            problem = ""
        self.export_button.setEnabled(not problem and bool(out) and not self.job.is_running())
        if not problem and self.lora:
            problem = LORA_NOTES.get(self.format.currentData(),
                                     "A whole model: the LoRA adapters merged into the base's weights.")
        self._set_status(problem)

    def _on_browse_clicked(self) -> None:
        if self.format.currentData() in FOLDERS:
            path = QFileDialog.getExistingDirectory(self, "Folder to hold the export")
            path = f"{path}/{self.out.text().rsplit('/', 1)[-1]}" if path else ""
        else:
            path, _ = QFileDialog.getSaveFileName(self, "Export to", self.out.text())
        if path:
            self.out.setText(path)

    def start_export(self) -> bool:
        request = ExportRequest(self.checkpoint, self.format.currentData(), self.out.text().strip(),
                                self.dtype.currentText())
        if not request.out or not self.job.start(request):
            return False
        self._show_busy(f"Exporting to {request.out} …")
        self.export_button.setEnabled(False)
        self.open_button.setVisible(False)
        return True

    def _on_export_button_clicked(self) -> None:
        self.start_export()

    def _on_close(self) -> None:
        if self.job.is_running():
            self.job.cancel()
        else:
            self.accept()

    def _on_job_finished(self, result: ExportResult) -> None:
        self.result = result
        self.export_button.setEnabled(not result.ok)  # done: that name exists now; another format, dtype or name
        self.open_button.setVisible(result.ok)  # before the outcome: the dialog grows to fit both
        hint = f"\nRun it with {result.hint}" if result.hint else ""
        self._show_outcome(result, "Export", f"Wrote {result.out}{hint}")

    def _on_open_button_clicked(self) -> None:
        if self.result is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(self.result.folder))


def run_export_dialog(run_dir: str | None, parent: QWidget | None = None, checkpoint: str | None = None) -> None:
    """Export… on a run's latest checkpoint (or the given one)."""
    checkpoint = checkpoint or (latest_checkpoint(run_dir) if run_dir else None)
    if checkpoint:
        job = ExportJob(parent)
        ExportDialog(job, checkpoint, parent).exec()
        job.shutdown()
