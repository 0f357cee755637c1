"""Incremental readers for files another process is appending to (metrics.jsonl, engine.log).

Pure Python: the studio polls them from a QTimer, tests call them directly. A partial last line (the
writer is mid-line) stays pending until its newline arrives; a file that shrinks (rewritten) is re-read
from the start. A file that cannot be read (gone, a folder, no permission) reads as nothing: the reader
of a damaged run folder learns why from studio.workspace.validate, never from an exception here.
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
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read(min(size - self.offset, max_bytes))
        except OSError:  # a folder, no permission, vanished between the two calls
            return []
        self.offset += len(data)
        lines.extend(self._buf.feed(data))
        return lines

    def flush(self) -> list[str]:
        """The unterminated remainder (call once the writer has exited)."""
        return self._buf.flush()

    def pending(self) -> int:
        """Bytes read but not yet returned (a partial last line)."""
        return len(self._buf._pending)

    def at_end(self) -> bool:
        try:
            return os.path.getsize(self.path) == self.offset
        except OSError:
            return True


class EventTail:
    """New protocol events of a growing JSON Lines file; lines that are not events are dropped and
    counted in `bad` (metrics.jsonl holds nothing else: such a line is damage)."""

    def __init__(self, path: str, offset: int = 0) -> None:
        self._tail = FileTail(path, offset)
        self.bad = 0

    @property
    def offset(self) -> int:
        return self._tail.offset

    @property
    def complete_offset(self) -> int:
        """Where the first line not yet returned starts (a follower continues from here)."""
        return self._tail.offset - self._tail.pending()

    def read_events(self) -> list[dict]:
        return self._parse(self._tail.read_lines(), torn_ok=False)

    def read_all(self) -> list[dict]:
        """Every complete line's event from the offset to the current end of the file."""
        out: list[dict] = []
        while True:
            before = self._tail.offset
            out.extend(self.read_events())
            if self._tail.offset == before:
                return out

    def flush(self) -> list[dict]:
        # An unterminated last line that starts like an event was torn by a killed writer: not damage.
        return self._parse(self._tail.flush(), torn_ok=True)

    def _parse(self, lines: list[str], torn_ok: bool) -> list[dict]:
        out = []
        for line in lines:
            try:
                ev = parse_event(line)
            except RecursionError:  # absurdly nested JSON
                ev = None
            if ev is not None:
                out.append(ev)
            elif line.strip() and not (torn_ok and line.lstrip().startswith("{")):
                self.bad += 1
        return out


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
