"""The comparison table of several runs: one row per run, every hyper-parameter of its config, its final
and best metrics and the figures of its latest checkpoint's saved evaluations (studio.workspace.evaluations)
as columns; 'differences only' keeps the columns whose values are not all equal.

Qt-free (the view in studio/views/runs/compare.py only shows what this builds), exportable to CSV.
"""

from __future__ import annotations

import dataclasses
import math
import os

from studio.workspace.evaluations import COMPARE_COLUMNS, run_figures
from studio.workspace.metrics import RunHistory, write_csv_rows
from studio.workspace.run import Run, format_duration

METRICS = ("status", "step", "tokens", "final_train_loss", "final_val_loss", "best_val_loss", "best_val_step",
           "tokens_per_s", "elapsed_s")
SKIPPED = {"run.dir"}  # always the run's own folder: a difference that says nothing


@dataclasses.dataclass
class CompareTable:
    columns: list[str]               # "run", the metrics, then "section.key" of the config
    rows: list[list]                 # one per run, values as numbers, strings or None (unknown)
    config_columns: list[str]

    def differences_only(self) -> CompareTable:
        """The run column and every column whose values are not all the same."""
        keep = [0] + [i for i in range(1, len(self.columns))
                      if len({_key(row[i]) for row in self.rows}) > 1]
        return CompareTable([self.columns[i] for i in keep], [[row[i] for i in keep] for row in self.rows],
                            [c for c in self.config_columns if c in {self.columns[i] for i in keep}])

    def write_csv(self, path: str) -> None:
        write_csv_rows(path, [self.columns, *(["" if v is None else format_value(v) for v in row]
                                             for row in self.rows)])


def _key(value):
    return "nan" if isinstance(value, float) and math.isnan(value) else repr(value)


def format_value(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "–" if not math.isfinite(value) else f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


def display_value(column: str, value) -> str:
    """The comparison table's text for a value of `column`: counts with thousands separators, losses to four
    decimals (as the runs list), the time as "1m 23s", an unknown metric as "–" ("1024000", "82.5506" and
    a blank best_val_step beside "–" read poorly). The CSV keeps the figures (format_value)."""
    if column in METRICS or column in COMPARE_COLUMNS:
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            return "–"
        if column in ("tokens", "tokens_per_s"):
            return f"{value:,.0f}"
        if column == "elapsed_s":
            return format_duration(value)
        if column.endswith("_loss"):
            return f"{value:.4f}"
    return format_value(value)


def config_values(run: Run) -> dict:
    """'section.key' -> value of the run's validated config (paths shown relative to its runs folder)."""
    cfg = run.config_or_none()
    if cfg is None:
        return {}
    out = {}
    for section, values in dataclasses.asdict(cfg).items():
        if not isinstance(values, dict):
            out[section] = values
            continue
        for key, value in values.items():
            name = f"{section}.{key}"
            if name in SKIPPED:
                continue
            if isinstance(value, str) and os.path.isabs(value):
                value = os.path.relpath(value, os.path.dirname(run.dir))
            out[name] = value
    return out


def metric_values(history: RunHistory, status: str) -> dict:
    def last(table, column):
        return table.columns[column].last() if len(table) else math.nan

    return {"status": status, "step": history.step, "tokens": int(last(history.steps, "tokens"))
            if len(history.steps) else 0, "final_train_loss": last(history.steps, "loss"),
            "final_val_loss": last(history.evals, "val_loss"), "best_val_loss": history.best_val_loss,
            "best_val_step": history.best_val_step if history.best_val_step >= 0 else None,
            "tokens_per_s": history.tokens_per_s, "elapsed_s": history.elapsed_s if len(history.steps) else math.nan}


def compare_runs(runs: list[tuple[Run, RunHistory, str]]) -> CompareTable:
    """The table of `runs` given as (run, its history, its status)."""
    configs = [config_values(run) for run, _h, _s in runs]
    config_columns = sorted({k for c in configs for k in c})
    columns = ["run", *METRICS, *COMPARE_COLUMNS, *config_columns]
    rows = []
    for (run, history, status), cfg in zip(runs, configs, strict=True):
        metrics = {**metric_values(history, status), **run_figures(run.dir)}
        rows.append([run.name, *(metrics[m] for m in (*METRICS, *COMPARE_COLUMNS)),
                     *(cfg.get(c) for c in config_columns)])
    return CompareTable(columns, rows, config_columns)
