"""AttentionPanel: look at what a checkpoint attends to.

Two sources: a text you type, run through a checkpoint by an inference worker (`llm-train serve`,
reply as .npy), or the snapshots a run saves at each evaluation (RUN_DIR/attention/step-*.npz) under a
step slider that follows the run live while it trains. Views: the big map of one head / the mean over
heads / the rollout, the grid of all heads as thumbnails, and the token view. Export as PNG, CSV, NPY.
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
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.engine.worker import InferenceWorker, WorkerPool
from studio.views.attention.grid import AttentionGrid
from studio.views.attention.heatmap import AttentionHeatmap
from studio.views.attention.numeric import AttentionSet, load_npz, mean_over_heads, rollout, save_csv
from studio.views.attention.snapshots import SnapshotWatcher
from studio.views.attention.tokens import TokenAttentionView
from studio.views.common.checkpoint_picker import CheckpointPicker, checkpoint_label, run_of

MODES = ("head", "mean", "rollout")
MODE_TITLES = ("One head", "Mean over heads", "Rollout (through this layer)")
SOURCES = ("text", "snapshots")


class AttentionPanel(QWidget):
    attention_loaded = Signal(str)      # the label of the attention set now shown
    status_changed = Signal(str)

    def __init__(self, pool: WorkerPool | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.pool = pool or WorkerPool(self)
        self.worker: InferenceWorker | None = None
        self.data: AttentionSet | None = None
        self.run_dir = ""
        self._pending = ""
        self._snapshot_path = ""
        self.watcher = SnapshotWatcher(self)
        self.watcher.snapshots_changed.connect(self._on_watcher_snapshots_changed)
        self._build()

    # ------------------------------------------------------------------ construction
    def _build(self) -> None:
        self.picker = CheckpointPicker()
        self.picker.checkpoint_changed.connect(self._on_picker_checkpoint_changed)
        self.text = QPlainTextEdit()
        self.text.setPlaceholderText("Type or paste a text, then Compute (Ctrl+Return)")
        self.text.setFixedHeight(46)
        self.compute_button = QPushButton("Compute")
        self.compute_button.setShortcut("Ctrl+Return")
        self.compute_button.clicked.connect(self.compute)
        self.source = QComboBox()
        self.source.addItems(["This text", "Run's training snapshots"])
        self.source.currentIndexChanged.connect(self._on_source_changed)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setEnabled(False)
        self.slider.valueChanged.connect(self._on_slider_value_changed)
        self.step_label = QLabel("no snapshots")
        self.step_label.setMinimumWidth(120)
        self.follow = QCheckBox("Follow latest")
        self.follow.setChecked(True)
        self.follow.setToolTip("Jump to each new snapshot as the run writes it")

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
        export = QToolButton()
        export.setText("Export")
        export.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(export)
        menu.addAction("Image (PNG)…", lambda: self._export_dialog("png"))
        menu.addAction("Shown matrix (CSV)…", lambda: self._export_dialog("csv"))
        menu.addAction("Shown matrix (NPY)…", lambda: self._export_dialog("npy"))
        menu.addAction("All layers × heads (NPY)…", lambda: self._export_dialog("all"))
        export.setMenu(menu)

        self.heatmap = AttentionHeatmap()
        self.grid = AttentionGrid()
        self.grid.head_clicked.connect(self._on_grid_head_clicked)
        self.tokens = TokenAttentionView()
        self.heatmap.cell_clicked.connect(lambda row, _col: self.tokens.select_token(row))
        self.status = QLabel()
        self.status.setWordWrap(True)

        top = QHBoxLayout()
        top.addWidget(QLabel("Checkpoint"))
        top.addWidget(self.picker, 1)
        top.addWidget(QLabel("Source"))
        top.addWidget(self.source)
        text_row = QHBoxLayout()
        text_row.addWidget(self.text, 1)
        text_row.addWidget(self.compute_button, 0, Qt.AlignmentFlag.AlignTop)
        view = QHBoxLayout()
        for w in (self.mode, self.layer, self.head, self.grid_scope, self.auto_contrast):
            view.addWidget(w)
        view.addSpacing(16)
        view.addWidget(QLabel("Training step"))
        view.addWidget(self.slider, 1)
        view.addWidget(self.step_label)
        view.addWidget(self.follow)
        view.addWidget(export)
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
        layout = QVBoxLayout(self)
        for row in (top, text_row, view):
            layout.addLayout(row)
        layout.addWidget(split, 1)
        layout.addWidget(self.status)

    # ------------------------------------------------------------------ public
    def set_workspace(self, root: str) -> None:
        self.picker.set_workspace(root)

    def set_run_dir(self, run_dir: str) -> None:
        """Whose training snapshots the step slider walks through (defaults to the checkpoint's run)."""
        if os.path.abspath(run_dir or ".") != os.path.abspath(self.run_dir or "."):
            self.run_dir = run_dir
            self.watcher.set_run_dir(run_dir)

    def inspect(self, checkpoint: str, text: str) -> None:
        """Show the attention of `checkpoint` on `text` (the generation panel's "Inspect attention")."""
        self.source.setCurrentIndex(0)
        self.picker.set_checkpoint(checkpoint)
        self.text.setPlainText(text)
        self.compute()

    def compute(self) -> None:
        checkpoint, text = self.picker.checkpoint(), self.text.toPlainText()
        if not checkpoint:
            self._set_status("Pick a checkpoint first.", error=True)
            return
        if not text:
            self._set_status("Type a text first.", error=True)
            return
        self.source.setCurrentIndex(0)
        worker = self._worker_for(checkpoint)
        if self._pending:
            worker.cancel(self._pending)
        self._pending = worker.request("attention", text=text)
        self._set_status(f"Computing attention with {checkpoint_label(checkpoint)}…")

    def shutdown_workers(self, wait_ms: int = 0) -> None:
        self.watcher.stop()
        w, self.worker = self.worker, None
        if w is not None:
            self.pool.release(w)
            if wait_ms and w.state == "stopped":  # nobody else uses it: it is being killed
                w.wait_for_finished(wait_ms)

    def shown_matrix(self) -> np.ndarray:
        return self.heatmap.matrix()

    # ------------------------------------------------------------------ worker
    def _worker_for(self, checkpoint: str) -> InferenceWorker:
        if self.worker is not None and self.worker.checkpoint == os.path.abspath(checkpoint):
            return self.worker
        old = self.worker
        if old is not None:
            for sig, slot in self._worker_slots(old):
                sig.disconnect(slot)
        self.worker = self.pool.acquire(checkpoint, previous=old)
        for sig, slot in self._worker_slots(self.worker):
            sig.connect(slot)
        return self.worker

    def _worker_slots(self, w: InferenceWorker) -> list:
        return [(w.result_received, self._on_worker_result), (w.request_failed, self._on_worker_failed),
                (w.died, self._on_worker_died), (w.state_changed, self._on_worker_state_changed)]

    def _on_worker_result(self, ev: dict) -> None:
        if ev.get("id") != self._pending or ev.get("op") != "attention":
            return
        self._pending = ""
        path = ev.get("path", "")
        try:
            probs = np.load(path)
        except (OSError, ValueError) as exc:
            self._set_status(f"Could not read the worker's reply {path}: {exc}", error=True)
            return
        finally:
            if path.endswith(".npy"):
                try:
                    os.remove(path)
                except OSError:
                    pass
        label = checkpoint_label(self.worker.checkpoint) if self.worker else ""
        note = " (cut to the context length)" if ev.get("truncated") else ""
        self._show_set(AttentionSet(probs, list(ev.get("tokens", [])), label, list(ev.get("token_ids", []))))
        self._set_status(f"{label}: {probs.shape[-1]} tokens{note}, {probs.shape[0]} layers × "
                         f"{probs.shape[1]} heads. Hover the map; click a token or a thumbnail.")

    def _on_worker_failed(self, ev: dict) -> None:
        if ev.get("id") == self._pending:
            self._pending = ""
            self._set_status(f"Attention failed ({ev.get('kind')}): {ev.get('message')}", error=True)

    def _on_worker_died(self, message: str) -> None:
        restarting = self.worker is not None and self.worker.state == "dead" and self.worker.auto_restart
        self._set_status(message + ("\nRestarting the worker…" if restarting else ""), error=True)

    def _on_worker_state_changed(self, state: str) -> None:
        if state == "ready" and self.status.property("error"):
            self._set_status(f"Worker restarted ({checkpoint_label(self.worker.checkpoint)}); "
                             "press Compute again.")

    def _on_picker_checkpoint_changed(self, checkpoint: str) -> None:
        run = run_of(checkpoint)
        if run:
            self.set_run_dir(run)

    # ------------------------------------------------------------------ snapshots
    def _on_source_changed(self, index: int) -> None:
        snapshots = SOURCES[index] == "snapshots"
        self.text.setEnabled(not snapshots)
        self.compute_button.setEnabled(not snapshots)
        if snapshots:
            self._load_snapshot(self.slider.value())

    def _on_watcher_snapshots_changed(self, snapshots: list) -> None:
        at_end = self.slider.value() >= self.slider.maximum()
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(0, len(snapshots) - 1))
        self.slider.setEnabled(bool(snapshots))
        if snapshots and (self.follow.isChecked() or at_end):
            self.slider.setValue(len(snapshots) - 1)
        self.slider.blockSignals(False)
        self._update_step_label()
        if SOURCES[self.source.currentIndex()] == "snapshots":
            self._load_snapshot(self.slider.value())

    def _on_slider_value_changed(self, value: int) -> None:
        self._update_step_label()
        if SOURCES[self.source.currentIndex()] != "snapshots":
            self.source.setCurrentIndex(1)  # loads through _on_source_changed
        else:
            self._load_snapshot(value)

    def _update_step_label(self) -> None:
        snaps = self.watcher.snapshots
        if not snaps:
            self.step_label.setText("no snapshots yet" if self.run_dir else "no run")
            return
        i = min(self.slider.value(), len(snaps) - 1)
        self.step_label.setText(f"step {snaps[i][0]:,}  ({i + 1}/{len(snaps)})")

    def _load_snapshot(self, index: int) -> None:
        snaps = self.watcher.snapshots
        if not snaps:
            self._set_status("This run has no attention snapshots yet (they are written at each evaluation).")
            return
        step, path = snaps[min(index, len(snaps) - 1)]
        if path == self._snapshot_path and self.data is not None and self.data.label.endswith(f"{step:,}"):
            return
        try:
            data = load_npz(path, f"{os.path.basename(self.run_dir)} · step {step:,}")
        except (OSError, ValueError, KeyError) as exc:  # e.g. caught mid-write by a slow file system
            self._set_status(f"Could not read {path}: {exc}", error=True)
            return
        self._snapshot_path = path
        self._show_set(data)
        self._set_status(f"Training snapshot at step {step:,}: the run's probe text, {data.T} tokens.")

    # ------------------------------------------------------------------ view
    def _show_set(self, data: AttentionSet) -> None:
        if self.data is None and data.n_layer * data.n_head <= 16:
            self.grid_scope.setCurrentIndex(1)  # a small model: every head fits at once
        self.data = data
        for spin, n in ((self.layer, data.n_layer), (self.head, data.n_head)):
            spin.blockSignals(True)
            spin.setRange(0, n - 1)
            spin.blockSignals(False)
        self.refresh_view()
        self.attention_loaded.emit(data.label)

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
        elif kind == "csv":
            save_csv(path, self.heatmap.matrix(), self.heatmap.tokens())
        elif kind == "npy":
            np.save(path, self.heatmap.matrix())
        elif kind == "all" and self.data is not None:
            np.save(path, self.data.probs)

    def _export_dialog(self, kind: str) -> None:
        if self.data is None:
            self._set_status("Nothing to export yet.", error=True)
            return
        ext = {"png": "png", "csv": "csv"}.get(kind, "npy")
        path, _ = QFileDialog.getSaveFileName(self, "Export attention", f"attention.{ext}",
                                              f"{ext.upper()} (*.{ext})")
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
