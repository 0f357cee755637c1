"""CompareView: the comparison table of several runs (built by studio.workspace.compare), sortable by any
column, with a 'differences only' toggle and CSV export (an intent: the main window writes the file). The
owner gives it a new table as the runs train (`set_table`): the sort and the toggle stay."""

from __future__ import annotations

import math
import os

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.views.common.screen_fit import resize_to_fit
from studio.workspace.compare import CompareTable, display_value


class _Item(QTableWidgetItem):
    """Sorts numbers as numbers (unknown values last), text as text."""

    def __init__(self, column: str, value) -> None:
        super().__init__(display_value(column, value))
        self.value = value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            self.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

    def __lt__(self, other: QTableWidgetItem) -> bool:
        a, b = self.value, getattr(other, "value", None)
        num = (int, float)
        if isinstance(a, num) and isinstance(b, num) and not isinstance(a, bool) and not isinstance(b, bool):
            a_nan, b_nan = isinstance(a, float) and math.isnan(a), isinstance(b, float) and math.isnan(b)
            if a_nan or b_nan:
                return b_nan and not a_nan
            return a < b
        return self.text() < other.text()


class CompareView(QDialog):
    """One row per run; columns: run, metrics, then every config value."""

    export_requested = Signal(str)   # CSV path

    def __init__(self, table: CompareTable, run_dirs: tuple[str, ...] = (), parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Compare {len(table.rows)} run{'s' if len(table.rows) != 1 else ''}")
        self.run_dirs = tuple(run_dirs)  # the runs compared, for the owner's refreshes
        self.full = table
        self.shown = table
        self.table = QTableWidget()
        self.table.setSortingEnabled(True)
        self.table.setAlternatingRowColors(True)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.diff_check = QCheckBox("Differences only")
        self.diff_check.toggled.connect(lambda _on: self.refresh())
        self.export_button = QPushButton("Export CSV…")
        self.export_button.clicked.connect(self._on_export_button_clicked)
        row = QHBoxLayout()
        row.addWidget(self.diff_check)
        row.addStretch(1)
        row.addWidget(self.export_button)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addLayout(row)
        lay.addWidget(self.table, 1)
        lay.addWidget(buttons)
        resize_to_fit(self, 980, 360)
        self.refresh()

    def set_table(self, table: CompareTable) -> None:
        """New figures for the same runs (a run trained on): shown in the same sort order."""
        self.full = table
        self.refresh()

    def refresh(self) -> None:
        header = self.table.horizontalHeader()
        sorted_by = self.shown.columns[header.sortIndicatorSection()] \
            if self.table.columnCount() and 0 <= header.sortIndicatorSection() < len(self.shown.columns) else None
        order = header.sortIndicatorOrder()
        self.shown = self.full.differences_only() if self.diff_check.isChecked() else self.full
        self.table.setSortingEnabled(False)
        self.table.clear()
        self.table.setColumnCount(len(self.shown.columns))
        self.table.setRowCount(len(self.shown.rows))
        self.table.setHorizontalHeaderLabels(self.shown.columns)
        for r, values in enumerate(self.shown.rows):
            for c, value in enumerate(values):
                self.table.setItem(r, c, _Item(self.shown.columns[c], value))
        self.table.setSortingEnabled(True)
        if sorted_by in self.shown.columns:
            self.table.sortByColumn(self.shown.columns.index(sorted_by), order)
        self.table.resizeColumnsToContents()

    def column_values(self, name: str) -> list[str]:
        c = self.shown.columns.index(name)
        return [self.table.item(r, c).text() for r in range(self.table.rowCount())]

    def sort_by(self, name: str, descending: bool = False) -> None:
        order = Qt.SortOrder.DescendingOrder if descending else Qt.SortOrder.AscendingOrder
        self.table.sortByColumn(self.shown.columns.index(name), order)

    def _on_export_button_clicked(self) -> None:
        # in the workspace's folder (runs/NAME's grandparent), not the folder the studio was started from
        folder = os.path.dirname(os.path.dirname(self.run_dirs[0])) if self.run_dirs else os.path.expanduser("~")
        path, _ = QFileDialog.getSaveFileName(self, "Export comparison", os.path.join(folder, "compare.csv"),
                                              "CSV table (*.csv)")
        if path:
            self.export_requested.emit(path)
