"""CoreShare: keeps the CPU cores shared between the runs that train and the inference workers.

A run that trains on the CPU in one process takes every core while nothing else computes; when the
Generate or Attention tab sends a request, each running run is asked (its control.json, applied by the
engine between two steps: core.runinfo.ThreadShare) to give one core back, and it takes it again once the
workers have been idle for IDLE_MS. The policy itself is studio.controllers.generation.share_cores.
"""

from __future__ import annotations

import os
import weakref

from PySide6.QtCore import QObject, QTimer, Signal

from core import layout
from studio.controllers.engine_job import EngineJob
from studio.controllers.generation import share_cores

IDLE_MS = 3000  # quiet time before the cores go back to training (a chat's next turn is often this close)
POLL_MS = 500


class CoreShare(QObject):
    text_changed = Signal(str)  # the Generate tab's line about the cores

    def __init__(self, session, pool, cores: int | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.session, self.pool = session, pool
        self.cores = max(1, cores or os.cpu_count() or 1)
        self.busy = False
        self._written: dict[str, tuple] = {}  # run folder -> (threads last asked for, its start event's time)
        self._idle = QTimer(self)  # while runs train: notices when the workers have gone quiet
        self._idle.setInterval(POLL_MS)
        self._idle.timeout.connect(self._on_idle_timeout)
        self._quiet_ms = 0
        pool.request_sent.connect(self._on_pool_request_sent)
        EngineJob.env_source = weakref.WeakMethod(self.job_env)

    def job_env(self) -> dict:
        """The environment of a one-shot engine job (prepare, evaluate, import, export) started while runs
        train: one thread (torch's OpenMP, and the rayon pool of the tokenizer trainer), which sleeps rather
        than spins while it waits, so the runs keep their cores (the studio sets the thread counts, as it
        does for the runs; a wait policy of the user's own is kept, as llm-train --share-cores keeps it).
        {} while no run trains: the job may use every core."""
        if not self.session.running():
            return {}
        env = {"OMP_NUM_THREADS": "1", "RAYON_NUM_THREADS": "1"}
        if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
            env["OMP_WAIT_POLICY"] = "PASSIVE"
        return env

    def launch(self) -> dict:
        """{"threads": --threads, "share": --share-cores} for a run about to start."""
        share = share_cores(self.cores, len(self.session.running()) + 1, self.busy)
        return {"threads": share["train"], "share": share["share"]}

    def update(self) -> None:
        """Apply the share for the runs training now (cheap when nothing changed: called at run updates)."""
        running = self.session.running()
        share = share_cores(self.cores, len(running), self.busy)
        self.pool.threads = share["worker"]
        for ctl in running:
            # again once the engine's start event is in: it reads only what is written after it set out
            asked = (share["train"], (ctl.history.start or {}).get("time"))
            if self._written.get(ctl.run.dir) != asked:
                self._written[ctl.run.dir] = asked
                try:
                    layout.atomic_write_json(os.path.join(ctl.run.dir, layout.CONTROL_JSON),
                                             {"threads": share["train"]})
                except OSError:
                    pass  # the run keeps its threads: slower while generating, nothing lost
        live = {ctl.run.dir for ctl in running}
        self._written = {d: n for d, n in self._written.items() if d in live}
        if running and not self._idle.isActive():
            self._idle.start()
        elif not running:
            self._idle.stop()
        self.text_changed.emit(share["text"])

    def _on_pool_request_sent(self) -> None:
        self._quiet_ms = 0
        if not self.busy:
            self.busy = True
            self.update()

    def _on_idle_timeout(self) -> None:
        if not self.busy:
            return
        if any(w.busy() for w in self.pool.workers()):
            self._quiet_ms = 0
            return
        self._quiet_ms += POLL_MS
        if self._quiet_ms >= IDLE_MS:
            self.busy = False
            self.update()
