"""What went wrong with an engine process, in words: the one place that reads an exit (code, close
event, the tail of stderr) and builds the message the user sees. Pure Python (no Qt).

Used for training runs (the Training tab's banner, the status bar) and for prepare jobs (the Data tab,
the demo set-up), so a crash, an error event or a silent death reads the same everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.errors import EXIT_BAD_INPUT, EXIT_FAIL

EXIT_MEANINGS = {EXIT_FAIL: "failure during the run", EXIT_BAD_INPUT: "bad input"}
LOG_LINES_IN_MESSAGE = 12   # log lines appended to a run's failure message
DETAIL_LINES = 6            # log lines listed under a prepare job's failure


@dataclass(frozen=True)
class EngineFailure:
    """One failed engine process: a one-line headline and the log lines that explain it."""

    headline: str
    exit_code: int | None = None
    log: list[str] = field(default_factory=list)      # the tail of stderr, launcher headers removed
    details: list[str] = field(default_factory=list)  # log lines worth listing (no traceback frames)

    def exit_text(self) -> str:
        """'exit code 2 (bad input)'; '' when the code is unknown."""
        if self.exit_code is None or self.exit_code == -1:
            return ""
        meaning = EXIT_MEANINGS.get(self.exit_code)
        return f"exit code {self.exit_code}" + (f" ({meaning})" if meaning else "")

    def text(self) -> str:
        """The headline followed by the last lines of the engine's log (a run's banner)."""
        if not self.log:
            return self.headline
        lines = "\n".join(self.log[-LOG_LINES_IN_MESSAGE:])
        return f"{self.headline}\n\nLast lines of the engine's log:\n{lines}"


def _is_traceback_line(line: str) -> bool:
    return line.startswith("Traceback (most recent call last)") or line[:1].isspace()


def classify(close_event: dict | None, exit_code: int | None, stderr: list[str] | tuple[str, ...] = (),
             what: str = "the run") -> EngineFailure:
    """The failure of an engine process that closed with `close_event` (None: it sent none) and exited
    with `exit_code` (None or -1: unknown, e.g. killed or found dead); `what` names its job."""
    log = [ln for ln in stderr if ln.strip() and not ln.startswith("--- ")]  # "--- date argv": launcher
    traceback = any(ln.startswith("Traceback (most recent call last)") for ln in log)
    if close_event is not None and close_event.get("event") == "error":
        message = str(close_event.get("message") or "the engine reported an error")
        kind = close_event.get("kind")
        headline = f"{message} ({kind} error)" if kind else message
        details = [ln for ln in log if message not in ln]
    elif traceback:
        last = next((ln for ln in reversed(log) if not _is_traceback_line(ln)), log[-1])
        code = "" if exit_code in (None, -1) else f" (code {exit_code})"
        headline = f"The engine crashed{code}: {last}"
        details = [ln for ln in log if not _is_traceback_line(ln) and ln != last]
    elif exit_code is not None and exit_code != -1:
        headline = f"The engine exited (code {exit_code}) without finishing {what}."
        details = log
    else:
        headline = f"The engine stopped without finishing {what} (it crashed or was killed)."
        details = log
    return EngineFailure(headline, exit_code, log, details[-DETAIL_LINES:])
