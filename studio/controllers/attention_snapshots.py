"""SnapshotWatcher: the attention snapshots a run writes at each evaluation (RUN_DIR/attention/
step-NNNNNN.npz, listed by core.layout), followed live while the run trains.

A QFileSystemWatcher on the run and its attention folder reacts at once; a slow QTimer poll backs it up
(watchers miss events on some file systems, and the folder may not exist yet when watching starts).
"""

from __future__ import annotations

import os

from PySide6.QtCore import QFileSystemWatcher, QObject, QTimer, Signal

from core.layout import ATTENTION, list_snapshots

POLL_MS = 2000


class SnapshotWatcher(QObject):
    snapshots_changed = Signal(list)  # [(step, path)], oldest first

    def __init__(self, parent: QObject | None = None, poll_ms: int = POLL_MS):
        super().__init__(parent)
        self.run_dir = ""
        self.snapshots: list[tuple[int, str]] = []
        self._watcher = QFileSystemWatcher(self)
        self._watcher.directoryChanged.connect(self._on_watcher_changed)
        self._timer = QTimer(self)
        self._timer.setInterval(poll_ms)
        self._timer.timeout.connect(self.rescan)

    def set_run_dir(self, run_dir: str) -> None:
        self.run_dir = run_dir or ""
        self.snapshots = []
        self._rewatch()
        if self.run_dir:
            self._timer.start()
        else:
            self._timer.stop()
        self.rescan(force=True)

    def _rewatch(self) -> None:
        watched = self._watcher.directories()
        if watched:
            self._watcher.removePaths(watched)
        paths = [p for p in (self.run_dir, os.path.join(self.run_dir, ATTENTION)) if p and os.path.isdir(p)]
        if paths:
            self._watcher.addPaths(paths)

    def _on_watcher_changed(self, _path: str) -> None:
        if len(self._watcher.directories()) < 2:  # the attention folder may have just appeared
            self._rewatch()
        self.rescan()

    def rescan(self, force: bool = False) -> None:
        found = list_snapshots(self.run_dir) if self.run_dir else []
        if found != self.snapshots or force:
            self.snapshots = found
            self.snapshots_changed.emit(found)

    def stop(self) -> None:
        self._timer.stop()
