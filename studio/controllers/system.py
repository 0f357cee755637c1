"""SystemMonitor: samples the followed run's CPU and memory (and the GPUs when there are any) once a second
while it trains, and keeps the series for studio.views.training.system to plot.

nvidia-smi takes 50 ms to a second per call (longer without persistence mode), so it never runs in the GUI
thread's way: GpuQuery starts it as a QProcess and keeps the figures of the last answer; each sample uses
those and asks for fresh ones."""

from __future__ import annotations

import time

from PySide6.QtCore import QCoreApplication, QObject, QProcess, QTimer, Signal

from studio.controllers.run import RunController
from studio.workspace.sysmetrics import ProcessSampler, nvidia_smi_command, parse_nvidia_smi

SAMPLE_MS = 1000
KEEP = 3600  # samples: an hour at one per second
SERIES = ("t", "cpu_percent", "rss_mb", "gpu_util_percent", "gpu_mem_mb", "gpu_temp_c")


class GpuQuery(QObject):
    """nvidia-smi, asynchronously: `request()` starts a query unless one is under way; `latest` holds the
    GPUs of the last answer (None before the first, or when there is no nvidia-smi or it failed);
    `answered` is emitted with each answer. One QProcess, started again for each query."""

    answered = Signal()

    def __init__(self, parent: QObject | None = None, command: list[str] | None = None) -> None:
        super().__init__(parent)
        self.command = command if command is not None else nvidia_smi_command()
        self.latest: list[dict] | None = None
        self.available = self.command is not None   # False once there is no nvidia-smi, or it failed
        self.proc = QProcess(self)
        self.proc.finished.connect(self._on_proc_finished)
        self.proc.errorOccurred.connect(self._on_proc_error_occurred)
        app = QCoreApplication.instance()
        if app is not None:  # an nvidia-smi under way when the studio quits is killed, not orphaned
            app.aboutToQuit.connect(self.shutdown)

    def busy(self) -> bool:
        return self.proc.state() != QProcess.ProcessState.NotRunning

    def request(self) -> None:
        if self.available and not self.busy():
            self.proc.start(self.command[0], self.command[1:])

    def _on_proc_finished(self, code: int, _status) -> None:
        text = bytes(self.proc.readAllStandardOutput()).decode("utf-8", errors="replace")
        self.latest = parse_nvidia_smi(text) if code == 0 else None
        if not self.latest:
            self.available = False  # no usable GPU figures: stop asking every second
        self.answered.emit()

    def _on_proc_error_occurred(self, error) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self.available, self.latest = False, None
            self.answered.emit()

    def shutdown(self) -> None:
        if self.busy():
            self.proc.kill()
            self.proc.waitForFinished(1000)


class SystemMonitor(QObject):
    """Series of system figures of one run (cleared when another run is followed)."""

    sampled = Signal()

    def __init__(self, parent: QObject | None = None, gpu_query=None) -> None:
        """`gpu_query`: a callable giving the GPUs' figures at once (tests); by default nvidia-smi runs
        asynchronously (GpuQuery) and a sample shows its last answer."""
        super().__init__(parent)
        self.controller: RunController | None = None
        self.sampler = ProcessSampler()
        self.gpu_query = gpu_query
        self.gpu = GpuQuery(self) if gpu_query is None else None
        self.has_gpu: bool | None = None   # unknown until the first query
        self.series: dict[str, list[float]] = {k: [] for k in SERIES}
        self.last: dict = {}
        self._t0 = time.monotonic()
        self.timer = QTimer(self)
        self.timer.setInterval(SAMPLE_MS)
        self.timer.timeout.connect(self.sample)

    def follow(self, controller: RunController | None) -> None:
        if controller is self.controller:
            return
        if self.controller is not None:
            self.controller.status_changed.disconnect(self._on_controller_status_changed)
        self.controller = controller
        self.series = {k: [] for k in SERIES}
        self.last = {}
        self.sampler = ProcessSampler()
        self._t0 = time.monotonic()
        if controller is not None:
            controller.status_changed.connect(self._on_controller_status_changed)
        self._on_controller_status_changed(controller.status if controller is not None else "")
        self.sampled.emit()

    def sample(self) -> dict | None:
        """One sample of the followed run's process tree (None when it is not running)."""
        ctl = self.controller
        pid = ctl.run.engine_pid() if ctl is not None and ctl.is_running() else 0
        proc = self.sampler.sample(pid) if pid else None
        if proc is None:
            return None
        if self.gpu is not None:  # the last answer (maybe a second old); ask for the next one
            gpus = self.gpu.latest
            self.gpu.request()
            self.has_gpu = bool(gpus) if self.gpu.latest is not None or not self.gpu.available else None
        else:
            gpus = self.gpu_query() if self.has_gpu is not False else None
            self.has_gpu = bool(gpus)
        row = {"t": time.monotonic() - self._t0, **proc}
        if gpus:  # the busiest GPU: one process per GPU, the figures people watch are the maxima
            row.update(gpu_util_percent=max(g["util_percent"] for g in gpus),
                       gpu_mem_mb=sum(g["mem_used_mb"] for g in gpus), gpu_temp_c=max(g["temp_c"] for g in gpus),
                       gpu_mem_total_mb=sum(g["mem_total_mb"] for g in gpus), gpus=len(gpus))
        for key in SERIES:
            values = self.series[key]
            values.append(float(row.get(key, float("nan"))))
            del values[:-KEEP]
        self.last = row
        self.sampled.emit()
        return row

    def _on_controller_status_changed(self, status: str) -> None:
        if status == "running":
            self.timer.start()
        else:
            self.timer.stop()
