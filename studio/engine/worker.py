"""InferenceWorker: the GUI side of `llm-train serve`, and WorkerPool: one worker per loaded checkpoint.

The worker process holds a model; panels send it requests (`request()` returns the request id) and pick
their replies out of the broadcast signals by id. Requests made before the worker is ready wait in a list
and go out on `ready`. When the process dies unexpectedly, every request in flight fails with kind
"worker_died", `died` carries a message with the exit code and the end of stderr, and the worker starts
again (at most MAX_RESTARTS times per RESTART_WINDOW_S, so a checkpoint that crashes at once does not
loop). A checkpoint that cannot be loaded is reported the same way but not retried.

Pure Qt + core.protocol: no torch here; bulky replies (.npy) are read with numpy by the panels.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import time

from PySide6.QtCore import QObject, QProcess, QTimer, Signal

from core.protocol import encode, make_request
from studio.engine.process import EngineProcess

MAX_RESTARTS = 3
RESTART_WINDOW_S = 60.0
RESTART_DELAY_MS = 300
_ids = itertools.count(1)


class InferenceWorker(QObject):
    """One `llm-train serve` process for one checkpoint (swappable with `load`)."""

    state_changed = Signal(str)      # "stopped" | "starting" | "ready" | "dead" | "failed"
    ready = Signal(dict)             # model info: checkpoint, step, n_layer, n_head, block_size, vocab_size
    token_received = Signal(dict)    # a `token` reply (generation streaming)
    result_received = Signal(dict)   # a `result` reply
    request_failed = Signal(dict)    # an `error` reply to a request (or a synthetic one: worker_died)
    died = Signal(str)               # the process ended unexpectedly or could not load: a message to show
    request_sent = Signal()          # a request was made (the studio's core share: training gives a core)

    def __init__(self, checkpoint: str, parent: QObject | None = None, auto_restart: bool = True):
        super().__init__(parent)
        self.checkpoint = os.path.abspath(checkpoint)
        self.auto_restart = auto_restart
        self.threads = 0  # --threads of the process (0 = torch's default); a restart picks up a change
        self.info: dict = {}
        self.state = "stopped"
        self.last_error = ""
        self.restarts: list[float] = []
        self._proc: EngineProcess | None = None
        self._waiting: list[dict] = []     # requests made before ready
        self._in_flight: dict = {}         # id -> op
        self._stopping = False
        self._restart_pending = False      # load() killed a starting process: start again when it has ended
        self._load_error: dict | None = None
        self._scratch = tempfile.mkdtemp(prefix="llm-studio-serve-")

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        if self._proc is not None and self._proc.is_running():
            return
        self._stopping = False
        self._load_error = None
        self.info = {}
        proc = self._proc = EngineProcess(self)
        proc.event_received.connect(self._on_proc_event)
        proc.finished.connect(self._on_proc_finished)
        proc.failed_to_start.connect(self._on_proc_failed_to_start)
        self._set_state("starting")
        os.makedirs(self._scratch, exist_ok=True)
        proc.start("serve", ["--checkpoint", self.checkpoint, "--scratch", self._scratch]
                   + (["--threads", str(self.threads)] if self.threads else []))

    def shutdown(self, wait_ms: int = 0) -> None:
        """Stop the process for good (no restart). Killing is safe (a worker has no state to save);
        `wait_ms` blocks until it is gone, for application shutdown and tests only."""
        self._stopping = True
        self._restart_pending = False
        self._waiting.clear()
        if self._proc is not None and self._proc.is_running():
            self._proc.kill()
            if wait_ms:
                self._proc.wait_for_finished(wait_ms)
        shutil.rmtree(self._scratch, ignore_errors=True)
        self._set_state("stopped")

    def wait_for_finished(self, msecs: int = 5000) -> bool:
        """Block until the process ended (application shutdown and tests only)."""
        return self._proc is None or self._proc.wait_for_finished(msecs)

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.is_running()

    def is_ready(self) -> bool:
        return self.state == "ready"

    def busy(self) -> bool:
        """Whether a request is waiting or running (a generation, an attention map...)."""
        return bool(self._waiting or self._in_flight)

    def pid(self) -> int:
        return self._proc.pid() if self._proc is not None else 0

    # ------------------------------------------------------------------ requests
    def request(self, op: str, **fields) -> str:
        """Send a request (queued until the worker is ready; starts it if needed); returns its id."""
        rid = f"r{next(_ids)}"
        req = make_request(op, rid, **fields)
        if self.state == "ready":
            self._send(req)
        else:
            self._waiting.append(req)
            if self.state in ("stopped", "dead", "failed"):
                self.restarts.clear()
                self.start()
        self.request_sent.emit()
        return rid

    def cancel(self, target: str | None = None) -> None:
        """Cancel a request (waiting here or running in the worker); None cancels whatever runs."""
        before = len(self._waiting)
        self._waiting = [r for r in self._waiting if target is not None and r["id"] != target]
        if len(self._waiting) < before or not self.is_ready():
            return
        self._send(make_request("cancel", f"r{next(_ids)}", target=target))

    def load(self, checkpoint: str) -> str:
        """Swap the worker's checkpoint (the process stays; torch is not imported again)."""
        self.checkpoint = os.path.abspath(checkpoint)
        if self.state == "ready":
            return self.request("load", checkpoint=self.checkpoint)
        if self._restart_pending:
            return ""  # the restart already on its way reads self.checkpoint
        if self.is_running():  # still starting with the old one: start over with the new checkpoint, once
            self._restart_pending = True  # the old process has ended (never waited on in the GUI thread)
            self._stopping = True
            self._proc.kill()
            return ""
        self.start()
        return ""

    def _send(self, req: dict) -> None:
        if req["op"] not in ("cancel", "shutdown"):
            self._in_flight[req["id"]] = req["op"]
        self._proc.write_line(encode(req))

    # ------------------------------------------------------------------ slots
    def _on_proc_event(self, ev: dict) -> None:
        kind, rid = ev.get("event"), ev.get("id")
        if kind == "ready":
            self.info = dict(ev)
            self._set_state("ready")
            self.ready.emit(self.info)
            waiting, self._waiting = self._waiting, []
            for req in waiting:
                self._send(req)
        elif kind == "token":
            self.token_received.emit(ev)
        elif kind == "result":
            self._in_flight.pop(rid, None)
            if ev.get("op") == "load":
                self.info = {**self.info, **ev}
                self.checkpoint = ev.get("checkpoint", self.checkpoint)
                self.ready.emit(self.info)
            self.result_received.emit(ev)
        elif kind == "error":
            if rid is None and ev.get("kind") == "load":
                self._load_error = ev
            else:
                op = self._in_flight.pop(rid, None)
                self.request_failed.emit({**ev, "op": op})
                if op == "load":  # the old model is still loaded: never serve it under the new name
                    self._fail(f"could not load {os.path.basename(self.checkpoint)}: {ev.get('message')}")

    def _on_proc_finished(self, code: int, close: dict | None) -> None:
        if self._restart_pending:  # killed by load() while starting: start with the new checkpoint
            self._restart_pending = False
            self.start()
            return
        lost, self._in_flight = self._in_flight, {}
        for rid, op in lost.items():
            self.request_failed.emit({"event": "error", "id": rid, "op": op, "kind": "worker_died",
                                      "message": "the inference worker stopped before answering"})
        if self._stopping or self.state == "failed":
            if self.state != "failed":
                self._set_state("stopped")
            return
        if self._load_error is not None:
            self._fail(f"could not load {self.checkpoint}: {self._load_error.get('message')}")
            return
        tail = "\n".join(list(self._proc.stderr_tail)[-6:]) if self._proc else ""
        qproc = getattr(self._proc, "_proc", None)
        crashed = code < 0 or (qproc is not None and qproc.exitStatus() == QProcess.ExitStatus.CrashExit)
        how = f"was killed (signal {code})" if crashed and code > 0 else "was killed" if crashed else \
            f"exited with code {code}"
        message = f"The inference worker for {_short(self.checkpoint)} {how}." + (f"\n{tail}" if tail else "")
        self.last_error = message
        self._set_state("dead")
        self.died.emit(message)
        now = time.monotonic()
        self.restarts = [t for t in self.restarts if now - t < RESTART_WINDOW_S]
        if self.auto_restart and len(self.restarts) < MAX_RESTARTS:
            self.restarts.append(now)
            QTimer.singleShot(RESTART_DELAY_MS, self._restart)

    def _restart(self) -> None:
        if self.state == "dead" and not self._stopping:
            self.start()

    def _on_proc_failed_to_start(self, message: str) -> None:
        self._fail(message)

    def _fail(self, message: str) -> None:
        self.last_error = message
        self._waiting.clear()
        self._set_state("failed")
        if self._proc is not None and self._proc.is_running():
            self._proc.kill()
        self.died.emit(message)

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.state_changed.emit(state)


def _short(checkpoint: str) -> str:
    """'run/step-000500' from a checkpoint path."""
    parts = os.path.normpath(checkpoint).split(os.sep)
    return "/".join(parts[-3::2]) if len(parts) >= 3 and parts[-2] == "checkpoints" else parts[-1]


class WorkerPool(QObject):
    """One InferenceWorker per loaded checkpoint, shared by the panels that use it (reference counted)."""

    worker_created = Signal(object)
    request_sent = Signal()  # any worker's

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._workers: dict[str, InferenceWorker] = {}
        self._users: dict[str, int] = {}
        self.threads = 0  # CPU threads of workers started from now on (0 = torch's default)

    def acquire(self, checkpoint: str, previous: InferenceWorker | None = None) -> InferenceWorker:
        """The worker for `checkpoint`; `previous` (the caller's old one) is released, or reused through a
        `load` when nobody else needs it and no worker holds the new checkpoint yet."""
        key = os.path.abspath(checkpoint)
        if previous is not None and previous.checkpoint == key and key in self._workers:
            return previous
        if key not in self._workers and previous is not None and self._users.get(previous.checkpoint) == 1 \
                and self._workers.get(previous.checkpoint) is previous:
            del self._workers[previous.checkpoint]
            del self._users[previous.checkpoint]
            previous.load(key)
            self._workers[key], self._users[key] = previous, 1
            return previous
        if previous is not None:
            self.release(previous)
        worker = self._workers.get(key)
        if worker is None:
            worker = self._workers[key] = InferenceWorker(key, self)
            worker.threads = self.threads
            worker.request_sent.connect(self.request_sent)
            self._users[key] = 0
            self.worker_created.emit(worker)
        self._users[key] += 1
        return worker

    def release(self, worker: InferenceWorker) -> None:
        key = worker.checkpoint
        if self._workers.get(key) is not worker:
            worker.shutdown()
            return
        self._users[key] -= 1
        if self._users[key] <= 0:
            del self._workers[key], self._users[key]
            worker.shutdown()

    def workers(self) -> list[InferenceWorker]:
        return list(self._workers.values())

    def shutdown(self, wait_ms: int = 0) -> None:
        for worker in self.workers():
            worker.shutdown(wait_ms)
        self._workers.clear()
        self._users.clear()
