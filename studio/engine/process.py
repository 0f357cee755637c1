"""EngineProcess: one engine subprocess (a QProcess) speaking the JSON Lines protocol.

Never blocks the GUI thread: output arrives through readyRead signals and is split by a LineBuffer;
`stop()` asks politely (a `stop` line on stdin, then SIGTERM) and escalates to kill after a grace
period, all driven by timers.
"""

from __future__ import annotations

import collections
import weakref

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, Signal

from core.protocol import STOP_LINE, LineBuffer, is_close, parse_event
from studio.engine.command import engine_command, engine_env

_LIVE: weakref.WeakSet = weakref.WeakSet()


def running_processes() -> list[EngineProcess]:
    """EngineProcess objects of this process whose child is still running (tests check for leftovers)."""
    out = []
    for p in list(_LIVE):
        try:
            if p.is_running():
                out.append(p)
        except RuntimeError:  # its Qt objects were deleted with their parent (a closed dialog): not running
            continue
    return out


class EngineProcess(QObject):
    """Starts `llm-train <subcommand> ...`, parses stdout into events, keeps stderr's tail."""

    started = Signal()
    event_received = Signal(object)  # a protocol message (dict) from stdout
    text_received = Signal(str)        # a non-JSON stdout line
    stderr_received = Signal(str)      # one stderr line (human logs)
    # exit code, the close event (done/stopped/error) or None when the process died without one
    finished = Signal(int, object)
    failed_to_start = Signal(str)

    STDERR_TAIL = 200  # lines kept for error reports

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._proc: QProcess | None = None
        self._out = LineBuffer()
        self._err = LineBuffer()
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=self.STDERR_TAIL)
        self.close_event: dict | None = None
        self.argv: list[str] = []
        self._stop_timer = QTimer(self)
        self._stop_timer.setSingleShot(True)
        self._stop_timer.timeout.connect(self._escalate)
        self._stop_stage = 0
        _LIVE.add(self)

    # ------------------------------------------------------------------ control
    def start(self, subcommand: str, args: list[str], cwd: str | None = None, nproc: int = 1,
              argv: list[str] | None = None, env: dict | None = None) -> None:
        """Launch the engine; `argv` replaces the resolved command entirely (tests, torchrun); `env` adds
        to the engine's environment."""
        if self.is_running():
            raise RuntimeError("engine process already running")
        self.argv = argv or engine_command(subcommand, *args, nproc=nproc)
        self.close_event = None
        self.stderr_tail.clear()
        self._out, self._err = LineBuffer(), LineBuffer()
        self._stop_stage = 0
        proc = QProcess(self)
        environment = QProcessEnvironment()
        for key, value in {**engine_env(), **(env or {})}.items():
            environment.insert(key, value)
        proc.setProcessEnvironment(environment)
        if cwd:
            proc.setWorkingDirectory(cwd)
        proc.readyReadStandardOutput.connect(self._on_proc_stdout)
        proc.readyReadStandardError.connect(self._on_proc_stderr)
        proc.finished.connect(self._on_proc_finished)
        proc.errorOccurred.connect(self._on_proc_error)
        proc.started.connect(self.started)
        self._proc = proc
        proc.start(self.argv[0], self.argv[1:])

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.state() != QProcess.ProcessState.NotRunning

    def pid(self) -> int:
        return int(self._proc.processId()) if self._proc is not None else 0

    def write_line(self, text: str) -> None:
        if self.is_running():
            self._proc.write((text.rstrip("\n") + "\n").encode("utf-8"))

    def stop(self, grace_ms: int = 60000) -> None:
        """Graceful stop: the engine finishes its step and writes a checkpoint; kill after grace_ms."""
        if not self.is_running():
            return
        self._stop_stage = 1
        self.write_line(STOP_LINE)
        self._proc.terminate()  # SIGTERM: same meaning as the stop line, in case stdin is not read
        self._stop_timer.start(grace_ms)

    def kill(self) -> None:
        if self.is_running():
            self._proc.kill()

    def _escalate(self) -> None:
        if self.is_running():
            self._proc.kill()

    # ------------------------------------------------------------------ slots
    def _on_proc_stdout(self) -> None:
        for line in self._out.feed(bytes(self._proc.readAllStandardOutput())):
            self._dispatch_stdout(line)

    def _dispatch_stdout(self, line: str) -> None:
        ev = parse_event(line)
        if ev is None:
            if line.strip():
                self.text_received.emit(line)
            return
        if is_close(ev) and ev.get("id") is None:
            self.close_event = ev
        self.event_received.emit(ev)

    def _on_proc_stderr(self) -> None:
        for line in self._err.feed(bytes(self._proc.readAllStandardError())):
            self.stderr_tail.append(line)
            self.stderr_received.emit(line)

    def _on_proc_finished(self, exit_code: int, exit_status) -> None:
        if self._proc is not None:
            # Drain what is left: whole lines first (the close event may be among them), then a last
            # line that lacks its newline.
            self._on_proc_stdout()
            for line in self._out.flush():
                self._dispatch_stdout(line)
            self._on_proc_stderr()
            for line in self._err.flush():
                self.stderr_tail.append(line)
                self.stderr_received.emit(line)
        self._stop_timer.stop()
        if exit_status == QProcess.ExitStatus.CrashExit and exit_code == 0:
            exit_code = -1
        self.finished.emit(int(exit_code), self.close_event)

    def _on_proc_error(self, error) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self.failed_to_start.emit(f"could not start the engine ({' '.join(self.argv[:3])} ...): "
                                      f"{self._proc.errorString() if self._proc else error}")

    def wait_for_finished(self, msecs: int = 5000) -> bool:
        """Only for application shutdown and tests' teardown: blocks."""
        if self._proc is None:
            return True
        return self._proc.waitForFinished(msecs)
