"""DataPanel: gather a corpus, prepare it with `llm-train prepare`, and browse the workspace's data sets.

Left: sources (files, folders, dropped paths, built-in corpora), tokenizer, vocabulary size, name and
validation share; Prepare runs the engine as a QProcess (the GUI never waits on it) with a progress bar
fed by `progress` events and a Cancel button. Right: WORKSPACE/data/<name> folders with a meta.json,
their token counts and sources, and a sample coloured by token boundaries (DATA_DIR/preview.json).
"""

from __future__ import annotations

import html
import json
import os
import re

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPainter, QPalette
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
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from core.config import human_bytes, human_count
from studio.engine.process import EngineProcess
from studio.views.common.token_text import TokenText
from studio.views.config.form import GROUP_STYLE

BUILTIN_CORPORA = {"@synthetic": "built-in synthetic tasks (copy, reverse, sort, arithmetic)",
                   "@stdlib": "Python standard library sources on this machine"}
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
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


def read_meta(data_dir: str) -> dict | None:
    try:
        with open(os.path.join(data_dir, "meta.json"), encoding="utf-8") as fh:
            meta = json.load(fh)
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def describe_source(source) -> str:
    """One line per meta["sources"] entry ({input, kind, files, bytes, skipped} or a plain string)."""
    if not isinstance(source, dict):
        return str(source)
    parts = [str(source.get("kind", ""))] if source.get("kind") else []
    if "files" in source:
        parts.append(f"{source['files']:,} file{'s' if source['files'] != 1 else ''}")
    if "bytes" in source:
        parts.append(human_bytes(source["bytes"]))
    if source.get("skipped"):
        parts.append(f"{source['skipped']} skipped")
    name = source.get("input") or source.get("path") or "?"
    return f"{name}  ({', '.join(parts)})" if parts else str(name)


class DataPanel(QWidget):
    """Prepare data sets into WORKSPACE/data/<name> and inspect the prepared ones."""

    data_prepared = Signal(str)  # the new data folder

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._workspace: str | None = None
        self._out: str | None = None
        self._cancelled = False
        self.process = EngineProcess(self)
        self.process.event_received.connect(self._on_process_event_received)
        self.process.finished.connect(self._on_process_finished)
        self.process.failed_to_start.connect(self._on_process_failed_to_start)
        self._build_prepare_side()
        self._build_datasets_side()
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.prepare_box)
        split.addWidget(self.datasets_box)
        split.setStretchFactor(1, 1)
        split.setSizes([420, 620])
        lay = QVBoxLayout(self)
        lay.addWidget(split)
        self.setStyleSheet(GROUP_STYLE)
        self._update_buttons()

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
        buttons = QHBoxLayout()
        for w in (self.add_files_button, self.add_folder_button, self.builtin_combo):
            buttons.addWidget(w)
        buttons.addStretch(1)
        buttons.addWidget(self.remove_button)

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
        self.name_note = QLabel()
        self.name_note.setStyleSheet("color: palette(placeholder-text);")
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

        self.prepare_button = QPushButton("Prepare")
        self.prepare_button.setDefault(True)
        self.prepare_button.clicked.connect(self._on_prepare_button_clicked)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self._on_cancel_button_clicked)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setValue(0)
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

        lay = QVBoxLayout(self.prepare_box)
        lay.addWidget(QLabel("Sources"))
        lay.addWidget(self.source_list, 1)
        lay.addLayout(buttons)
        lay.addSpacing(6)
        lay.addLayout(options)
        lay.addSpacing(6)
        lay.addLayout(run_row)
        lay.addWidget(self.stage_label)
        lay.addWidget(self.error_label)

    def _build_datasets_side(self) -> None:
        self.datasets_box = QGroupBox("Prepared data sets")
        self.dataset_list = QListWidget()
        self.dataset_list.setMaximumWidth(200)
        self.dataset_list.currentItemChanged.connect(self._on_dataset_list_current_changed)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refresh)
        self.detail_values: dict[str, QLabel] = {}
        details = QFormLayout()
        for key, text in (("folder", "Folder"), ("tokenizer", "Tokenizer"), ("vocab", "Vocabulary"),
                          ("train", "Train tokens"), ("val", "Validation tokens"), ("bpt", "Bytes per token"),
                          ("files", "Files"), ("sources", "Sources"), ("created", "Created")):
            value = QLabel("—")
            value.setWordWrap(True)
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            details.addRow(text, value)
            self.detail_values[key] = value
        left = QVBoxLayout()
        left.addWidget(self.dataset_list, 1)
        left.addWidget(self.refresh_button)
        top = QHBoxLayout()
        top.addLayout(left)
        top.addLayout(details, 1)
        self.sample = TokenText()
        self.sample.show_message("Select a data set to see a sample of its tokens.")
        sample_title = QLabel("Sample, coloured by token (hover for the token id)")
        sample_title.setStyleSheet("font-weight: 600; margin-top: 6px;")
        lay = QVBoxLayout(self.datasets_box)
        lay.addLayout(top)
        lay.addWidget(sample_title)
        lay.addWidget(self.sample, 1)

    # ------------------------------------------------------------------ public API
    def set_workspace(self, path: str) -> None:
        """Point the panel at a workspace folder (data sets live in PATH/data)."""
        self._workspace = os.path.abspath(path)
        self.refresh()
        self._on_name_edit_text_changed(self.name_edit.text())

    def data_root(self) -> str | None:
        return os.path.join(self._workspace, "data") if self._workspace else None

    def datasets(self) -> list[str]:
        """Names of WORKSPACE/data folders that hold a meta.json."""
        root = self.data_root()
        if not root or not os.path.isdir(root):
            return []
        return sorted(n for n in os.listdir(root) if os.path.isfile(os.path.join(root, n, "meta.json")))

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
        self._update_buttons()

    def sources(self) -> list[str]:
        return [self.source_list.item(i).text() for i in range(self.source_list.count())]

    def is_busy(self) -> bool:
        return self.process.is_running()

    def prepare_arguments(self) -> list[str]:
        """`llm-train prepare` arguments for the current choices (without the subcommand)."""
        kind = self.tokenizer_combo.currentText()
        args = ["--input", *self.sources(), "--out", self._out_dir(), "--tokenizer", kind]
        if kind == "bpe":
            args += ["--vocab-size", str(self.vocab_spin.value())]
        return [*args, "--val-fraction", f"{self.val_spin.value():g}", "--events"]

    def start_prepare(self) -> bool:
        """Start preparing; False (with the reason shown) when the inputs are not ready."""
        problem = self._input_problem()
        if problem:
            self._show_error(problem)
            return False
        self._out, self._cancelled = self._out_dir(), False
        os.makedirs(self.data_root(), exist_ok=True)  # also the engine's working folder's parent
        self.error_label.hide()
        self.progress.setRange(0, 0)  # busy until the first progress event
        self.stage_label.setText("Starting the engine…")
        self.process.start("prepare", self.prepare_arguments(), cwd=self._workspace)
        self._update_buttons()
        return True

    def cancel(self) -> None:
        if self.process.is_running():
            self._cancelled = True
            self.stage_label.setText("Cancelling…")
            self.process.stop(grace_ms=3000)

    def shutdown(self) -> None:
        """Application exit: end a running prepare now (blocks briefly)."""
        if self.process.is_running():
            self.process.kill()
            self.process.wait_for_finished(3000)

    # ------------------------------------------------------------------ internals
    def _out_dir(self) -> str:
        return os.path.join(self.data_root() or "", self.name_edit.text().strip())

    def _input_problem(self) -> str | None:
        if not self._workspace:
            return "Open a workspace first."
        if not self.sources():
            return "Add at least one source: files, a folder, or a built-in corpus such as @synthetic."
        if not NAME_RE.match(self.name_edit.text().strip()):
            return "Name the data set with letters, digits, '.', '_' or '-' (it becomes a folder name)."
        return None

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
        values = dict.fromkeys(self.detail_values, "—")
        if name is None:
            self.sample.show_message("Select a data set to see a sample of its tokens.")
        else:
            data_dir = os.path.join(self.data_root() or "", name)
            meta = read_meta(data_dir) or {}
            values.update(_meta_rows(meta))
            values["folder"] = data_dir
            self._show_preview(data_dir)
        for key, label in self.detail_values.items():
            label.setText(values[key])

    def _show_preview(self, data_dir: str) -> None:
        try:
            with open(os.path.join(data_dir, "preview.json"), encoding="utf-8") as fh:
                preview = json.load(fh)
            ids, pieces = preview["ids"], preview["pieces"]
        except (OSError, ValueError, KeyError, TypeError):
            self.sample.show_message("No preview: this data folder has no preview.json (prepared by an "
                                     "older engine?).")
            return
        self.sample.set_tokens(ids, pieces)

    # ------------------------------------------------------------------ slots
    def _on_add_files_button_clicked(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Add text files", self._workspace or "",
                                                "Text files (*.txt *.md *.py *.json *.jsonl *.csv);;All files (*)")
        self.add_sources(paths)

    def _on_add_folder_button_clicked(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Add a folder", self._workspace or "")
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
        self._show_dataset(current.text() if current is not None else None)

    def _on_process_event_received(self, event: dict) -> None:
        if event.get("event") != "progress":
            return
        done, total = int(event.get("done") or 0), int(event.get("total") or 0)
        stage = str(event.get("stage", ""))
        if total > 0:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * min(done, total) / total))
            self.stage_label.setText(f"{stage}: {human_count(done)} of {human_count(total)}")
        else:
            self.progress.setRange(0, 0)
            self.stage_label.setText(stage)

    def _on_process_finished(self, exit_code: int, close_event: dict | None) -> None:
        self.progress.setRange(0, 1000)
        self._update_buttons()
        out, self._out = self._out, None
        if close_event is not None and close_event.get("event") == "done" and exit_code == 0:
            self.progress.setValue(1000)
            meta = close_event.get("meta") or read_meta(out or "") or {}
            tokens = (meta.get("train_tokens") or 0) + (meta.get("val_tokens") or 0)
            self.stage_label.setText(f"Prepared {os.path.basename(out or '')}: {tokens:,} tokens")
            self.refresh()
            self.select_dataset(os.path.basename(out or ""))
            self.data_prepared.emit(out or "")
            return
        self.progress.setValue(0)
        if self._cancelled:
            self.stage_label.setText("Cancelled.")
            return
        self.stage_label.setText("Failed.")
        tail = [ln for ln in self.process.stderr_tail if ln.strip()]
        if close_event is not None and close_event.get("message"):
            message = str(close_event["message"])
            details = [ln for ln in tail if message not in ln][-6:]
        elif any(ln.startswith("Traceback") for ln in tail):
            message, details = f"The engine crashed: {tail[-1]}", []
        else:
            message, details = "The engine stopped without saying why.", tail[-6:]
        meaning = {1: " (failure during the run)", 2: " (bad input)"}.get(exit_code, "")
        self._show_error(message, [*details, f"exit code {exit_code}{meaning}"])

    def _on_process_failed_to_start(self, message: str) -> None:
        self._out = None
        self.progress.setRange(0, 1000)
        self.stage_label.setText("Failed.")
        self._show_error(message)
        self._update_buttons()


def _meta_rows(meta: dict) -> dict[str, str]:
    """Detail rows from meta.json, tolerant of missing keys."""
    def count(key: str) -> str:
        value = meta.get(key)
        return f"{value:,}" if isinstance(value, int) else "—"

    tokenizer = meta.get("tokenizer")
    tokenizer = tokenizer.get("kind", "?") if isinstance(tokenizer, dict) else tokenizer
    bpt = meta.get("bytes_per_token")
    sources = meta.get("sources") or []
    return {"tokenizer": str(tokenizer or "—"), "vocab": count("vocab_size"), "train": count("train_tokens"),
            "val": count("val_tokens"), "bpt": f"{bpt:.2f}" if isinstance(bpt, (int, float)) else "—",
            "files": count("n_files") + (f"  ({human_bytes(meta['n_bytes'])})" if isinstance(
                meta.get("n_bytes"), int) else ""),
            "sources": "\n".join(describe_source(s) for s in sources) or "—",
            "created": str(meta.get("created") or "—")}
