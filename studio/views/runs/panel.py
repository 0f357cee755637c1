"""RunsPanel: the workspace's runs as a lineage tree with status, step, best val loss and duration.

Tick runs to overlay their curves on the current one; filter by name, tag or status; right-click a run
for rename, delete, notes and tags, continue, compare, evaluate. Buttons and the menu emit intents; the
main window acts. "Eval ppl" and "BLEU" are the latest evaluations of a run's latest checkpoint (shown
once any run has one).
"""

from __future__ import annotations

import math

from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.theme import status_color

# Short headers (the full meaning in each header's tooltip): at 1280 px the list has about 385 px and the
# five columns of a run without evaluations must fit in it.
COLUMNS = ("Run", "Status", "Step", "Best", "Time", "Eval ppl", "BLEU")
HEADER_TIPS = ("Run name (forks under their parent)", "Status", "Step reached / train.max_steps",
               "Best validation loss", "Training time", "Perplexity of the latest text evaluation",
               "BLEU of the latest pairs evaluation")
NAME_MIN = 140  # px: the name column is not elided below this; a narrower list scrolls sideways
NAME_WIDE = 260  # px: the most the list widens for names when an evaluation column appears
EVAL_COLUMNS = {5: ("eval_perplexity", "{:.4g}"), 6: ("eval_bleu", "{:.1f}")}  # column: summary key, format
DIR_ROLE = Qt.ItemDataRole.UserRole


class RunsPanel(QWidget):
    """Tree of runs (children under the run they were copied or forked from)."""

    run_selected = Signal(str)            # run folder
    compare_changed = Signal(object)      # list of run folders ticked for overlay
    new_run_requested = Signal()
    copy_run_requested = Signal(str)      # "new run from this one"
    fork_run_requested = Signal(str)      # "fork from checkpoint"
    finetune_requested = Signal(str)      # "fine-tune this run's model on other data"
    rename_requested = Signal(str)
    delete_requested = Signal(str)
    annotate_requested = Signal(str)      # notes and tags
    continue_requested = Signal(str)      # "continue this finished run for N more steps"
    compare_requested = Signal(object)    # run folders: the right-clicked one and the ticked ones
    evaluate_requested = Signal(str)      # "Evaluate…" a checkpoint of this run
    results_requested = Signal(str)       # the saved evaluations of the run's latest checkpoint
    export_requested = Signal(str)        # "Export…" the run's latest checkpoint

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._items: dict[str, QTreeWidgetItem] = {}
        self._eval_shown = 0  # evaluation columns shown (the list widens when one more appears)
        self._name_want = 0  # the name column's width with every name in full
        self._others_width = 0  # what the other columns needed when the names were last fitted
        self._updating = False
        title = QLabel("Runs")
        title.setObjectName("heading")
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(list(COLUMNS))
        for col, tip in enumerate(HEADER_TIPS):
            self.tree.headerItem().setToolTip(col, tip)
        self.tree.setRootIsDecorated(True)
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        self.tree.setIndentation(14)
        header = self.tree.header()
        header.setStretchLastSection(False)  # stretched, a last column with no room fell back to 100 px
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)  # fitted in _fit_names()
        self.tree.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # a long name keeps its distinct end
        for col in range(1, len(COLUMNS)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.currentItemChanged.connect(self._on_tree_current_changed)
        self.tree.itemChanged.connect(self._on_tree_item_changed)
        self.tree.viewport().installEventFilter(self)  # eventFilter: the names fit the visible width
        self.tree.setToolTip("Tick runs to overlay their curves on the selected run; right-click for more")
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.customContextMenuRequested.connect(self._on_tree_context_menu_requested)
        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("Filter: name or #tag")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.textChanged.connect(lambda _t: self.apply_filter())
        self.status_filter = QComboBox()
        self.status_filter.addItem("Any status", "")
        for status in ("new", "imported", "running", "done", "stopped", "failed"):
            self.status_filter.addItem(status, status)
        self.status_filter.currentIndexChanged.connect(lambda _i: self.apply_filter())
        self._summaries: dict[str, dict] = {}
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
        frow = QHBoxLayout()
        frow.addWidget(self.filter_edit, 1)
        frow.addWidget(self.status_filter)
        lay.addLayout(frow)
        # an empty workspace said nothing about where to begin: the list and the plots were just empty
        self.empty_label = QLabel("No runs yet. Prepare a data set on the Data tab (Ctrl+1), then press "
                                  "New (Ctrl+N) for a run on it, or File > Import Model… for a pretrained one.")
        self.empty_label.setWordWrap(True)
        self.empty_label.setEnabled(False)  # the palette's muted text
        lay.addWidget(self.empty_label)
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
        self._summaries = {}
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
        self.empty_label.setVisible(not self._items)
        self._show_eval_columns()
        self._fit_names()
        self._updating = False
        self.apply_filter()
        if current in self._items:
            self.tree.setCurrentItem(self._items[current])
        self._update_buttons()

    def _fit_names(self) -> None:
        """The name column as wide as its longest name (indented, after the tick box) plus a margin (the
        contents' size hint alone left names elided by a few pixels under some themes), but no wider than
        leaves the other shown columns in view: a long name is elided in the middle (its tooltip has the
        folder) rather than pushing status, step and loss out of sight. Below NAME_MIN the list scrolls.
        With room to spare the name column takes it (the header is not stretched: a stretched last column
        with no room left fell back to 100 px and the list scrolled sideways for it)."""
        self.tree.resizeColumnToContents(0)
        self._name_want = self.tree.columnWidth(0) + 8
        self._others_width = self._other_columns_width()  # update_run fits again when it changes
        room = self.tree.viewport().width() - self._others_width
        self.tree.setColumnWidth(0, max(room, min(self._name_want, NAME_MIN)))

    def _other_columns_width(self) -> int:
        """What the shown columns after the name need (their contents or header, whichever is wider)."""
        header = self.tree.header()
        return sum(max(self.tree.sizeHintForColumn(c), header.sectionSizeHint(c))
                   for c in range(1, self.tree.columnCount()) if not self.tree.isColumnHidden(c))

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 (Qt's name)
        """The list's visible area changed width (the splitter moved, the window grew, the vertical scroll
        bar came or went, the list was laid out after it was filled): fit the names to it again. Fitted only
        when the panel resized, the list scrolled sideways by the scroll bar's width."""
        if (watched is self.tree.viewport() and event.type() == QEvent.Type.Resize and self._items
                and event.size().width() != event.oldSize().width()):
            QTimer.singleShot(0, self, self._fit_names)  # once the list has handled its resize (it undid ours)
        return False

    def update_run(self, summary: dict) -> None:
        item = self._items.get(summary["dir"])
        if item is not None:
            self._updating = True
            name = item.text(0)
            self._fill(item, summary)
            self._updating = False
            # new tags: the name column grows with them; a training run's step, best val and time grow
            # ('0/1000' to '258/1000'): the name column gives them room (the list scrolled sideways)
            if item.text(0) != name or self._other_columns_width() != self._others_width:
                self._fit_names()
            self._show_eval_columns()
            if item is self.tree.currentItem():
                self._update_buttons()

    def _fill(self, item: QTreeWidgetItem, s: dict) -> None:
        self._summaries[s["dir"]] = s
        tags = s.get("tags") or []
        item.setText(0, s["name"] + "".join(f"  #{t}" for t in tags))
        kind = (s.get("lineage") or {}).get("kind")
        verb = {"fork": "forked", "finetune": "fine-tuned"}.get(kind, "copied")
        tip = (f"{s['dir']}\n{verb} from "
               f"{s.get('parent_name') or 'its parent'}" if s.get("parent_dir") else s["dir"])
        item.setToolTip(0, tip + (f"\n\n{s['notes']}" if s.get("notes") else ""))
        item.setText(1, s["status"])
        item.setForeground(1, QBrush(QColor(status_color(s["status"]))))
        item.setToolTip(1, "\n".join(s.get("problems") or []))  # what is damaged in the run folder
        step, total = s.get("step") or 0, s.get("max_steps") or 0
        item.setText(2, f"{step}/{total}" if total else str(step))
        best = s.get("best_val_loss", math.nan)
        item.setText(3, f"{best:.4f}" if isinstance(best, float) and math.isfinite(best) else "–")
        item.setText(4, s.get("duration") or "–")
        for col, (key, fmt) in EVAL_COLUMNS.items():
            value = s.get(key)
            item.setText(col, fmt.format(value) if isinstance(value, float) and math.isfinite(value) else "–")
            item.setToolTip(col, s.get("eval_tip") or "No saved evaluation of the latest checkpoint")
        for col in (2, 3, 4, *EVAL_COLUMNS):
            item.setTextAlignment(col, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        item.setData(1, DIR_ROLE, bool(s.get("can_fork")))

    def _show_eval_columns(self) -> None:
        """The evaluation columns only once some run has an evaluation: the list stays narrow before."""
        shown = 0
        for col, (key, _fmt) in EVAL_COLUMNS.items():
            hide = not any(isinstance(s.get(key), float) for s in self._summaries.values())
            shown += not hide
            self.tree.setColumnHidden(col, hide)
        if shown > self._eval_shown:  # a column more (BLEU after Eval ppl too): once the names are fitted
            QTimer.singleShot(0, self, self._widen_for_columns)  # and the list laid out (self: not after it is gone)
        self._eval_shown = shown

    def _widen_for_columns(self) -> None:
        """A column that has just appeared (an evaluation's) is in view: the list takes the width it needs
        from its neighbour in the window's splitter, down to the neighbour's minimum (the header showed 'E'
        of 'Eval ppl' at the window's first size). A narrower window keeps its size: the list scrolls."""
        splitter = self.parentWidget()
        if not isinstance(splitter, QSplitter) or splitter.count() < 2 or splitter.widget(0) is not self:
            return
        # what the list lacks to show every column, names in full up to NAME_WIDE (longer ones are elided)
        hidden = min(self._name_want, NAME_WIDE) + self._other_columns_width() - self.tree.viewport().width()
        sizes = splitter.sizes()
        grow = min(hidden, sizes[1] - splitter.widget(1).minimumSizeHint().width())
        if grow > 0:
            splitter.setSizes([sizes[0] + grow, sizes[1] - grow, *sizes[2:]])
            self._fit_names()

    def matches(self, s: dict) -> bool:
        """Whether a run passes the filter: every word of the text in its name or (#word) its tags, and
        the chosen status."""
        status = self.status_filter.currentData()
        if status and s.get("status") != status:
            return False
        tags = [t.lower() for t in s.get("tags") or []]
        for word in self.filter_edit.text().lower().split():
            if word.startswith("#"):
                if not any(t.startswith(word[1:]) for t in tags):
                    return False
            elif word not in s.get("name", "").lower() and not any(word in t for t in tags):
                return False
        return True

    def apply_filter(self) -> None:
        """Hide the runs that do not match (a run whose child matches stays, to keep the lineage)."""
        def visit(item: QTreeWidgetItem) -> bool:
            shown = self.matches(self._summaries.get(item.data(0, DIR_ROLE), {}))
            for i in range(item.childCount()):
                shown = visit(item.child(i)) or shown
            item.setHidden(not shown)
            return shown

        for i in range(self.tree.topLevelItemCount()):
            visit(self.tree.topLevelItem(i))

    def visible_runs(self) -> list[str]:
        return [d for d, item in self._items.items() if not item.isHidden()]

    # ------------------------------------------------------------------ context menu
    def context_menu(self, run_dir: str) -> QMenu:
        """The right-click menu of one run (its actions emit the intents above)."""
        s = self._summaries.get(run_dir, {})
        running = s.get("status") == "running"
        menu = QMenu(self)
        menu.addAction("New from this", lambda: self.copy_run_requested.emit(run_dir))
        menu.addAction("Fork…", lambda: self.fork_run_requested.emit(run_dir)).setEnabled(bool(s.get("can_fork")))
        menu.addAction("Fine-tune on my data…", lambda: self.finetune_requested.emit(run_dir)).setEnabled(
            bool(s.get("can_fork")))
        blocker = s.get("continue_blocker", "?")  # RunController.continue_blocker: the Run menu's rule
        more = menu.addAction("Continue for more steps…", lambda: self.continue_requested.emit(run_dir))
        more.setEnabled(not blocker)
        more.setToolTip(blocker or "Train this run further from its last checkpoint")
        menu.setToolTipsVisible(True)
        menu.addSeparator()
        targets = self.compare_targets(run_dir)
        menu.addAction(f"Compare {len(targets)} runs…" if len(targets) > 1 else "Compare (tick runs to add them)…",
                       lambda: self.compare_requested.emit(targets))
        menu.addAction("Notes and tags…", lambda: self.annotate_requested.emit(run_dir))
        menu.addSeparator()
        menu.addAction("Evaluate…", lambda: self.evaluate_requested.emit(run_dir)).setEnabled(bool(s.get("can_fork")))
        menu.addAction("Evaluation results…", lambda: self.results_requested.emit(run_dir)).setEnabled(
            bool(s.get("can_fork")))
        menu.addAction("Export…", lambda: self.export_requested.emit(run_dir)).setEnabled(bool(s.get("can_fork")))
        menu.addSeparator()
        menu.addAction("Rename…", lambda: self.rename_requested.emit(run_dir)).setEnabled(not running)
        menu.addAction("Move to Trash…", lambda: self.delete_requested.emit(run_dir)).setEnabled(not running)
        return menu

    def _on_tree_context_menu_requested(self, pos) -> None:
        item = self.tree.itemAt(pos)
        if item is not None:
            self.tree.setCurrentItem(item)
            self.popup(self.context_menu(item.data(0, DIR_ROLE)), self.tree.viewport().mapToGlobal(pos))

    def popup(self, menu: QMenu, at) -> None:
        """Show the menu (modal until an entry is chosen or it is dismissed)."""
        menu.exec(at)
        menu.deleteLater()

    # ------------------------------------------------------------------ queries
    def current_run_dir(self) -> str | None:
        item = self.tree.currentItem()
        return item.data(0, DIR_ROLE) if item is not None else None

    def select_run(self, run_dir: str) -> None:
        item = self._items.get(run_dir)
        if item is not None:
            self.tree.setCurrentItem(item)

    def compare_targets(self, run_dir: str | None) -> list[str]:
        """What Compare takes: this run (the right-clicked or selected one) and the ticked ones."""
        return ([run_dir] if run_dir else []) + [d for d in self.compared() if d != run_dir]

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
