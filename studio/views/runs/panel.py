"""RunsPanel: the workspace's runs as a lineage tree with status, step, best val loss and duration.

Tick runs to overlay their curves on the current one. Buttons emit intents; the main window acts.
"""

from __future__ import annotations

import math

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.theme import status_color

COLUMNS = ("Run", "Status", "Step", "Best val", "Duration")
DIR_ROLE = Qt.ItemDataRole.UserRole


class RunsPanel(QWidget):
    """Tree of runs (children under the run they were copied or forked from)."""

    run_selected = Signal(str)            # run folder
    compare_changed = Signal(object)      # list of run folders ticked for overlay
    new_run_requested = Signal()
    copy_run_requested = Signal(str)      # "new run from this one"
    fork_run_requested = Signal(str)      # "fork from checkpoint"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._items: dict[str, QTreeWidgetItem] = {}
        self._updating = False
        title = QLabel("Runs")
        title.setObjectName("heading")
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.setRootIsDecorated(True)
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        self.tree.setIndentation(14)
        header = self.tree.header()
        header.setStretchLastSection(True)  # names are never cut: a narrow list scrolls sideways instead
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)  # fitted in _fit_names()
        for col in range(1, len(COLUMNS)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.currentItemChanged.connect(self._on_tree_current_changed)
        self.tree.itemChanged.connect(self._on_tree_item_changed)
        self.tree.setToolTip("Tick runs to overlay their curves on the selected run")
        self.new_button = QPushButton("New")
        self.new_button.setToolTip("A new run with the default configuration")
        self.copy_button = QPushButton("New from this")
        self.copy_button.setToolTip("A new run with a copy of the selected run's configuration, to edit")
        self.fork_button = QPushButton("Fork…")
        self.fork_button.setToolTip("A new run starting from one of the selected run's checkpoints "
                                    "(weights and optimizer), with changed settings")
        self.new_button.clicked.connect(self.new_run_requested)
        self.copy_button.clicked.connect(lambda: self._emit_for_current(self.copy_run_requested))
        self.fork_button.clicked.connect(lambda: self._emit_for_current(self.fork_run_requested))
        buttons = QHBoxLayout()
        buttons.setSpacing(4)
        for b in (self.new_button, self.copy_button, self.fork_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 8, 4, 8)
        lay.addWidget(title)
        lay.addWidget(self.tree, 1)
        lay.addLayout(buttons)
        self._update_buttons()

    # ------------------------------------------------------------------ model
    def set_runs(self, summaries: list[dict]) -> None:
        """Rebuild from run summaries ({dir, name, status, step, max_steps, best_val_loss, duration,
        parent_dir, can_fork}); keeps the selection and the ticks."""
        current = self.current_run_dir()
        ticked = set(self.compared())
        self._updating = True
        self.tree.clear()
        self._items = {}
        by_dir = {s["dir"]: s for s in summaries}
        pending = list(summaries)
        while pending:  # parents before children
            progressed = False
            for s in list(pending):
                parent = s.get("parent_dir")
                if parent in by_dir and parent not in self._items and parent != s["dir"]:
                    continue
                item = QTreeWidgetItem()
                item.setData(0, DIR_ROLE, s["dir"])
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(0, Qt.CheckState.Checked if s["dir"] in ticked else Qt.CheckState.Unchecked)
                host = self._items.get(parent) if parent else None
                (host.addChild(item) if host is not None else self.tree.addTopLevelItem(item))
                self._items[s["dir"]] = item
                self._fill(item, s)
                pending.remove(s)
                progressed = True
            if not progressed:  # a cycle: show the rest at top level
                pending = [{**s, "parent_dir": None} for s in pending]
        self.tree.expandAll()
        self._fit_names()
        self._updating = False
        if current in self._items:
            self.tree.setCurrentItem(self._items[current])
        self._update_buttons()

    def _fit_names(self) -> None:
        """The name column as wide as its longest name (indented, after the tick box) plus a margin: the
        contents' size hint alone left names elided by a few pixels under some themes."""
        self.tree.resizeColumnToContents(0)
        self.tree.setColumnWidth(0, self.tree.columnWidth(0) + 16)

    def update_run(self, summary: dict) -> None:
        item = self._items.get(summary["dir"])
        if item is not None:
            self._updating = True
            self._fill(item, summary)
            self._updating = False
            if item is self.tree.currentItem():
                self._update_buttons()

    def _fill(self, item: QTreeWidgetItem, s: dict) -> None:
        item.setText(0, s["name"])
        kind = (s.get("lineage") or {}).get("kind")
        item.setToolTip(0, f"{s['dir']}\n{'forked' if kind == 'fork' else 'copied'} from "
                           f"{s.get('parent_name') or 'its parent'}" if s.get("parent_dir") else s["dir"])
        item.setText(1, s["status"])
        item.setForeground(1, QBrush(QColor(status_color(s["status"]))))
        item.setToolTip(1, "\n".join(s.get("problems") or []))  # what is damaged in the run folder
        step, total = s.get("step") or 0, s.get("max_steps") or 0
        item.setText(2, f"{step}/{total}" if total else str(step))
        best = s.get("best_val_loss", math.nan)
        item.setText(3, f"{best:.4f}" if isinstance(best, float) and math.isfinite(best) else "–")
        item.setText(4, s.get("duration") or "–")
        for col in (2, 3, 4):
            item.setTextAlignment(col, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        item.setData(1, DIR_ROLE, bool(s.get("can_fork")))

    # ------------------------------------------------------------------ queries
    def current_run_dir(self) -> str | None:
        item = self.tree.currentItem()
        return item.data(0, DIR_ROLE) if item is not None else None

    def select_run(self, run_dir: str) -> None:
        item = self._items.get(run_dir)
        if item is not None:
            self.tree.setCurrentItem(item)

    def compared(self) -> list[str]:
        return [d for d, item in self._items.items() if item.checkState(0) == Qt.CheckState.Checked]

    def set_compared(self, run_dir: str, on: bool) -> None:
        item = self._items.get(run_dir)
        if item is not None:
            item.setCheckState(0, Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)

    # ------------------------------------------------------------------ slots
    def _emit_for_current(self, signal) -> None:
        run_dir = self.current_run_dir()
        if run_dir:
            signal.emit(run_dir)

    def _update_buttons(self) -> None:
        item = self.tree.currentItem()
        self.copy_button.setEnabled(item is not None)
        self.fork_button.setEnabled(item is not None and bool(item.data(1, DIR_ROLE)))

    def _on_tree_current_changed(self, current: QTreeWidgetItem | None, _previous) -> None:
        self._update_buttons()
        if current is not None and not self._updating:
            self.run_selected.emit(current.data(0, DIR_ROLE))

    def _on_tree_item_changed(self, _item: QTreeWidgetItem, column: int) -> None:
        if column == 0 and not self._updating:
            self.compare_changed.emit(self.compared())
