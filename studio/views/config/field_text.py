"""Text of the config form's fields, in plain Python: what an empty field means (from the field's doc), floats
shown short and exact, and one-line strings with newline and tab escaped."""

from __future__ import annotations

import math


def empty_meaning(doc: str) -> str:
    """"n_head" from a field doc's "...; empty = n_head (plain ...)." - short enough for a placeholder."""
    at = doc.find("empty = ")
    if at < 0:
        return ""
    text = doc[at + len("empty = "):]
    for stop in (" (", ";", ". ", ","):
        text = text.split(stop, 1)[0]
    return text.rstrip(".").strip()


def format_float(value: float) -> str:
    """Short, exact display of a float: 0.0003, 1e-5, 4.0, 6e+20."""
    value = float(value)
    if not math.isfinite(value):
        return str(value)
    text = repr(value)
    if "e" in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa.removesuffix('.0')}e{int(exponent)}"
    return text


def parse_float(text: str) -> float | None:
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def escape_text(text: str) -> str:
    """One-line display of a string: newline and tab as \\n and \\t (a backslash doubled)."""
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")


def unescape_text(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append({"n": "\n", "t": "\t", "\\": "\\"}.get(text[i + 1], "\\" + text[i + 1]))
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)
