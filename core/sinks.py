"""Where run events go: one small interface so the training loop never asks "is a GUI attached?".

- JsonlSink: JSON Lines to a stream (stdout with --events); survives the reader going away.
- FileSink: appends to RUN_DIR/metrics.jsonl, flushed per line, so others can tail it.
- ProgressSink: a human progress line on stderr (without --events).
Only rank 0 gets real sinks; other ranks get none.
"""

from __future__ import annotations

import math
import os
import sys
import time
from typing import IO

from core.protocol import as_float, encode


class Sinks:
    """Fan one event out to every sink."""

    def __init__(self, sinks: list | None = None):
        self.sinks = list(sinks or [])

    def emit(self, event: dict) -> None:
        for sink in self.sinks:
            sink.emit(event)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()


class JsonlSink:
    def __init__(self, stream: IO[str]):
        self.stream = stream
        self.alive = True

    def emit(self, event: dict) -> None:
        if not self.alive:
            return
        try:
            self.stream.write(encode(event))
            self.stream.flush()
        except (BrokenPipeError, OSError, ValueError):
            # The GUI closed its end (it may re-attach by tailing metrics.jsonl): keep training.
            self.alive = False

    def close(self) -> None:
        pass


def _torn(path: str) -> bool:
    """Whether a non-empty file does not end with a newline."""
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        if fh.tell() == 0:
            return False
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) != b"\n"


class FileSink:
    """Opened on the first event, so a run rejected during set-up leaves no file behind."""

    def __init__(self, path: str):
        self.path = path
        self.fh: IO[str] | None = None
        self.broken = False

    def emit(self, event: dict) -> None:
        if self.fh is None:
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            self.fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the run
            if _torn(self.path):  # a killed writer left half a line: end it, or it swallows our first event
                self.fh.write("\n")
        if self.broken:  # the disk filled up: the run is being stopped with an error event elsewhere
            return
        try:
            self.fh.write(encode(event))
            self.fh.flush()
        except OSError as exc:
            self.broken = True
            if event.get("event") == "error":  # the run is already failing: its stdout event says why
                return
            from core.guards import disk_full_error, is_disk_full

            raise (disk_full_error(self.path) if is_disk_full(exc) else exc) from None

    def close(self) -> None:
        if self.fh is not None:
            try:
                self.fh.close()
            except OSError:  # buffered bytes that no longer fit: already reported
                pass


class ProgressSink:
    """One-line progress on stderr: step, loss, lr, throughput, ETA; evals and the end on their own lines."""

    def __init__(self, stream: IO[str] = sys.stderr, min_interval_s: float = 0.5):
        self.stream = stream
        self.tty = stream.isatty()
        self.min_interval_s = min_interval_s
        self._last = 0.0
        self.max_steps = 0

    def _line(self, text: str, final: bool = False) -> None:
        if self.tty and not final:
            self.stream.write("\r" + text[:150].ljust(150))
        else:
            self.stream.write(("\n" if self.tty else "") + text + "\n")
        self.stream.flush()

    def emit(self, ev: dict) -> None:
        kind = ev.get("event")
        if kind == "start":
            self.max_steps = int(ev.get("max_steps", 0))
            self._line(f"training {ev.get('params', 0) / 1e6:.2f}M parameters on {ev.get('device')} "
                       f"({ev.get('precision')}, world size {ev.get('world_size')}"
                       f"{', ' + ev['backend'] if ev.get('backend') else ''}), "
                       f"{ev.get('tokens_per_step')} tokens/step, run folder {ev.get('run_dir')}", final=True)
        elif kind == "step":
            now = time.monotonic()
            if now - self._last < self.min_interval_s and ev.get("step") != self.max_steps:
                return
            self._last = now
            step, tps = int(ev["step"]), as_float(ev.get("tokens_per_s"))
            rate = ev.get("step_ms", 0) / 1000.0
            eta = (self.max_steps - step) * rate
            width = 24
            done = int(width * step / max(1, self.max_steps))
            bar = "#" * done + "-" * (width - done)
            self._line(f"[{bar}] step {step}/{self.max_steps} | loss {as_float(ev['loss']):.4f} | "
                       f"lr {as_float(ev['lr']):.2e} | {tps:,.0f} tok/s | eta {_duration(eta)}")
        elif kind == "eval":
            self._line(f"step {ev['step']}: train loss {as_float(ev['train_loss']):.4f}, "
                       f"val loss {as_float(ev['val_loss']):.4f} (ppl {as_float(ev['val_ppl']):.2f})", final=True)
        elif kind == "sample":
            self._line(f"sample at step {ev['step']}: {ev['text']!r}", final=True)
        elif kind in ("done", "stopped"):
            self._line(f"{kind} at step {ev.get('step')}; checkpoint {ev.get('checkpoint')}", final=True)
        elif kind == "error":
            self._line(f"error ({ev.get('kind')}): {ev.get('message')}", final=True)
        elif kind == "log":  # e.g. a resume whose edited schedule moves the learning rate
            self._line(f"{ev.get('level', 'info')}: {ev.get('message')}", final=True)

    def close(self) -> None:
        pass


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"
