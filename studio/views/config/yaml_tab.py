"""Config YAML as text: presets, one-line patches that keep comments, key lookup, highlighting.

Pure text helpers for the config editor (the YAML text is the truth; the form patches single lines).
"""

from __future__ import annotations

import copy
import glob
import os
import re
from typing import Any

import yaml
from PySide6.QtGui import (
    QColor,
    QFont,
    QSyntaxHighlighter,
    QTextCharFormat,
)

from core.config import (
    Config,
)
from studio.engine.command import resources_dir


def presets_dir() -> str:
    """resources/presets next to the source tree (or inside the frozen bundle)."""
    return resources_dir("presets")


def list_presets() -> dict[str, str]:
    """{preset name: file path}, sorted by name."""
    return {os.path.splitext(os.path.basename(p))[0]: p
            for p in sorted(glob.glob(os.path.join(presets_dir(), "*.yaml")))}


# ------------------------------------------------------------------------------ YAML text helpers
def yaml_scalar(value: Any) -> str:
    """One value as a YAML 1.1 flow scalar that PyYAML reads back as the same value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = repr(value)
        if text in ("inf", "-inf", "nan"):
            return {"inf": ".inf", "-inf": "-.inf", "nan": ".nan"}[text]
        if "e" in text:  # PyYAML needs "1.0e-05", not "1e-05"
            mantissa, exponent = text.split("e")
            text = f"{mantissa if '.' in mantissa else mantissa + '.0'}e{int(exponent):+03d}"
        return text
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(yaml_scalar(v) for v in value) + "]"
    if isinstance(value, str) and ("\n" in value or "\t" in value or not value):
        return yaml.safe_dump(value, default_style='"', width=1 << 30).strip()
    text = yaml.safe_dump(value, width=1 << 30)
    return text.removesuffix("...\n").strip()


def _section_span(lines: list[str], section: str) -> tuple[int, int] | None:
    """(header line, end line) of a block-style `section:` mapping, or None."""
    header = re.compile(rf"^{re.escape(section)}\s*:\s*(#.*)?$")
    for i, line in enumerate(lines):
        if header.match(line.rstrip("\r\n")):
            end = i + 1
            while end < len(lines) and (not lines[end].strip() or lines[end][0] in " \t#"):
                end += 1
            return i, end
    return None


def find_key_line(text: str, path: str) -> int | None:
    """0-based line of `section:` / `  key:` for a dotted path, or None."""
    lines = text.splitlines(keepends=True)
    section, _, key = path.partition(".")
    span = _section_span(lines, section)
    if span is None or not key:
        return span[0] if span else None
    key_re = re.compile(rf"^\s+{re.escape(key)}\s*:")
    for i in range(span[0] + 1, span[1]):
        if key_re.match(lines[i]):
            return i
    return None


def patch_yaml(text: str, path: str, value: Any) -> str:
    """`text` with one `section.key` set to `value`, changing only that line when it safely can.

    Comments and key order survive. When the text uses a layout this does not understand (flow
    mappings, anchors), the whole document is re-dumped instead: the result always loads as the
    old data with the one value changed.
    """
    section, key = path.split(".", 1)
    raw = yaml.safe_load(text) or {}
    expected = copy.deepcopy(raw)
    if not isinstance(expected.get(section), dict):
        expected[section] = {}
    expected[section][key] = value
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    span = _section_span(lines, section)
    if span is None and section in raw:
        return dump_text(expected)  # a flow-style section: no line to patch
    if span is None:
        lines += ["\n" if lines and lines[-1].strip() else "", f"{section}:\n", f"  {key}: {yaml_scalar(value)}\n"]
    else:
        start, end = span
        line_no = find_key_line("".join(lines), path)
        if line_no is None:
            indent = next((re.match(r"^(\s+)", ln).group(1) for ln in lines[start + 1:end]
                           if ln.strip() and not ln.lstrip().startswith("#")), "  ")
            last = max([i for i in range(start, end) if lines[i].strip()] or [start])
            lines.insert(last + 1, f"{indent}{key}: {yaml_scalar(value)}\n")
        else:
            old = lines[line_no]
            indent = old[: len(old) - len(old.lstrip())]
            comment = re.search(r"\s+#[^'\"]*$", old.rstrip("\n"))
            tail = comment.group(0) if comment else ""
            stop = line_no + 1  # a block value (list, multi-line string) spans the lines below it
            while stop < end and _continues(lines[stop], len(indent)):
                stop += 1
            while stop > line_no + 1 and not lines[stop - 1].strip():
                stop -= 1
            lines[line_no:stop] = [f"{indent}{key}: {yaml_scalar(value)}{tail}\n"]
    new_text = "".join(lines)
    try:
        if yaml.safe_load(new_text) == expected:
            return new_text
    except yaml.YAMLError:
        pass
    return dump_text(expected)


def _continues(line: str, key_indent: int) -> bool:
    """Whether a line still belongs to the block value of a key indented by key_indent."""
    stripped = line.lstrip()
    indent = len(line) - len(stripped)
    return not stripped or indent > key_indent or (indent == key_indent and stripped.startswith("- "))


def dump_text(data: Config | dict) -> str:
    """Config data as block-style YAML, one `key: value` line per field (lists inline)."""
    data = data.to_dict() if isinstance(data, Config) else data
    if not all(isinstance(v, dict) for v in data.values()):
        return yaml.safe_dump(data, sort_keys=False)
    out = []
    for section, values in data.items():
        out.append(f"{yaml_scalar(section)}:\n")
        out += [f"  {yaml_scalar(key)}: {yaml_scalar(value)}\n" for key, value in values.items()]
    text = "".join(out)
    return text if yaml.safe_load(text) == data else yaml.safe_dump(data, sort_keys=False)


class YamlHighlighter(QSyntaxHighlighter):
    """Keys, comments, numbers and booleans in colour: enough to read a config at a glance."""

    # (pattern, colour on a light background, colour on a dark one, bold)
    RULES = [(r"^\s*[\w.-]+(?=\s*:)", "#1f5f99", "#7fb3e6", True),
             (r"(?<=:\s)\s*[-+]?[\d._]+(e[-+]?\d+)?\s*$", "#8e44ad", "#c39bd3", False),
             (r"(?<=:\s)\s*(true|false|null|~)\s*$", "#b9770e", "#f0b27a", False), (r"#.*$", "#7f8c8d", "#95a5a6", False)]

    def __init__(self, document) -> None:
        super().__init__(document)
        self._rules: list = []
        self.set_dark(False)

    def set_dark(self, dark: bool) -> None:
        """Pick the colour set for the editor's background (the studio has a dark theme)."""
        self._rules = []
        for pattern, light, dark_colour, bold in self.RULES:
            fmt = QTextCharFormat()
            fmt.setForeground(QColor(dark_colour if dark else light))
            if bold:
                fmt.setFontWeight(QFont.Weight.DemiBold)
            self._rules.append((re.compile(pattern, re.IGNORECASE), fmt))
        self.rehighlight()

    def highlightBlock(self, text: str) -> None:  # noqa: N802 (Qt override)
        for pattern, fmt in self._rules:
            for m in pattern.finditer(text):
                self.setFormat(m.start(), m.end() - m.start(), fmt)


# ------------------------------------------------------------------------------ estimates
