"""Typed reads of what a run folder holds: every value the studio takes from a file goes through here.

A run folder is written by other processes and may be damaged (a disk filled up, a file was truncated,
zeroed or edited by hand). Nothing read from it may crash the studio. The getters return the value when
it has the expected type and range, else None (or {} for a file), and add a sentence naming the file,
the field and what is wrong to a `problems` list; the studio shows those sentences and marks the run
"damaged". A missing file is not a problem (absence is normal for status files). Pure Python, no Qt.
"""

from __future__ import annotations

import json
import math
import os

MAX_STATUS_BYTES = 1 << 20   # launcher.json, run.json, ...: a few hundred bytes when sane
MAX_TEXT_BYTES = 4 << 20     # config.yaml
QUOTE_CHARS = 60             # of a rejected value, in a message


def quote(value: object) -> str:
    """A rejected value for a message, capped (a damaged file may hold megabytes)."""
    text = repr(value)
    return text if len(text) <= QUOTE_CHARS else text[:QUOTE_CHARS] + "…"


def _where(path: str) -> str:
    """'run.json' or 'checkpoints/step-000050/meta.json': short enough for a tooltip."""
    parts = os.path.normpath(path).split(os.sep)
    return "/".join(parts[-3:]) if len(parts) >= 3 and parts[-3] == "checkpoints" else parts[-1]


def read_object(path: str, problems: list[str]) -> dict:
    """The JSON object in `path`; {} when it is missing (no problem) or damaged (a problem)."""
    name = _where(path)
    if not os.path.lexists(path):
        return {}
    try:
        if os.path.getsize(path) > MAX_STATUS_BYTES:
            problems.append(f"{name}: too large ({os.path.getsize(path)} bytes) to be a status file")
            return {}
        with open(path, "rb") as fh:
            raw = fh.read()
    except IsADirectoryError:
        problems.append(f"{name}: is a folder, not a file")
        return {}
    except OSError as exc:
        problems.append(f"{name}: cannot be read ({exc.strerror or exc})")
        return {}
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        problems.append(f"{name}: not UTF-8 text")
        return {}
    except (ValueError, RecursionError):
        problems.append(f"{name}: not valid JSON" + (" (empty)" if not raw.strip() else ""))
        return {}
    if not isinstance(data, dict):
        problems.append(f"{name}: not a JSON object")
        return {}
    return data


def read_text(path: str, problems: list[str]) -> str | None:
    """A UTF-8 text file; None when missing (no problem) or damaged (a problem)."""
    name = _where(path)
    if not os.path.lexists(path):
        return None
    try:
        size = os.path.getsize(path)
        if size > MAX_TEXT_BYTES:
            problems.append(f"{name}: too large ({size} bytes)")
            return None
        with open(path, "rb") as fh:
            raw = fh.read()
    except IsADirectoryError:
        problems.append(f"{name}: is a folder, not a file")
        return None
    except OSError as exc:
        problems.append(f"{name}: cannot be read ({exc.strerror or exc})")
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        problems.append(f"{name}: not UTF-8 text (byte {exc.start})")
        return None
    if "\0" in text:
        problems.append(f"{name}: holds NUL bytes (zeroed or binary)")
        return None
    return text


def file_problem(path: str) -> str | None:
    """Why a file another process appends to (metrics.jsonl, engine.log) cannot be read, if it cannot."""
    if os.path.isdir(path):
        return f"{_where(path)}: is a folder, not a file"
    if os.path.lexists(path) and not os.access(path, os.R_OK):
        return f"{_where(path)}: cannot be read"
    return None


def get_int(data: dict, key: str, problems: list[str], where: str, lo: int = 0,
            hi: int = 1 << 62) -> int | None:
    """data[key] as an int in [lo, hi] (a float holding a whole number is accepted); None when absent
    (no problem) or invalid (a problem)."""
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        problems.append(f"{where}: \"{key}\" is {quote(value)}, not a whole number in {lo}..{hi}")
        return None
    return value


def get_float(data: dict, key: str, problems: list[str], where: str) -> float | None:
    """data[key] as a finite number; None when absent (no problem) or invalid (a problem)."""
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        problems.append(f"{where}: \"{key}\" is {quote(value)}, not a finite number")
        return None
    return float(value)


def get_str(data: dict, key: str, problems: list[str], where: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        problems.append(f"{where}: \"{key}\" is {quote(value)}, not text")
        return None
    return value


def get_str_list(data: dict, key: str, problems: list[str], where: str) -> list[str] | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(f"{where}: \"{key}\" is {quote(value)}, not a list of strings")
        return None
    return value


def step_of(value: object) -> int | None:
    """An event's step as a non-negative int ("nan", 1e999, [1], true: None)."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1 << 62:
        return None
    return value
