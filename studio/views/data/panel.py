"""DataPanel: gather a corpus, ask for it to be prepared, and browse the workspace's data sets.

Left: sources (files, folders, dropped paths, built-in corpora), tokenizer, vocabulary size, name and
validation share; Prepare emits `prepare_requested` with a PrepareRequest and the panel shows the
progress and result of the PrepareJob it observes (studio.controllers.prepare), with a Cancel button.
Right: the prepared WORKSPACE/data/<name> folders, their token counts and sources, and a sample
coloured by token boundaries (read by studio.workspace.datasets).
"""

from __future__ import annotations

import html
import os

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QPainter, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from core.config import human_count
from core.errors import UsageError
from studio.controllers.prepare import PrepareJob, PrepareResult
from studio.controllers.prepare_request import PrepareRequest, make_request
from studio.views.common.start_folder import start_folder
from studio.views.common.token_text import TokenText
from studio.views.common.wrap_row import WrapRow
from studio.views.config.form import GROUP_STYLE
from studio.workspace.datasets import NO_PREVIEW, data_sets, detail_rows, read_preview, token_total
from studio.workspace.workspace import safe_name, unique_name

BUILTIN_CORPORA = {"@synthetic": "built-in synthetic tasks (copy, reverse, sort, arithmetic)",
                   "@stdlib": "Python standard library sources on this machine"}
ERROR_STYLE = ("QLabel { color: #922b21; background: #fdecea; border: 1px solid #e6b0aa; "
               "border-radius: 3px; padding: 6px; }")


class SourceList(QListWidget):
    """The list of inputs; accepts files and folders dropped from a file manager."""

    paths_dropped = Signal(object)  # list[str]

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DropOnly)

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().paintEvent(event)
        if self.count() == 0:  # an empty list says what it is for
            painter = QPainter(self.viewport())
            painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(self.viewport().rect(), Qt.AlignmentFlag.AlignCenter,
                             "Drop text files or folders here,\nor use the buttons below")
            painter.end()

    def dragEnterEvent(self, event) -> None:  # noqa: N802 (Qt override)
        if event.mimeData().hasUrls():
            event.acceptProposedAction()
        else:
            super().dragEnterEvent(event)

    def dragMoveEvent(self, event) -> None:  # noqa: N802 (Qt override)
        if event.mimeData().hasUrls():
            event.acceptProposedAction()
        else:
            super().dragMoveEvent(event)

    def dropEvent(self, event) -> None:  # noqa: N802 (Qt override)
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.paths_dropped.emit(paths)


class DataPanel(QWidget):
    """Prepare data sets into WORKSPACE/data/<name> and inspect the prepared ones."""

    prepare_requested = Signal(object)  # a PrepareRequest
    cancel_requested = Signal()
    trash_requested = Signal(str)       # a data set's name (its button, or the list's right-click menu)

    def __init__(self, job: PrepareJob | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self._workspace: str | None = None
        self.job: PrepareJob | None = None
        self._build_prepare_side()
        self._build_datasets_side()
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.prepare_box)
        split.addWidget(self.datasets_box)
        for i, share in enumerate((2, 3)):  # both give up room in a narrow window (the data sets' details
            split.setStretchFactor(i, share)  # were squeezed to 60 px while the sources kept 415)
        split.setSizes([420, 620])
        lay = QVBoxLayout(self)
        lay.addWidget(split)
        self.setStyleSheet(GROUP_STYLE)
        self.set_job(job)

    # ------------------------------------------------------------------ building
    def _build_prepare_side(self) -> None:
        self.prepare_box = QGroupBox("New data set")
        self.source_list = SourceList()
        self.source_list.setToolTip("Text files, folders (searched recursively) and built-in corpora.\n"
                                    "Drop files or folders here.")
        self.source_list.paths_dropped.connect(self.add_sources)
        self.source_list.itemSelectionChanged.connect(self._update_buttons)
        self.add_files_button = QPushButton("Add files…")
        self.add_files_button.clicked.connect(self._on_add_files_button_clicked)
        self.add_folder_button = QPushButton("Add folder…")
        self.add_folder_button.clicked.connect(self._on_add_folder_button_clicked)
        self.builtin_combo = QComboBox()
        self.builtin_combo.addItem("Add built-in…", "")
        for name, doc in BUILTIN_CORPORA.items():
            self.builtin_combo.addItem(name, name)
            self.builtin_combo.setItemData(self.builtin_combo.count() - 1, doc, Qt.ItemDataRole.ToolTipRole)
        self.builtin_combo.activated.connect(self._on_builtin_combo_activated)
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(self._on_remove_button_clicked)
        buttons, remove = QHBoxLayout(), QHBoxLayout()
        for w in (self.add_files_button, self.add_folder_button, self.builtin_combo):
            buttons.addWidget(w)
        buttons.addStretch(1)
        remove.addStretch(1)
        remove.addWidget(self.remove_button)
        self.source_buttons = WrapRow(buttons, remove)  # in a narrow window Remove goes under the rest

        options = self._build_options()

        self.prepare_button = QPushButton("Prepare")
        self.prepare_button.setDefault(True)
        self.prepare_button.clicked.connect(self._on_prepare_button_clicked)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self._on_cancel_button_clicked)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setValue(0)
        self.progress.hide()  # while a job runs and after a success: no '0%' beside an idle Prepare
        self.stage_label = QLabel("Idle")
        self.stage_label.setStyleSheet("color: palette(placeholder-text);")
        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_label.setStyleSheet(ERROR_STYLE)
        self.error_label.hide()
        run_row = QHBoxLayout()
        run_row.addWidget(self.prepare_button)
        run_row.addWidget(self.cancel_button)
        run_row.addWidget(self.progress, 1)
        run_row.addStretch(0)  # the buttons keep their size while the bar is hidden

        lay = QVBoxLayout(self.prepare_box)
        lay.addWidget(QLabel("Sources"))
        lay.addWidget(self.source_list, 1)
        lay.addWidget(self.source_buttons)
        lay.addSpacing(6)
        lay.addLayout(options)
        lay.addSpacing(6)
        lay.addLayout(run_row)
        lay.addWidget(self.stage_label)
        lay.addWidget(self.error_label)

    def _build_options(self) -> QFormLayout:
        """Tokenizer, vocabulary size, name and validation share."""
        self.tokenizer_combo = QComboBox()
        self.tokenizer_combo.addItems(["bpe", "char", "byte"])
        self.tokenizer_combo.setToolTip("bpe: byte-level BPE trained on the corpus; char: one id per "
                                        "character; byte: one id per byte (256)")
        self.tokenizer_combo.currentTextChanged.connect(self._on_tokenizer_combo_text_changed)
        self.vocab_spin = QSpinBox()
        self.vocab_spin.setRange(257, 1 << 20)
        self.vocab_spin.setValue(4096)
        self.vocab_spin.setGroupSeparatorShown(True)
        self.vocab_spin.setToolTip("BPE vocabulary size (256 bytes + merges + <|endoftext|>)")
        self.name_edit = QLineEdit("corpus")
        self.name_edit.setToolTip("Folder name under WORKSPACE/data")
        self.name_edit.textChanged.connect(self._on_name_edit_text_changed)
        self._name_typed = False  # the name follows the first source until the user types one
        self.name_edit.textEdited.connect(self._on_name_edit_text_edited)
        self.name_note = QLabel()
        self.name_note.setStyleSheet("color: palette(placeholder-text);")
        self.name_note.setWordWrap(True)  # "replaces the existing data set …" widened the column as it came
        self.val_spin = QDoubleSpinBox()
        self.val_spin.setRange(0.0, 0.5)
        self.val_spin.setDecimals(3)
        self.val_spin.setSingleStep(0.01)
        self.val_spin.setValue(0.1)
        self.val_spin.setToolTip("Share of the corpus held out for validation")
        options = QFormLayout()
        options.addRow("Tokenizer", self.tokenizer_combo)
        options.addRow("Vocabulary size", self.vocab_spin)
        options.addRow("Name", self.name_edit)
        options.addRow("", self.name_note)
        options.addRow("Validation share", self.val_spin)
        return options

    def _build_datasets_side(self) -> None:
        self.datasets_box = QGroupBox("Prepared data sets")
        self.dataset_list = QListWidget()
        self.dataset_list.setMaximumHeight(120)  # a few names; the details below take the group's whole width
        self.dataset_list.currentItemChanged.connect(self._on_dataset_list_current_changed)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refresh)
        self.trash_action = QAction("Move to Trash…", self)
        self.trash_action.setEnabled(False)  # until a data set is selected
        self.trash_action.triggered.connect(lambda: self.trash_requested.emit(self.dataset_list.currentItem().text()))
        self.trash_button = QPushButton(self.trash_action.text())  # like Refresh beside it
        self.trash_button.clicked.connect(self.trash_action.trigger)
        self.trash_action.enabledChanged.connect(self.trash_button.setEnabled)
        self.dataset_list.addAction(self.trash_action)
        self.dataset_list.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        self.detail_values: dict[str, QLabel] = {}
        details = QFormLayout()
        for key, text in (("folder", "Folder"), ("tokenizer", "Tokenizer"), ("vocab", "Vocabulary"),
                          ("train", "Train tokens"), ("val", "Validation tokens"), ("bpt", "Bytes per token"),
                          ("files", "Files"), ("sources", "Sources"), ("created", "Created")):
            value = QLabel("—")
            value.setWordWrap(True)
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            # a long path component (a folder named after a long file) must not widen the tab: the label
            # takes the width it is given (the whole text is its tooltip)
            value.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
            value.setMinimumWidth(60)
            details.addRow(text, value)
            self.detail_values[key] = value
        # the list, then the details under it with the whole width: beside the list (as before) a value had
        # 60 px at the 1024-wide window and '@synthetic' was cut to '@syntheti'
        top = QVBoxLayout()
        top.addWidget(self.dataset_list)
        row = QHBoxLayout()
        for button in (self.refresh_button, self.trash_button):
            row.addWidget(button)
        row.addStretch(1)
        top.addLayout(row)
        top.addLayout(details)
        self.sample = TokenText()
        self.sample.show_message("Select a data set to see a sample of its tokens.")
        sample_title = QLabel("Sample, coloured by token (hover for the token id; instruction data: green is "
                              "trained, grey is masked prompt)")
        sample_title.setStyleSheet("font-weight: 600; margin-top: 6px;")
        sample_title.setWordWrap(True)  # never widens the window
        lay = QVBoxLayout(self.datasets_box)
        lay.addLayout(top)
        lay.addWidget(sample_title)
        lay.addWidget(self.sample, 1)

    # ------------------------------------------------------------------ public API
    def set_job(self, job: PrepareJob | None) -> None:
        """Show the progress and results of `job` (the owner routes this panel's requests to it)."""
        if self.job is not None:
            for sig, slot in self._job_connections():
                sig.disconnect(slot)
        self.job = job
        if job is not None:
            for sig, slot in self._job_connections():
                sig.connect(slot)
        self._update_buttons()

    def _job_connections(self):
        j = self.job
        return [(j.started, self._on_job_started), (j.progressed, self._on_job_progressed),
                (j.finished, self._on_job_finished)]

    def set_workspace(self, path: str) -> None:
        """Point the panel at a workspace folder (data sets live in PATH/data)."""
        self._workspace = os.path.abspath(path)
        self.refresh()
        self._on_name_edit_text_changed(self.name_edit.text())

    def data_root(self) -> str | None:
        return os.path.join(self._workspace, "data") if self._workspace else None

    def datasets(self) -> list[str]:
        """Names of the prepared WORKSPACE/data folders."""
        root = self.data_root()
        return data_sets(root) if root else []

    def refresh(self) -> None:
        """Re-read the data set list, keeping the selection when it still exists."""
        current = self.dataset_list.currentItem().text() if self.dataset_list.currentItem() else None
        self.dataset_list.clear()
        for name in self.datasets():
            item = QListWidgetItem(name)
            item.setToolTip(os.path.join(self.data_root() or "", name))
            self.dataset_list.addItem(item)
        if current:
            self.select_dataset(current)
        if self.dataset_list.currentItem() is None and self.dataset_list.count():
            self.dataset_list.setCurrentRow(0)  # something to look at from the start
        if self.dataset_list.currentItem() is None:
            self._show_dataset(None)

    def follow_run(self, config) -> None:
        """Select the data set a run's config (a core.config.Config, None while invalid) trains on when it is
        one of the workspace's: the list showed the demo's while the run shown trained on another."""
        root, data_dir = self.data_root(), os.path.normpath(config.data.dir) if config is not None else ""
        if root and data_dir and os.path.dirname(data_dir) == os.path.normpath(root):
            self.select_dataset(os.path.basename(data_dir))

    def select_dataset(self, name: str) -> None:
        for item in self.dataset_list.findItems(name, Qt.MatchFlag.MatchExactly):
            self.dataset_list.setCurrentItem(item)

    def add_sources(self, paths: list[str]) -> None:
        existing = set(self.sources())
        for path in paths:
            if path and path not in existing:
                item = QListWidgetItem(path)
                item.setToolTip(BUILTIN_CORPORA.get(path, path))
                self.source_list.addItem(item)
                existing.add(path)
        if not self._name_typed and self.sources():
            self.name_edit.setText(suggested_name(self.sources()[0], set(self.datasets())))
        self._update_buttons()

    def sources(self) -> list[str]:
        return [self.source_list.item(i).text() for i in range(self.source_list.count())]

    def is_busy(self) -> bool:
        return self.job is not None and self.job.is_running()

    def request(self) -> PrepareRequest:
        """The request for the current choices; UsageError saying what is missing."""
        kind = self.tokenizer_combo.currentText()
        return make_request(self.data_root(), self.sources(), self.name_edit.text(), kind,
                            self.vocab_spin.value() if kind == "bpe" else None, self.val_spin.value())

    def start_prepare(self) -> bool:
        """Ask for the data set to be prepared; False (the reason shown) when the choices are not ready."""
        try:
            request = self.request()
        except UsageError as exc:
            self._show_error(str(exc))
            return False
        name = self.name_edit.text().strip()
        if name in self.datasets() and not self.confirm_replace(name):
            return False
        self.prepare_requested.emit(request)
        return True

    def confirm_replace(self, name: str) -> bool:
        """Ask before a prepared data set is replaced (runs that train on it read the new one at their next
        start or resume); No is the default."""
        answer = QMessageBox.question(
            self, "Replace data set",
            f"A data set named '{name}' is already prepared in this workspace. Replace it?\n\nIts tokens and "
            f"tokenizer are replaced; runs that train on data/{name} use the new data when they next start or "
            f"resume. Choose another name to keep both.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    def cancel(self) -> None:
        if self.is_busy():
            self.stage_label.setText("Cancelling…")
            self.cancel_requested.emit()

    # ------------------------------------------------------------------ internals
    def _show_error(self, message: str, details: list[str] | None = None) -> None:
        text = f"<b>{html.escape(message)}</b>"
        if details:
            text += "<pre style='margin:4px 0 0 0'>" + html.escape("\n".join(details)) + "</pre>"
        self.error_label.setText(text)
        self.error_label.show()

    def _update_buttons(self) -> None:
        busy = self.is_busy()
        self.prepare_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)
        self.remove_button.setEnabled(not busy and bool(self.source_list.selectedItems()))
        for w in (self.add_files_button, self.add_folder_button, self.builtin_combo, self.tokenizer_combo,
                  self.name_edit, self.val_spin, self.source_list):
            w.setEnabled(not busy)
        self.vocab_spin.setEnabled(not busy and self.tokenizer_combo.currentText() == "bpe")

    def _show_dataset(self, name: str | None) -> None:
        data_dir = os.path.join(self.data_root() or "", name) if name is not None else None
        for key, text in detail_rows(data_dir).items():
            tip = text if len(text) > 24 else ""
            if key == "folder" and data_dir is not None:  # data/NAME in the workspace (the whole path: tooltip)
                text, tip = os.path.relpath(data_dir, os.path.dirname(self.data_root() or data_dir)), data_dir
            self.detail_values[key].setText(text)
            self.detail_values[key].setToolTip(tip)
        preview = read_preview(data_dir) if data_dir is not None else None
        if preview is not None:
            self.sample.set_tokens(*preview)
        else:
            self.sample.show_message(NO_PREVIEW if data_dir is not None else
                                     "Select a data set to see a sample of its tokens.")

    # ------------------------------------------------------------------ slots
    def _on_add_files_button_clicked(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Add text files", self._sources_folder(),
                                                "Text files (*.txt *.md *.py *.json *.jsonl *.csv);;All files (*)")
        self.add_sources(paths)

    def _sources_folder(self) -> str:
        """Where the file pickers open: next to the last source added, else the home folder (the workspace
        holds prepared data, not the user's texts)."""
        return start_folder(s for s in reversed(self.sources()) if not s.startswith("@"))

    def _on_add_folder_button_clicked(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Add a folder", self._sources_folder())
        if path:
            self.add_sources([path])

    def _on_builtin_combo_activated(self, index: int) -> None:
        name = self.builtin_combo.itemData(index)
        if name:
            self.add_sources([name])
        self.builtin_combo.setCurrentIndex(0)

    def _on_remove_button_clicked(self) -> None:
        for item in self.source_list.selectedItems():
            self.source_list.takeItem(self.source_list.row(item))
        self._update_buttons()

    def _on_tokenizer_combo_text_changed(self, _kind: str) -> None:
        self._update_buttons()

    def _on_name_edit_text_edited(self, _text: str) -> None:
        self._name_typed = True

    def _on_name_edit_text_changed(self, text: str) -> None:
        name = text.strip()
        exists = bool(name) and name in self.datasets()
        self.name_note.setText(f"replaces the existing data set '{name}'" if exists else
                               f"→ data/{name}" if name else "")

    def _on_prepare_button_clicked(self) -> None:
        self.start_prepare()

    def _on_cancel_button_clicked(self) -> None:
        self.cancel()

    def _on_dataset_list_current_changed(self, current: QListWidgetItem | None, _previous) -> None:
        self.trash_action.setEnabled(current is not None)
        self._show_dataset(current.text() if current is not None else None)

    def _on_job_started(self, _request: PrepareRequest) -> None:
        self.error_label.hide()
        self.progress.setRange(0, 0)  # busy until the first progress event
        self.progress.show()
        self.stage_label.setText("Starting the engine…")
        self._update_buttons()

    def _on_job_progressed(self, stage: str, done: int, total: int) -> None:
        if total > 0:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * min(done, total) / total))
            self.stage_label.setText(f"{stage}: {human_count(done)} of {human_count(total)}")
        else:
            self.progress.setRange(0, 0)
            self.stage_label.setText(stage)

    def _on_job_finished(self, result: PrepareResult) -> None:
        self.progress.setRange(0, 1000)
        self._update_buttons()
        if result.ok:
            self.progress.setValue(1000)
            self.stage_label.setText(f"Prepared {result.request.name}: {token_total(result.meta):,} tokens")
            self.refresh()
            self.select_dataset(result.request.name)
            return
        self.progress.hide()
        if result.status == "cancelled":
            self.stage_label.setText("Cancelled.")
            return
        self.stage_label.setText("Failed.")
        failure = result.failure
        exit_text = failure.exit_text()
        self._show_error(failure.headline, [*failure.details, *([exit_text] if exit_text else [])])


def suggested_name(source: str, taken: set[str]) -> str:
    """A data set name from a source (`shakespeare.txt` -> shakespeare, `@stdlib` -> stdlib, a folder -> its
    name), made a valid folder name and not one of `taken` (-2, -3, ...)."""
    stem = os.path.splitext(os.path.basename(source.rstrip("/\\")))[0]
    return unique_name(safe_name(stem) or "corpus", taken)
