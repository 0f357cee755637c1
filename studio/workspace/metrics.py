"""A run's metric history built from protocol events: growable columns the plots read without copying.

`RunHistory.apply(event)` is the one place that interprets training events (step, eval, checkpoint,
start, close events). An event whose fields have the wrong type or range (a damaged metrics.jsonl:
"step": 1e999, "nan", [1]) is skipped and described in `problems`, never folded in. Columns are numpy arrays that double their capacity, so appending is O(1) and the
plots take views (`column.values()`) instead of converting lists on every redraw.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from core.protocol import CLOSE_EVENTS, as_float
from studio.workspace.validate import quote, step_of

MAX_PROBLEMS = 20  # sentences kept about bad events (a garbled file may hold thousands)


class Column:
    """A growable float64 array."""

    def __init__(self, capacity: int = 1024) -> None:
        self._data = np.empty(capacity, dtype=np.float64)
        self._n = 0

    def append(self, value: float) -> None:
        if self._n == len(self._data):
            grown = np.empty(2 * len(self._data), dtype=np.float64)
            grown[: self._n] = self._data[: self._n]
            self._data = grown
        self._data[self._n] = value
        self._n += 1

    def values(self) -> np.ndarray:
        """A read-only view of the filled part (valid until the next append)."""
        view = self._data[: self._n]
        view.flags.writeable = False
        return view

    def truncate(self, n: int) -> None:
        self._n = max(0, min(n, self._n))

    def last(self, default: float = math.nan) -> float:
        return float(self._data[self._n - 1]) if self._n else default

    def __len__(self) -> int:
        return self._n


class Table:
    """Named columns of equal length."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names
        self.columns = {name: Column() for name in names}

    def append(self, **values: float) -> None:
        for name in self.names:
            self.columns[name].append(values.get(name, math.nan))

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name].values()

    def __len__(self) -> int:
        return len(self.columns[self.names[0]])

    def truncate(self, n: int) -> None:
        for col in self.columns.values():
            col.truncate(n)

    def rows_after(self, step: float) -> int:
        """Index of the first row whose step is greater than `step` (steps are increasing)."""
        steps = self["step"]
        return int(np.searchsorted(steps, step, side="right"))


SPEED_WINDOW = 20  # steps behind a run's tokens/s (their median)
STEP_COLUMNS = ("step", "tokens", "elapsed", "loss", "lr", "grad_norm", "tokens_per_s", "clipped")
EVAL_COLUMNS = ("step", "tokens", "elapsed", "val_loss", "train_loss")


@dataclass
class Checkpoint:
    step: int
    path: str


def ema(values: np.ndarray, weight: float) -> np.ndarray:
    """Debiased exponential moving average (TensorBoard's smoothing); NaNs are skipped."""
    out = np.empty(len(values), dtype=np.float64)
    acc, norm = 0.0, 0.0
    for i, v in enumerate(values.tolist()):
        if math.isfinite(v):
            acc = acc * weight + (1.0 - weight) * v
            norm = norm * weight + (1.0 - weight)
        out[i] = acc / norm if norm > 0 else math.nan
    return out


class Smoother:
    """Incremental debiased EMA over a growing column; recomputed only when the weight changes."""

    def __init__(self, weight: float = 0.9) -> None:
        self.weight = weight
        self._out = Column()
        self._acc = 0.0
        self._norm = 0.0

    def set_weight(self, weight: float) -> None:
        if weight != self.weight:
            self.weight = weight
            self.reset()

    def reset(self) -> None:
        self._out = Column()
        self._acc = self._norm = 0.0

    def update(self, source: np.ndarray) -> np.ndarray:
        """Smoothed values for `source` (which only grows, or was truncated: then start over)."""
        if len(source) < len(self._out):
            self.reset()
        w = self.weight
        for v in source[len(self._out):].tolist():
            if math.isfinite(v):
                self._acc = self._acc * w + (1.0 - w) * v
                self._norm = self._norm * w + (1.0 - w)
            self._out.append(self._acc / self._norm if self._norm > 0 else math.nan)
        return self._out.values()


class RunHistory:
    """Everything the studio shows about a run's progress, from its events (live or replayed)."""

    def __init__(self) -> None:
        self.steps = Table(STEP_COLUMNS)
        self.evals = Table(EVAL_COLUMNS)
        self.start: dict | None = None         # the latest start event
        self.close: dict | None = None         # the latest close event (None while running)
        self.starts = 0                        # 1 + number of resumes
        self.checkpoints: list[Checkpoint] = []
        self.samples: list[dict] = []
        self.logs: list[dict] = []
        self.unknown = 0                       # events of types this studio does not know
        self.best_val_loss = math.nan
        self.best_val_step = -1
        self.first_time: float | None = None   # wall clock of the first event
        self.last_time: float | None = None    # wall clock of the latest event
        self.version = 0                       # bumped on every change; views compare it
        self.problems: list[str] = []          # what was wrong with events that were skipped
        self.bad_events = 0
        self._elapsed_base = 0.0
        self._fix_elapsed = False

    # ------------------------------------------------------------------ derived facts
    @property
    def step(self) -> int:
        last = self.steps.columns["step"].last(-1)
        return int(last) if last >= 0 else int((self.start or {}).get("start_step") or 0)

    @property
    def max_steps(self) -> int:
        try:
            return int((self.start or {}).get("max_steps") or self.config_value("train", "max_steps") or 0)
        except (TypeError, ValueError, OverflowError):
            return 0

    @property
    def grad_clip(self) -> float:
        return as_float(self.config_value("train", "grad_clip"))

    @property
    def elapsed_s(self) -> float:
        last = self.steps.columns["elapsed"].last()
        return 0.0 if math.isnan(last) else last

    @property
    def tokens_per_s(self) -> float:
        """While it runs, the median tokens/s of the last SPEED_WINDOW logged steps: the run's speed now,
        which one slow last step (beside an evaluation, a checkpoint or another busy process) does not stand
        for; once it has ended, the median of all its steps (its last twenty, beside another job, said 8.7k
        of a run that went at 15k). NaN when none."""
        recent = self.steps.columns["tokens_per_s"].values()[-SPEED_WINDOW if self.close is None else 0:]
        recent = recent[np.isfinite(recent)]
        return float(np.median(recent)) if len(recent) else math.nan

    def config_value(self, section: str, key: str):
        cfg = (self.start or {}).get("config") or {}
        part = cfg.get(section) if isinstance(cfg, dict) else None
        return part.get(key) if isinstance(part, dict) else None

    def eta_s(self, window: int = 20) -> float:
        """Seconds to max_steps from the recent step rate; NaN when unknown."""
        steps, elapsed = self.steps["step"], self.steps["elapsed"]
        n = len(steps)
        if n < 2 or not self.max_steps:
            return math.nan
        i = max(0, n - 1 - window)
        ds, dt = steps[-1] - steps[i], elapsed[-1] - elapsed[i]
        if ds <= 0 or not math.isfinite(dt) or dt <= 0:
            return math.nan
        return max(0.0, (self.max_steps - steps[-1]) * dt / ds)

    # ------------------------------------------------------------------ events
    def note_bad_lines(self, count: int) -> None:
        """`count` lines of metrics.jsonl were not events (garbled, zeroed, cut in the middle)."""
        if count:
            self.problems.append(f"metrics.jsonl: {count} line(s) are not events (garbled or zeroed)")

    def _reject(self, ev: dict, why: str) -> str:
        self.bad_events += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(f"metrics.jsonl: a {quote(ev.get('event'))} event {why}")
        return ""

    def _problem(self, ev: dict) -> str | None:
        """Why `ev` cannot be folded in (a field the studio computes with has a bad type or range)."""
        kind = ev.get("event")
        if kind in ("step", "eval", "checkpoint") and step_of(ev.get("step")) is None:
            return f"has \"step\": {quote(ev.get('step'))}, not a whole number >= 0"
        if kind == "start":
            for key in ("start_step", "max_steps"):
                if ev.get(key) is not None and step_of(ev.get(key)) is None:
                    return f"has \"{key}\": {quote(ev.get(key))}, not a whole number >= 0"
            if ev.get("config") is not None and not isinstance(ev.get("config"), dict):
                return "has a \"config\" that is not an object"
        return None

    def apply(self, ev: dict) -> str:
        """Fold one event in; returns its type ('' when it changed nothing or was rejected)."""
        if not isinstance(ev, dict):
            return ""
        why = self._problem(ev)
        if why is not None:
            return self._reject(ev, why)
        kind = ev.get("event")
        t = as_float(ev.get("time"))
        if math.isfinite(t):
            self.first_time = t if self.first_time is None else self.first_time
            self.last_time = t
        if kind == "step":
            self._apply_step(ev)
        elif kind == "eval":
            self._apply_eval(ev)
        elif kind == "start":
            self._apply_start(ev)
        elif kind == "checkpoint":
            self.checkpoints.append(Checkpoint(step_of(ev.get("step")) or 0, str(ev.get("path", ""))))
        elif kind == "sample":
            self.samples.append(ev)
        elif kind == "log":
            self.logs.append(ev)
        elif kind in CLOSE_EVENTS:
            self.close = ev
        elif kind in ("attention", "progress"):
            pass
        else:
            self.unknown += 1
            return ""
        self.version += 1
        return str(kind)

    def _elapsed(self, ev: dict) -> float:
        raw = as_float(ev.get("elapsed_s"))
        if self._fix_elapsed:
            # After a resume the engine may restart its clock: continue from where the history ends.
            self._fix_elapsed = False
            self._elapsed_base = self.elapsed_s if raw < self.elapsed_s else 0.0
        return raw + self._elapsed_base

    def _apply_step(self, ev: dict) -> None:
        step = as_float(ev.get("step"))
        if len(self.steps) and step <= self.steps.columns["step"].last():
            # A resumed attempt repeats steps after its checkpoint: the newer values replace the old.
            self.steps.truncate(self.steps.rows_after(step - 1))
        self.steps.append(step=step, tokens=as_float(ev.get("tokens")), elapsed=self._elapsed(ev),
                          loss=as_float(ev.get("loss")), lr=as_float(ev.get("lr")),
                          grad_norm=as_float(ev.get("grad_norm")),
                          tokens_per_s=as_float(ev.get("tokens_per_s")),
                          clipped=1.0 if ev.get("clipped") else 0.0)

    def _apply_eval(self, ev: dict) -> None:
        step = as_float(ev.get("step"))
        if len(self.evals) and step <= self.evals.columns["step"].last():
            self.evals.truncate(self.evals.rows_after(step - 1))
            self._recompute_best()
        val = as_float(ev.get("val_loss"))
        self.evals.append(step=step, tokens=as_float(ev.get("tokens")), elapsed=self._elapsed(ev),
                          val_loss=val, train_loss=as_float(ev.get("train_loss")))
        if math.isfinite(val) and not (val >= self.best_val_loss):
            self.best_val_loss, self.best_val_step = val, int(step)

    def _recompute_best(self) -> None:
        vals = self.evals["val_loss"]
        finite = np.isfinite(vals)
        if finite.any():
            i = int(np.nanargmin(np.where(finite, vals, np.inf)))
            self.best_val_loss, self.best_val_step = float(vals[i]), int(self.evals["step"][i])
        else:
            self.best_val_loss, self.best_val_step = math.nan, -1

    def _apply_start(self, ev: dict) -> None:
        self.start = ev
        self.close = None
        self.starts += 1
        start_step = as_float(ev.get("start_step"))
        if ev.get("resumed") and math.isfinite(start_step):
            # Steps after the checkpoint we resume from belong to an abandoned attempt.
            self.steps.truncate(self.steps.rows_after(start_step))
            self.evals.truncate(self.evals.rows_after(start_step))
            self._recompute_best()
            self._fix_elapsed = True

    def apply_all(self, events: list[dict]) -> None:
        for ev in events:
            self.apply(ev)


def write_csv(history: RunHistory, path: str) -> None:
    """All step rows, with the evaluation at that step (if any) in extra columns."""
    evals = {int(s): (v, t) for s, v, t in zip(history.evals["step"].tolist(), history.evals["val_loss"].tolist(),
                                               history.evals["train_loss"].tolist(), strict=True)}
    cols = [history.steps[name].tolist() for name in STEP_COLUMNS]
    rows = [[*STEP_COLUMNS, "val_loss", "eval_train_loss"]]
    for row in zip(*cols, strict=True):
        val, train = evals.get(int(row[0]), ("", ""))
        rows.append([*("" if isinstance(x, float) and math.isnan(x) else f"{x:.6g}" for x in row),
                     "" if val == "" else f"{val:.6g}", "" if train == "" else f"{train:.6g}"])
    write_csv_rows(path, rows)


def write_csv_rows(path: str, rows: list[list]) -> None:
    """A CSV file written whole or not at all (OSError naming the file when it cannot be)."""
    import csv
    import io

    from core.layout import atomic_write

    buf = io.StringIO(newline="")
    csv.writer(buf).writerows(rows)
    atomic_write(path, buf.getvalue().encode("utf-8"))  # bytes: the "\r\n" rows stay as csv wrote them


def event_line(ev: dict) -> str | None:
    """A human console line for a notable event (None for the frequent ones, such as step)."""
    try:
        return _event_line(ev)
    except (TypeError, ValueError):  # odd field types from a newer or broken engine: no line
        return None


def _event_line(ev: dict) -> str | None:
    kind = ev.get("event")
    step = ev.get("step")
    if kind == "start":
        what = "resumed" if ev.get("resumed") else "started"
        return (f"[studio] run {what} at step {ev.get('start_step', 0)}: {_count(ev.get('params'))} parameters on "
                f"{ev.get('device', '?')} ({ev.get('precision', '?')}), world size {ev.get('world_size', 1)}"
                + (f" ({ev['backend']})" if ev.get("backend") else "")
                + (f"; precision: {ev['precision_reason']}" if ev.get("precision_reason") else ""))
    if kind == "eval":
        return (f"[studio] step {step}: val loss {as_float(ev.get('val_loss')):.4f}, train loss "
                f"{as_float(ev.get('train_loss')):.4f} (best {as_float(ev.get('best_val_loss')):.4f})")
    if kind == "checkpoint":
        return f"[studio] step {step}: checkpoint {ev.get('path', '')}"
    if kind == "sample":
        return f"[studio] step {step}: sample: {str(ev.get('text', ''))[:200]!r}"
    if kind == "log":
        return f"[{ev.get('level', 'info')}] {ev.get('message', '')}"
    if kind == "done":
        return (f"[studio] done at step {step}; best val loss {as_float(ev.get('best_val_loss')):.4f}"
                + (f" ({ev['reason']})" if ev.get("reason") else ""))
    if kind == "stopped":
        return f"[studio] stopped at step {step} ({ev.get('reason', '')}); checkpoint {ev.get('checkpoint', '')}"
    if kind == "error":
        return f"[error] {ev.get('kind', '')}: {ev.get('message', '')}"
    return None


def _count(n) -> str:
    return f"{n:,}" if isinstance(n, int) else "?"
