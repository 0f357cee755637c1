"""WorkerLink: one consumer's hold on an inference worker from the shared WorkerPool.

The Generate panel (one link per output side) and the Attention panel each hold a link instead of a
worker: `bind(checkpoint)` acquires the checkpoint's worker (swapping or releasing the previous one) and
rewires the worker's signals, and the link forwards only the replies to the requests it sent itself, so
consumers never connect to a worker nor sort other consumers' replies out of its broadcasts.
"""

from __future__ import annotations

import os

from PySide6.QtCore import QObject, Signal

from studio.engine.worker import InferenceWorker, WorkerPool


class WorkerLink(QObject):
    token_received = Signal(dict)    # a `token` reply to one of this link's requests
    result_received = Signal(dict)   # a `result` reply to one of this link's requests
    request_failed = Signal(dict)    # an `error` reply (or worker_died) to one of this link's requests
    worker_died = Signal(str)        # the bound worker died or could not load (InferenceWorker.died)
    worker_state_changed = Signal(str)

    def __init__(self, pool: WorkerPool, parent: QObject | None = None):
        super().__init__(parent)
        self.pool = pool
        self.worker: InferenceWorker | None = None
        self._mine: set[str] = set()   # ids of this link's requests still waiting for their end

    @property
    def checkpoint(self) -> str:
        return self.worker.checkpoint if self.worker is not None else ""

    def bind(self, checkpoint: str) -> InferenceWorker:
        """The worker for `checkpoint`, acquired from the pool (the previous one released or reused)."""
        key = os.path.abspath(checkpoint)
        if self.worker is not None and self.worker.checkpoint == key:
            return self.worker
        old = self.worker
        if old is not None:
            self._wire(old, False)
        self.worker = self.pool.acquire(key, previous=old)
        self._wire(self.worker, True)
        return self.worker

    def request(self, checkpoint: str, op: str, **fields) -> str:
        """Send `op` to the worker of `checkpoint` (bound first); returns the request id."""
        rid = self.bind(checkpoint).request(op, **fields)
        self._mine.add(rid)
        return rid

    def cancel(self, rid: str) -> None:
        if rid and self.worker is not None:
            self.worker.cancel(rid)

    def is_restarting(self) -> bool:
        """The bound worker died and is being started again."""
        w = self.worker
        return w is not None and w.state == "dead" and w.auto_restart

    def release(self, wait_ms: int = 0) -> None:
        """Give the worker back to the pool; `wait_ms` waits for it to end when nobody else uses it."""
        w, self.worker = self.worker, None
        self._mine.clear()
        if w is None:
            return
        self._wire(w, False)
        self.pool.release(w)
        if wait_ms and w.state == "stopped":  # nobody else uses it: it is being killed
            w.wait_for_finished(wait_ms)

    # ------------------------------------------------------------------ forwarding
    def _wire(self, w: InferenceWorker, on: bool) -> None:
        for sig, slot in ((w.token_received, self._on_worker_token_received),
                          (w.result_received, self._on_worker_result_received),
                          (w.request_failed, self._on_worker_request_failed),
                          (w.died, self.worker_died), (w.state_changed, self.worker_state_changed)):
            sig.connect(slot) if on else sig.disconnect(slot)

    def _on_worker_token_received(self, ev: dict) -> None:
        if ev.get("id") in self._mine:
            self.token_received.emit(ev)

    def _on_worker_result_received(self, ev: dict) -> None:
        if ev.get("id") in self._mine:
            self._mine.discard(ev.get("id"))
            self.result_received.emit(ev)

    def _on_worker_request_failed(self, ev: dict) -> None:
        if ev.get("id") in self._mine:
            self._mine.discard(ev.get("id"))
            self.request_failed.emit(ev)
