"""AttentionPanel: look at what a checkpoint attends to.

The view of an AttentionSession (studio.controllers.attention), which owns the worker, the requests and
the run's snapshots. Two sources: a text you type, run through a checkpoint, or the snapshots a run saves
at each evaluation under a step slider that follows the run live while it trains. Views: the big map of
one head / the mean over heads / the rollout, the grid of all heads as thumbnails, and the token view.
Export as PNG, CSV, NPY.
"""

from __future__ import annotations

import os

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPlainTextEdit,
    QPushButton,
    QSlider,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.controllers.attention import AttentionSession
from studio.views.attention.grid import AttentionGrid
from studio.views.attention.heatmap import AttentionHeatmap
from studio.views.attention.tokens import TokenAttentionView
from studio.views.common.checkpoint_picker import CheckpointPicker
from studio.views.common.wrap_row import WrapRow
from studio.workspace.attention_math import AttentionSet, mean_over_heads, rollout
from studio.workspace.run import Run, probe_text

MODES = ("head", "mean", "rollout")
MODE_TITLES = ("One head", "Mean over heads", "Rollout (through this layer)")
SOURCES = ("text", "snapshots")
# A first text to look at, in the characters of the demo's corpus (core.corpora's @synthetic tasks), so a
# char-level demo model shows no <unk>; any text can be typed over it.
DEFAULT_TEXT = "copy: abcdef|abcdef\nreverse: abcdef|fedcba\nadd: 123+456=579"
EMPTY_HINT = ("<p style='font-size:11pt'><b>No attention map yet</b></p>"
              "<p>Pick a checkpoint and press <b>Compute</b> to see what it attends to in the text above,<br>"
              "or set <b>Source</b> to the run's training snapshots to watch the patterns form step by step.</p>")


class AttentionPanel(QWidget):
    attention_loaded = Signal(str)      # the label of the attention set now shown
    status_changed = Signal(str)

    def __init__(self, pool=None, parent: QWidget | None = None):
        """`pool`: the WorkerPool shared with the generation panel (the session makes its own if None)."""
        super().__init__(parent)
        self.session = AttentionSession(pool, self)
        self._shown_any = False  # the first set shown picks the grid's scope
        self._build()
        self.session.loaded.connect(self._on_session_loaded)
        self.session.snapshots_changed.connect(self._on_session_snapshots_changed)
        self.session.status_changed.connect(self._set_status)

    @property
    def pool(self):
        return self.session.pool

    @property
    def worker(self):
        return self.session.worker

    @property
    def data(self) -> AttentionSet | None:
        return self.session.data

    @property
    def run_dir(self) -> str:
        return self.session.run_dir

    # ------------------------------------------------------------------ construction
    def _build(self) -> None:
        self.picker = CheckpointPicker()
        self.picker.checkpoint_changed.connect(self.session.follow_checkpoint)
        self.picker.checkpoint_refused.connect(lambda message: self._set_status(message, error=True))
        self.text = QPlainTextEdit()
        self.text.setPlaceholderText("Type or paste a text, then Compute (Ctrl+Return)")
        self.text.setPlainText(DEFAULT_TEXT)
        self._own_text, self._run_dir = False, ""  # own: typed (or sent from Generate), kept across runs
        self.text.textChanged.connect(self._on_text_changed)
        self.text.setFixedHeight(self.text.fontMetrics().lineSpacing() * 3 + 14)  # three lines, whole
        self.compute_button = QPushButton("Compute")
        self.compute_button.setShortcut("Ctrl+Return")
        self.compute_button.clicked.connect(self.compute)
        self.source = QComboBox()
        self.source.addItems(["This text", "Run's training snapshots"])
        self.source.currentIndexChanged.connect(self._on_source_changed)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setMinimumWidth(260)  # a slider squeezed to its handle looks like a checkbox
        self.slider.setEnabled(False)
        self.slider.valueChanged.connect(self._on_slider_value_changed)
        self.step_label = QLabel("no snapshots")
        self.step_label.setMinimumWidth(120)
        self.follow = QCheckBox("Follow latest")
        self.follow.setChecked(True)
        self.follow.setToolTip("Jump to each new snapshot as the run writes it")

        self._build_view_controls()
        self.status = QLabel()
        self.status.setWordWrap(True)

        top = QHBoxLayout()
        top.addWidget(QLabel("Checkpoint"))
        top.addWidget(self.picker, 1)
        top.addWidget(QLabel("Source"))
        top.addWidget(self.source)
        self.text_row = QWidget()  # replaced by the step row for the snapshots (of the run's own probe text)
        text_row = QHBoxLayout(self.text_row)
        text_row.setContentsMargins(0, 0, 0, 0)
        text_row.addWidget(self.text, 1)
        text_row.addWidget(self.compute_button, 0, Qt.AlignmentFlag.AlignTop)
        view, more = QHBoxLayout(), QHBoxLayout()
        for w in (self.mode, self.layer, self.head, self.grid_scope):
            view.addWidget(w)
        view.addStretch(1)
        more.addWidget(self.auto_contrast)
        more.addStretch(1)
        more.addWidget(self.export_button)
        self.view_row = WrapRow(view, more)  # in a narrow window contrast and export go under the rest
        # The training-step controls get a row of their own (shown for the snapshots source only).
        self.step_row = QWidget()
        steps = QHBoxLayout(self.step_row)
        steps.setContentsMargins(0, 0, 0, 0)
        steps.addWidget(QLabel("Training step"))
        steps.addWidget(self.slider, 1)
        steps.addWidget(self.step_label)
        steps.addWidget(self.follow)
        self.step_row.hide()
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.grid)
        right.addWidget(self.tokens)
        right.setSizes([300, 260])
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.heatmap)
        split.addWidget(right)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setSizes([620, 420])
        self.empty = QLabel(EMPTY_HINT)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setWordWrap(True)
        self.stack = QStackedWidget()  # a hint until the first map (not empty -500..500 axes)
        self.stack.addWidget(self.empty)
        self.stack.addWidget(split)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.text_row)
        layout.addWidget(self.step_row)
        layout.addWidget(self.view_row)
        layout.addWidget(self.stack, 1)
        layout.addWidget(self.status)

    def _build_view_controls(self) -> None:
        """Layer/head/mode controls, the export button and the three map views."""
        self.layer = QSpinBox()
        self.layer.setPrefix("layer ")
        self.head = QSpinBox()
        self.head.setPrefix("head ")
        self.mode = QComboBox()
        self.mode.addItems(MODE_TITLES)
        self.grid_scope = QComboBox()
        self.grid_scope.addItems(["Grid: this layer", "Grid: all layers"])
        self.auto_contrast = QCheckBox("Auto contrast")
        self.auto_contrast.setToolTip("Scale colours to the map's largest weight instead of 0–1")
        for w in (self.layer, self.head):
            w.valueChanged.connect(self.refresh_view)
        for w in (self.mode, self.grid_scope):
            w.currentIndexChanged.connect(self.refresh_view)
        self.auto_contrast.toggled.connect(self.refresh_view)
        self.export_button = self._export_button()
        self.heatmap = AttentionHeatmap()
        self.grid = AttentionGrid()
        self.grid.head_clicked.connect(self._on_grid_head_clicked)
        self.tokens = TokenAttentionView()
        self.heatmap.cell_clicked.connect(lambda row, _col: self.tokens.select_token(row))

    def _export_button(self) -> QToolButton:
        export = QToolButton()
        export.setText("Export")
        export.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(export)
        menu.addAction("Image (PNG)…", lambda: self._export_dialog("png"))
        menu.addAction("Shown matrix (CSV)…", lambda: self._export_dialog("csv"))
        menu.addAction("Shown matrix (NPY)…", lambda: self._export_dialog("npy"))
        menu.addAction("All layers × heads (NPY)…", lambda: self._export_dialog("all"))
        export.setMenu(menu)
        return export

    # ------------------------------------------------------------------ public
    def typing_widget(self) -> QWidget:
        """Where a keyboard user types first (MainWindow.show_tab): the text to inspect."""
        return self.text

    def set_workspace(self, root: str) -> None:
        """Another workspace: the map shown (a checkpoint of the last one's) gives way to the hint."""
        if root != self.picker.workspace_root and self.session.data is not None:
            self.session.clear()
            self.stack.setCurrentWidget(self.empty)
            self._set_status("")
        self.picker.set_workspace(root)

    def set_run_dir(self, run_dir: str) -> None:
        """The selected run: whose training snapshots the step slider walks through (defaults to the
        checkpoint's run), and whose latest checkpoint the picker preselects."""
        self.session.set_run_dir(run_dir)
        self.picker.set_run(run_dir)
        self._run_dir = run_dir
        self._follow_run_text()

    def _follow_run_text(self) -> None:
        """Unless the user typed their own: the run's probe text, or a sample of its data (read again when the
        tab is shown: a config that was invalid when the run was selected gave no probe, and the demo's text
        stayed on a Shakespeare run after the config was mended)."""
        if not self._own_text and self._run_dir:
            self._set_default_text(probe_text(Run(self._run_dir)) or DEFAULT_TEXT)

    def showEvent(self, event) -> None:  # noqa: N802 (Qt override)
        self._follow_run_text()
        super().showEvent(event)

    def _set_default_text(self, text: str) -> None:
        if text != self.text.toPlainText():
            self.text.setPlainText(text)
        self._own_text = False

    def _on_text_changed(self) -> None:
        self._own_text = True

    def checkpoints_changed(self) -> None:
        """A run wrote a checkpoint: offer it unless one was chosen by hand."""
        self.picker.offer_latest(follow_run=not self.picker.pinned)

    def inspect(self, checkpoint: str, text: str) -> None:
        """Show the attention of `checkpoint` on `text` (the generation panel's "Inspect attention")."""
        self.source.setCurrentIndex(0)
        self.picker.set_checkpoint(checkpoint)
        self.text.setPlainText(text)
        self.compute()

    def compute(self) -> None:
        if self.session.compute(self.picker.checkpoint(), self.text.toPlainText()):
            self.source.setCurrentIndex(0)

    def shutdown_workers(self, wait_ms: int = 0) -> None:
        self.session.shutdown(wait_ms)

    def shown_matrix(self) -> np.ndarray:
        return self.heatmap.matrix()

    # ------------------------------------------------------------------ snapshots
    def _on_source_changed(self, index: int) -> None:
        snapshots = SOURCES[index] == "snapshots"  # their text is the run's probe, shown token by token below
        self.text_row.setVisible(not snapshots)
        self.step_row.setVisible(snapshots)
        if snapshots:
            self.session.load_snapshot(self.slider.value())

    def _on_session_snapshots_changed(self, snapshots: list) -> None:
        at_end = self.slider.value() >= self.slider.maximum()
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(0, len(snapshots) - 1))
        self.slider.setEnabled(bool(snapshots))
        if snapshots and (self.follow.isChecked() or at_end):
            self.slider.setValue(len(snapshots) - 1)
        self.slider.blockSignals(False)
        self._update_step_label()
        if SOURCES[self.source.currentIndex()] == "snapshots":
            self.session.load_snapshot(self.slider.value())

    def _on_slider_value_changed(self, value: int) -> None:
        # the user looks back: new snapshots must not pull the view away; back at the newest: follow again
        self.follow.setChecked(value >= self.slider.maximum())
        self._update_step_label()
        if SOURCES[self.source.currentIndex()] != "snapshots":
            self.source.setCurrentIndex(1)  # loads through _on_source_changed
        else:
            self.session.load_snapshot(value)

    def _update_step_label(self) -> None:
        snaps = self.session.snapshots
        if not snaps:
            self.step_label.setText("no snapshots yet" if self.run_dir else "no run")
            return
        i = min(self.slider.value(), len(snaps) - 1)
        self.step_label.setText(f"step {snaps[i][0]:,}  ({i + 1}/{len(snaps)})")

    # ------------------------------------------------------------------ view
    def _on_session_loaded(self, data: AttentionSet) -> None:
        if not self._shown_any and data.n_layer * data.n_head <= 16:
            self.grid_scope.setCurrentIndex(1)  # a small model: every head fits at once
        self._shown_any = True
        self.stack.setCurrentWidget(self.stack.widget(1))
        for spin, n in ((self.layer, data.n_layer), (self.head, data.n_head)):
            spin.blockSignals(True)
            spin.setRange(0, n - 1)
            spin.blockSignals(False)
        self.refresh_view()
        self.attention_loaded.emit(data.label)

    def apply_theme(self) -> None:
        """The map and the thumbnails in the theme's plot colours."""
        self.heatmap.apply_theme()
        self.tokens.apply_theme()
        self.refresh_view()

    def refresh_view(self) -> None:
        d = self.data
        if d is None:
            return
        layer, head, mode = self.layer.value(), self.head.value(), MODES[self.mode.currentIndex()]
        self.head.setEnabled(mode == "head")
        if mode == "head":
            matrix, what = d.probs[layer, head], f"layer {layer}, head {head}"
        elif mode == "mean":
            matrix, what = mean_over_heads(d.probs[layer:layer + 1])[0], f"layer {layer}, mean over heads"
        else:
            matrix, what = rollout(d.probs)[layer], f"rollout through layers 0–{layer}"
        levels = None if self.auto_contrast.isChecked() else (0.0, 1.0)
        self.heatmap.set_matrix(matrix, d.tokens, f"{d.label} — {what}", levels)
        layers = list(range(d.n_layer)) if self.grid_scope.currentIndex() == 1 else [layer]
        self.grid.set_maps(d.probs, layers, (layer, head) if mode == "head" else None)
        self.tokens.set_data(d, layer)

    def _on_grid_head_clicked(self, layer: int, head: int) -> None:
        self.mode.setCurrentIndex(0)
        self.layer.setValue(layer)
        self.head.setValue(head)
        self.refresh_view()

    # ------------------------------------------------------------------ export
    def export(self, kind: str, path: str) -> None:
        """kind: png (the map as shown), csv / npy (the shown matrix), all (every layer and head, npy)."""
        if kind == "png":
            if not self.heatmap.grab().save(path):
                raise OSError(f"could not write {path}")
        else:
            self.session.export(kind, path, self.heatmap.matrix(), self.heatmap.tokens())

    def _export_dialog(self, kind: str) -> None:
        if self.data is None:
            self._set_status("Nothing to export yet.", error=True)
            return
        ext = {"png": "png", "csv": "csv"}.get(kind, "npy")
        folder = self.run_dir if self.run_dir and os.path.isdir(self.run_dir) else os.path.expanduser("~")
        path, _ = QFileDialog.getSaveFileName(self, "Export attention", os.path.join(folder, f"attention.{ext}"),
                                              f"{ext.upper()} (*.{ext})")  # in the run's folder, as plots
        if path:
            try:
                self.export(kind, path)
                self._set_status(f"Wrote {path}")
            except OSError as exc:
                self._set_status(str(exc), error=True)

    def _set_status(self, text: str, error: bool = False) -> None:
        self.status.setProperty("error", error)
        self.status.setStyleSheet("color: #d93025;" if error else "")
        self.status.setText(text)
        self.status_changed.emit(text)
