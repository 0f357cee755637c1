"""ResultsView: every saved evaluation of a checkpoint, and for a pairs evaluation its generations beside
their references.

Top: the checkpoint (a CheckpointPicker) and its evaluations, newest first (when, kind, file, figures).
Below, for the selected evaluation: its headline and decoding, then for a pairs evaluation a sortable
table # | Prompt | Reference | Generation | Exact whose selected row shows the three texts in full
underneath; for a text evaluation the figures. The rows come from the controller
(studio.controllers.evaluate.evaluations_of); this view reads no file itself.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QSplitter,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.controllers.evaluate import evaluations_of
from studio.theme import status_color
from studio.views.common.checkpoint_picker import CheckpointPicker
from studio.views.common.screen_fit import resize_to_fit
from studio.workspace.evaluations import Evaluation

LIST_COLUMNS = ("When", "Kind", "File", "Perplexity", "Bits/byte", "BLEU", "ROUGE-L", "Exact %")
GEN_COLUMNS = ("#", "Prompt", "Reference", "Generation", "Exact")
PREVIEW_CHARS = 120  # of a text in a table cell; the whole text shows below when the row is selected


def _cell(value) -> QTableWidgetItem:
    """A read-only cell; numbers sort as numbers."""
    item = QTableWidgetItem()
    if isinstance(value, (int, float)):
        item.setData(Qt.ItemDataRole.DisplayRole, value)
        item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    else:
        text = str(value)
        one_line = text.replace("\n", " ⏎ ")
        item.setText(one_line if len(one_line) <= PREVIEW_CHARS else one_line[:PREVIEW_CHARS] + "…")
        item.setToolTip(text[:2000])
    item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
    return item


def _figure(e: Evaluation, name: str, fmt: str, scale: float = 1.0) -> QTableWidgetItem:
    value = e.figures.get(name)
    if value is None:
        return _cell("")
    return _cell(float(f"{scale * value:{fmt}}"))  # rounded for reading, still sorted as a number


class ResultsView(QDialog):
    def __init__(self, workspace_root: str = "", checkpoint: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Evaluation results")
        self.evaluations: list[Evaluation] = []
        self._shown: Evaluation | None = None  # the pairs evaluation in the generations table
        self.picker = CheckpointPicker()
        self.picker.set_workspace(workspace_root)
        if checkpoint:
            self.picker.set_checkpoint(checkpoint)
        self.picker.checkpoint_changed.connect(lambda _p: self.reload())
        self.list = self._table(LIST_COLUMNS)
        self.list.itemSelectionChanged.connect(self._on_list_selection_changed)
        self.headline = QLabel("")
        self.headline.setObjectName("heading")
        self.headline.setWordWrap(True)
        self.headline.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.generations = self._table(GEN_COLUMNS)
        self.generations.itemSelectionChanged.connect(self._on_generation_selection_changed)
        self.detail = QPlainTextEdit()
        self.detail.setReadOnly(True)
        self.detail.setPlaceholderText("Select a row to read its prompt, reference and generation in full")
        pairs_page = QSplitter(Qt.Orientation.Vertical)
        pairs_page.addWidget(self.generations)
        pairs_page.addWidget(self.detail)
        pairs_page.setSizes([300, 140])
        self.text_figures = QFormLayout()
        text_page = QWidget()
        text_page.setLayout(self.text_figures)
        self.pages = QStackedWidget()
        self.pages.addWidget(pairs_page)
        self.pages.addWidget(text_page)
        self.empty = QLabel("No saved evaluation of this checkpoint yet: use Evaluate… on it.")
        self.pages.addWidget(self.empty)
        top = QHBoxLayout()
        top.addWidget(QLabel("Checkpoint"))
        top.addWidget(self.picker, 1)
        body = QSplitter(Qt.Orientation.Vertical)
        body.addWidget(self.list)
        below = QWidget()
        lay = QVBoxLayout(below)
        lay.setContentsMargins(0, 4, 0, 0)
        lay.addWidget(self.headline)
        lay.addWidget(self.pages, 1)
        body.addWidget(below)
        body.setSizes([150, 450])
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(body, 1)
        layout.addWidget(buttons)
        resize_to_fit(self, 1000, 680)
        self.reload()

    @staticmethod
    def _table(columns: tuple[str, ...]) -> QTableWidget:
        table = QTableWidget(0, len(columns))
        table.setHorizontalHeaderLabels(list(columns))
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setAlternatingRowColors(True)
        table.verticalHeader().setVisible(False)
        table.setWordWrap(False)
        return table

    # ------------------------------------------------------------------ filling
    def reload(self, select_path: str = "") -> None:
        """Read the checkpoint's evaluations again (newest first) and select `select_path` or the newest."""
        self.evaluations = evaluations_of(self.picker.checkpoint())
        t = self.list
        t.setSortingEnabled(False)
        t.setRowCount(len(self.evaluations))
        for r, e in enumerate(self.evaluations):
            when = _cell(e.when())
            when.setData(Qt.ItemDataRole.UserRole, r)
            for c, item in enumerate((when, _cell(e.kind), _cell(e.file_name()),
                                      _figure(e, "perplexity", ".4g"), _figure(e, "bits_per_byte", ".4g"),
                                      _figure(e, "bleu", ".2f"), _figure(e, "rouge_l", ".3f"),
                                      _figure(e, "exact_match", ".1f", 100.0))):
                t.setItem(r, c, item)
            t.item(r, 2).setToolTip(e.file)
        header = t.horizontalHeader()
        for c in range(len(LIST_COLUMNS)):  # the file name takes the room left; figures keep their width
            header.setSectionResizeMode(c, QHeaderView.ResizeMode.Stretch if c == 2 else
                                        QHeaderView.ResizeMode.ResizeToContents)
        paths = [e.path for e in self.evaluations]
        if self.evaluations:
            t.selectRow(paths.index(select_path) if select_path in paths else 0)
        else:
            self.headline.setText("")
            self.pages.setCurrentWidget(self.empty)

    def selected(self) -> Evaluation | None:
        rows = self.list.selectionModel().selectedRows()
        return self.evaluations[rows[0].row()] if rows else None

    def show_evaluation(self, e: Evaluation) -> None:
        where = f"step {e.step} · " if e.step is not None else ""
        extra = f"\n{e.decoding()}" if e.decoding() else ""
        self.headline.setText(f"{e.kind} · {e.file_name()} · {where}{e.when()}\n{e.headline()}{extra}")
        if e.kind == "pairs":
            self._fill_generations(e)
            self.pages.setCurrentIndex(0)
        else:
            while self.text_figures.rowCount():
                self.text_figures.removeRow(0)
            for name, fmt in (("loss", ".4f"), ("perplexity", ".4f"), ("bits_per_byte", ".4f"),
                              ("tokens", ",.0f"), ("bytes", ",.0f"), ("unknown_tokens", ",.0f")):
                if name in e.figures:
                    label = QLabel(f"{e.figures[name]:{fmt}}" + (
                        f" ({e.unknown_percent():.2g}%: the file has text outside the model's vocabulary, "
                        "which the figures above say little about)" if name == "unknown_tokens" and
                        e.figures[name] else ""))
                    label.setWordWrap(True)
                    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
                    self.text_figures.addRow(name.replace("_", " ").capitalize(), label)
            self.text_figures.addRow("File", QLabel(e.file))
            self.pages.setCurrentIndex(1)

    def _fill_generations(self, e: Evaluation) -> None:
        t = self.generations
        t.setSortingEnabled(False)
        t.clearContents()
        t.setRowCount(len(e.generations))
        good, bad = QBrush(QColor(status_color("done"))), QBrush(QColor(status_color("failed")))
        for r, g in enumerate(e.generations):
            exact = _cell("yes" if g.exact else "no")
            exact.setForeground(good if g.exact else bad)
            number = _cell(r + 1)
            number.setData(Qt.ItemDataRole.UserRole, r)
            for c, item in enumerate((number, _cell(g.prompt), _cell(g.reference), _cell(g.generation), exact)):
                t.setItem(r, c, item)
        header = t.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        for c in (1, 2, 3):
            header.setSectionResizeMode(c, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(4, QHeaderView.ResizeMode.ResizeToContents)
        header.setSortIndicator(0, Qt.SortOrder.AscendingOrder)  # file order first; a header click re-sorts
        t.setSortingEnabled(True)
        self.detail.clear()
        self._shown = e

    def generation_at(self, row: int):
        """The Generation shown in table row `row` (after any sorting)."""
        index = self.generations.item(row, 0).data(Qt.ItemDataRole.UserRole)
        return self._shown.generations[index]

    def column_texts(self, column: str) -> list[str]:
        c = GEN_COLUMNS.index(column)
        return [self.generations.item(r, c).text() for r in range(self.generations.rowCount())]

    # ------------------------------------------------------------------ slots
    def _on_list_selection_changed(self) -> None:
        e = self.selected()
        if e is not None:
            self.show_evaluation(e)

    def _on_generation_selection_changed(self) -> None:
        rows = self.generations.selectionModel().selectedRows()
        if not rows:
            return
        g = self.generation_at(rows[0].row())
        mark = "exact match" if g.exact else "not an exact match"
        self.detail.setPlainText(f"Prompt:\n{g.prompt}\n\nReference:\n{g.reference}\n\n"
                                 f"Generation ({mark}):\n{g.generation}")
