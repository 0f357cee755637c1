"""Incremental readers for files another process is appending to (metrics.jsonl, engine.log).

Pure Python: the studio polls them from a QTimer, tests call them directly. A partial last line (the
writer is mid-line) stays pending until its newline arrives; a file that shrinks (rewritten) is re-read
from the start.
"""

from __future__ import annotations

import os

from core.protocol import LineBuffer, parse_event

READ_CHUNK = 1 << 20  # bytes per read call; a poll reads at most a few chunks


class FileTail:
    """New complete lines of a growing text file since the last call."""

    def __init__(self, path: str, offset: int = 0) -> None:
        self.path = path
        self.offset = offset
        self._buf = LineBuffer()

    def read_lines(self, max_bytes: int = 8 * READ_CHUNK) -> list[str]:
        try:
            size = os.path.getsize(self.path)
        except OSError:
            return []
        if size < self.offset:  # truncated or replaced: start over
            self.offset, self._buf = 0, LineBuffer()
        if size == self.offset:
            return []
        lines: list[str] = []
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            data = fh.read(min(size - self.offset, max_bytes))
        self.offset += len(data)
        lines.extend(self._buf.feed(data))
        return lines

    def flush(self) -> list[str]:
        """The unterminated remainder (call once the writer has exited)."""
        return self._buf.flush()

    def at_end(self) -> bool:
        try:
            return os.path.getsize(self.path) == self.offset
        except OSError:
            return True


class EventTail:
    """New protocol events of a growing JSON Lines file; non-JSON lines are dropped."""

    def __init__(self, path: str, offset: int = 0) -> None:
        self._tail = FileTail(path, offset)

    @property
    def offset(self) -> int:
        return self._tail.offset

    def read_events(self) -> list[dict]:
        return [ev for ev in map(parse_event, self._tail.read_lines()) if ev is not None]

    def flush(self) -> list[dict]:
        return [ev for ev in map(parse_event, self._tail.flush()) if ev is not None]


def file_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def read_last_lines(path: str, max_bytes: int) -> list[str]:
    """The complete-or-not lines in the last `max_bytes` of a text file ([] when it cannot be read)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, file_size(path) - max_bytes))
            return fh.read().decode("utf-8", errors="replace").splitlines()
    except OSError:
        return []
