"""AttentionSession: the Attention panel's worker, requests and the run's snapshots.

Two sources of attention: a text run through a checkpoint by an inference worker (`llm-train serve`,
the reply an .npy file that is read and removed here), or the snapshots a run saves at each evaluation
(RUN_DIR/attention/step-NNNNNN.npz), followed live by a SnapshotWatcher. The session holds the attention
set shown (`data`) and writes exports; the view renders what `loaded` hands it and the status it gets.
"""

from __future__ import annotations

import io
import os

import numpy as np
from PySide6.QtCore import QObject, Signal

from core.layout import atomic_write
from studio.controllers.attention_snapshots import SnapshotWatcher
from studio.controllers.workers import WorkerLink
from studio.engine.worker import InferenceWorker, WorkerPool
from studio.workspace.attention_math import AttentionSet, load_npz, matrix_csv
from studio.workspace.checkpoints import checkpoint_label, run_of
from studio.workspace.run import Run


class AttentionSession(QObject):
    loaded = Signal(object)               # the AttentionSet now shown
    snapshots_changed = Signal(list)      # [(step, path)] of the run's snapshots, oldest first
    status_changed = Signal(str, bool)    # text, is an error

    def __init__(self, pool: WorkerPool | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.pool = pool or WorkerPool(self)
        self.link = WorkerLink(self.pool, self)
        self.link.result_received.connect(self._on_link_result_received)
        self.link.request_failed.connect(self._on_link_request_failed)
        self.link.worker_died.connect(self._on_link_worker_died)
        self.link.worker_state_changed.connect(self._on_link_worker_state_changed)
        self.watcher = SnapshotWatcher(self)
        self.watcher.snapshots_changed.connect(self.snapshots_changed)
        self.data: AttentionSet | None = None
        self.run_dir = ""
        self.error = False                # the last status was an error
        self._pending = ""
        self._snapshot_path = ""

    @property
    def worker(self) -> InferenceWorker | None:
        return self.link.worker

    @property
    def snapshots(self) -> list[tuple[int, str]]:
        return self.watcher.snapshots

    # ------------------------------------------------------------------ sources
    def set_run_dir(self, run_dir: str) -> None:
        """Whose training snapshots to follow."""
        if os.path.abspath(run_dir or ".") != os.path.abspath(self.run_dir or "."):
            self.run_dir = run_dir
            self.watcher.set_run_dir(run_dir)

    def follow_checkpoint(self, checkpoint: str) -> None:
        """Follow the snapshots of the run a checkpoint belongs to (if it lies in a run folder)."""
        run = run_of(checkpoint)
        if run:
            self.set_run_dir(run)

    def compute(self, checkpoint: str, text: str) -> bool:
        """Ask the checkpoint's worker for the attention on `text` (a request still running is cancelled)."""
        if not checkpoint:
            self._status("Pick a checkpoint first.", error=True)
            return False
        if not text:
            self._status("Type a text first.", error=True)
            return False
        if self._pending:
            self.link.cancel(self._pending)
        self._pending = self.link.request(checkpoint, "attention", text=text)
        self._status(f"Computing attention with {checkpoint_label(checkpoint)}…")
        return True

    def load_snapshot(self, index: int) -> None:
        """Show snapshot `index` of the run (the last one if beyond)."""
        snaps = self.watcher.snapshots
        if not snaps:
            self._status("This run has no attention snapshots yet (they are written at each evaluation).")
            return
        step, path = snaps[min(index, len(snaps) - 1)]
        if path == self._snapshot_path and self.data is not None and self.data.label.endswith(f"{step:,}"):
            return
        try:
            data = load_npz(path, f"{os.path.basename(self.run_dir)} · step {step:,}")
        except (OSError, ValueError, KeyError) as exc:  # e.g. caught mid-write by a slow file system
            self._status(f"Could not read {path}: {exc}", error=True)
            return
        self._snapshot_path = path
        self._show(data)
        cfg = Run(self.run_dir).config_or_none()
        what = "its run.attention_probe" if cfg is not None and cfg.run.attention_probe else \
            "the start of its validation text"  # the engine's default probe (core.evaluation.data_probe_text)
        self._status(f"Training snapshot at step {step:,}: {what}, {data.T} tokens.")

    # ------------------------------------------------------------------ export
    def export(self, kind: str, path: str, matrix: np.ndarray, tokens: list[str]) -> None:
        """kind: csv / npy (the shown `matrix`), all (every layer and head of the set shown, npy)."""
        if kind == "csv":
            atomic_write(path, matrix_csv(matrix, tokens))
        elif kind == "npy":
            _save_npy(path, matrix)
        elif kind == "all" and self.data is not None:
            _save_npy(path, self.data.probs)

    def shutdown(self, wait_ms: int = 0) -> None:
        self.watcher.stop()
        self._pending = ""
        self.link.release(wait_ms)

    # ------------------------------------------------------------------ worker
    def _on_link_result_received(self, ev: dict) -> None:
        if ev.get("id") != self._pending or ev.get("op") != "attention":
            return
        self._pending = ""
        path = ev.get("path", "")
        try:
            probs = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            self._status(f"Could not read the worker's reply {path}: {exc}", error=True)
            return
        finally:
            if path.endswith(".npy"):
                try:
                    os.remove(path)
                except OSError:
                    pass
        label = checkpoint_label(self.link.checkpoint) if self.worker else ""
        note = " (cut to the context length)" if ev.get("truncated") else ""
        self._show(AttentionSet(probs, list(ev.get("tokens", [])), label, list(ev.get("token_ids", []))))
        self._status(f"{label}: {probs.shape[-1]} tokens{note}, {probs.shape[0]} layers × "
                     f"{probs.shape[1]} heads. Hover the map; click a token or a thumbnail.")

    def _on_link_request_failed(self, ev: dict) -> None:
        if ev.get("id") == self._pending:
            self._pending = ""
            self._status(f"Attention failed ({ev.get('kind')}): {ev.get('message')}", error=True)

    def _on_link_worker_died(self, message: str) -> None:
        self._status(message + ("\nRestarting the worker…" if self.link.is_restarting() else ""), error=True)

    def _on_link_worker_state_changed(self, state: str) -> None:
        if state == "ready" and self.error:
            self._status(f"Worker restarted ({checkpoint_label(self.link.checkpoint)}); press Compute again.")

    def clear(self) -> None:
        """Forget the attention set shown (another workspace: its checkpoint is not one of this one's)."""
        self.data = None

    def _show(self, data: AttentionSet) -> None:
        self.data = data
        self.loaded.emit(data)

    def _status(self, text: str, error: bool = False) -> None:
        self.error = error
        self.status_changed.emit(text, error)


def _save_npy(path: str, array: np.ndarray) -> None:
    """np.save's format and naming (.npy added when missing), written atomically."""
    buf = io.BytesIO()
    np.save(buf, array)
    atomic_write(path if path.endswith(".npy") else f"{path}.npy", buf.getvalue())
