"""The YAML tab's pieces: the presets shipped in resources/presets, and syntax highlighting.

Editing config text (keeping comments and key order) is core.config_text's job, shared with the engine.
"""

from __future__ import annotations

import glob
import os
import re

from PySide6.QtGui import (
    QColor,
    QFont,
    QSyntaxHighlighter,
    QTextCharFormat,
)

from studio.engine.command import resources_dir


def presets_dir() -> str:
    """resources/presets next to the source tree (or inside the frozen bundle)."""
    return resources_dir("presets")


def list_presets() -> dict[str, str]:
    """{preset name: file path}, sorted by name."""
    return {os.path.splitext(os.path.basename(p))[0]: p
            for p in sorted(glob.glob(os.path.join(presets_dir(), "*.yaml")))}


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
