"""ConfigEditor: edit a run config as a form or as YAML, validated as you type, with live estimates.

The YAML text is the truth. A form edit patches the one line it changes (comments and order survive);
a YAML edit updates the form after a 300 ms pause; YAML that does not parse shows the parser's message
and leaves the form as it was (disabled until the text parses again). Every change runs the engine's
own validation (core.config) and flags the offending fields in both views.
"""

from __future__ import annotations

import copy
import glob
import os
import re
import sys
from typing import Any

import yaml
from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontDatabase,
    QPainter,
    QPalette,
    QSyntaxHighlighter,
    QTextCharFormat,
    QTextCursor,
    QTextFormat,
)
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from core.config import (
    Config,
    ConfigError,
    Problem,
    data_vocab_size,
    estimate,
    human_bytes,
    human_count,
    loads,
)
from studio.views.config_form import ConfigForm

DEBOUNCE_MS = 300


def presets_dir() -> str:
    """resources/presets next to the source tree (or inside the frozen bundle)."""
    root = getattr(sys, "_MEIPASS", None) or os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    return os.path.join(root, "resources", "presets")


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
MEMORY_PARTS = (("weights", "#2e86c1"), ("grads", "#28b463"), ("optimizer", "#d68910"),
                ("activations", "#8e44ad"))


class MemoryBar(QWidget):
    """A stacked bar of memory by component (weights, grads, optimizer, activations)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.parts: dict[str, float] = {}
        self.setMinimumHeight(14)
        self.setMaximumHeight(14)

    def set_parts(self, parts: dict[str, float]) -> None:
        self.parts = parts
        self.update()

    def paintEvent(self, _event) -> None:  # noqa: N802 (Qt override)
        painter = QPainter(self)
        rect = self.rect().adjusted(0, 0, -1, -1)
        painter.fillRect(rect, self.palette().color(QPalette.ColorRole.Mid))
        total = sum(self.parts.get(name, 0) for name, _ in MEMORY_PARTS)
        x = float(rect.left())
        for name, colour in MEMORY_PARTS:
            width = rect.width() * self.parts.get(name, 0) / total if total else 0
            painter.fillRect(int(x), rect.top(), max(0, round(x + width) - int(x)), rect.height() + 1,
                             QColor(colour if self.isEnabled() else "#b3b6b7"))
            x += width
        painter.end()


class EstimatesPanel(QFrame):
    """Parameter count, tokens per step, FLOPs and memory for the current (valid) config."""

    ROWS = (("params", "Parameters"), ("params_non_embedding", "  non-embedding"), ("vocab", "Vocabulary"),
            ("tokens_per_step", "Tokens / step"), ("flops_per_token", "FLOPs / token"),
            ("flops_per_step", "FLOPs / step"), ("precision", "Precision"), ("weights", "Weights"),
            ("grads", "Gradients"), ("optimizer", "AdamW state"), ("activations", "Activations"),
            ("total", "Memory total"))

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("estimates")
        self.setStyleSheet("#estimates { background: palette(alternate-base); border: 1px solid palette(mid); "
                           "border-radius: 4px; }"
                           " QLabel { background: transparent; }")
        grid = QGridLayout(self)
        grid.setContentsMargins(12, 10, 12, 10)
        grid.setVerticalSpacing(4)
        title = QLabel("Estimates")
        title.setStyleSheet("font-weight: 600; font-size: 11pt;")
        grid.addWidget(title, 0, 0, 1, 2)
        self.values: dict[str, QLabel] = {}
        colours = dict(MEMORY_PARTS)
        row = 1
        for key, text in self.ROWS:
            if key == "weights":
                head = QLabel("Memory (training, per process)")
                head.setStyleSheet("font-weight: 600; margin-top: 8px;")
                grid.addWidget(head, row, 0, 1, 2)
                self.bar = MemoryBar()
                grid.addWidget(self.bar, row + 1, 0, 1, 2)
                row += 2
            label = QLabel(text)
            if key in colours:
                label.setText(f"<span style='color:{colours[key]}'>■</span> {text}")
            value = QLabel("—")
            value.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            if key in ("params", "total"):
                value.setStyleSheet("font-weight: 600;")
            grid.addWidget(label, row, 0)
            grid.addWidget(value, row, 1)
            self.values[key] = value
            row += 1
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: palette(placeholder-text); margin-top: 8px;")
        grid.addWidget(self.note, row, 0, 1, 2)
        grid.setRowStretch(row + 1, 1)

    def show_estimate(self, est: dict, vocab_source: str) -> None:
        mem = est["memory"]
        self.values["params"].setToolTip(f"{est['params']:,} parameters")
        self.values["vocab"].setToolTip(vocab_source)
        text = {"params": human_count(est["params"]),
                "params_non_embedding": human_count(est["params_non_embedding"]),
                "vocab": f"{est['vocab_size']:,}" + (" (data)" if vocab_source == "(from data)" else ""),
                "tokens_per_step": f"{est['tokens_per_step']:,}",
                "flops_per_token": human_count(est["flops_per_token"]),
                "flops_per_step": human_count(est["flops_per_step"]),
                "precision": est["precision"]}
        text.update({k: human_bytes(mem[k]) for k in ("weights", "grads", "optimizer", "activations", "total")})
        for key, label in self.values.items():
            label.setText(text[key])
        self.bar.set_parts({k: float(mem[k]) for k, _ in MEMORY_PARTS})
        self.setEnabled(True)
        self.note.setText(f"Vocabulary {vocab_source}. Analytic: AdamW with fp32 master weights, "
                          "activations without recomputation.")

    def show_stale(self, reason: str) -> None:
        """Keep the last numbers, greyed, while the config is invalid."""
        self.setEnabled(False)
        self.note.setText(f"Showing the last valid config: {reason}")


# ------------------------------------------------------------------------------ the editor
class ConfigEditor(QWidget):
    """A run config as form + YAML, validated by core.config on every change, with estimates.

    Signals: `changed()` after every change of the text (form edit, YAML edit after the pause,
    set_text, load_file, a preset); `validity_changed(valid, message)` after every validation, the
    message naming the field(s) ("model.n_embd: 100 is not divisible by model.n_head=3") or "valid".
    """

    changed = Signal()
    validity_changed = Signal(bool, str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._base_dir = os.getcwd()
        self._config: Config | None = None
        self._problems: list[Problem] = []
        self._estimate: dict | None = None
        self._setting_text = False
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(DEBOUNCE_MS)
        self._debounce.timeout.connect(self._on_debounce_timeout)

        self.preset_combo = QComboBox()
        self.preset_combo.setMinimumContentsLength(14)
        self.preset_combo.addItem("Load a preset…", "")
        for name, path in list_presets().items():
            self.preset_combo.addItem(name, path)
        self.preset_combo.activated.connect(self._on_preset_combo_activated)
        self.status = QLabel()
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        top = QHBoxLayout()
        top.addWidget(QLabel("Preset"))
        top.addWidget(self.preset_combo)
        top.addStretch(1)
        top.addWidget(self.status)

        self.form = ConfigForm()
        self.form.value_edited.connect(self._on_form_value_edited)
        self.form.local_problems_changed.connect(self._on_form_local_problems_changed)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(self.form)
        self.yaml_edit = QPlainTextEdit()
        self.yaml_edit.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.yaml_edit.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.yaml_edit.setTabStopDistance(16)
        self._highlighter = YamlHighlighter(self.yaml_edit.document())
        self._highlighter.set_dark(self.palette().color(QPalette.ColorRole.Base).lightness() < 128)
        self.yaml_edit.textChanged.connect(self._on_yaml_edit_text_changed)
        self.tabs = QTabWidget()
        self.tabs.addTab(scroll, "Form")
        self.tabs.addTab(self.yaml_edit, "YAML")
        self.estimates = EstimatesPanel()
        self.estimates.setMinimumWidth(250)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.tabs)
        split.addWidget(self.estimates)
        split.setStretchFactor(0, 1)
        split.setSizes([700, 260])
        self.problems_label = QLabel()
        self.problems_label.setWordWrap(True)
        self.problems_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.problems_label.setStyleSheet("QLabel { color: #922b21; background: #fdecea; border: 1px solid "
                                          "#e6b0aa; border-radius: 3px; padding: 6px; }")
        self.problems_label.hide()
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(split, 1)
        lay.addWidget(self.problems_label)
        self.set_text(dump_text(Config()))

    # ------------------------------------------------------------------ public API
    def set_base_dir(self, path: str) -> None:
        """Folder that relative paths (data.dir, run.dir) resolve against; re-validates."""
        self._base_dir = os.path.abspath(path)
        self.form.set_base_dir(self._base_dir)
        self._apply_text(self.text())

    def base_dir(self) -> str:
        return self._base_dir

    def set_text(self, text: str) -> None:
        """Replace the YAML; the form and validation follow at once."""
        self._debounce.stop()
        self._replace_yaml_text(text)
        self._apply_text(text)
        self.changed.emit()

    def text(self) -> str:
        return self.yaml_edit.toPlainText()

    def load_file(self, path: str) -> None:
        """Read a YAML file; its folder becomes the base folder. OSError propagates."""
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        self._base_dir = os.path.dirname(os.path.abspath(path))
        self.form.set_base_dir(self._base_dir)
        self.set_text(text)

    def save(self, path: str) -> None:
        """Write the YAML text as it is (comments kept), atomically; its folder becomes the base folder."""
        self._flush_pending_edit()
        path = os.path.abspath(path)
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(self.text())
        os.replace(tmp, path)
        if os.path.dirname(path) != self._base_dir:
            self.set_base_dir(os.path.dirname(path))

    def config(self) -> Config | None:
        """The validated config, paths resolved against the base folder; None while invalid."""
        self._flush_pending_edit()
        return self._config

    def problems(self) -> list[Problem]:
        self._flush_pending_edit()
        return list(self._problems)

    def last_estimate(self) -> dict | None:
        """core.config.estimate() of the last valid config (kept while the config is invalid)."""
        return self._estimate

    def load_preset(self, name: str) -> None:
        self.load_preset_file(list_presets()[name])

    def load_preset_file(self, path: str) -> None:
        """A preset's text replaces the config; the base folder stays (presets' paths are workspace-relative)."""
        with open(path, encoding="utf-8") as fh:
            self.set_text(fh.read())

    # ------------------------------------------------------------------ internals
    def _replace_yaml_text(self, text: str) -> None:
        """Set the YAML view's text as one undoable edit, keeping the scroll position."""
        if text == self.yaml_edit.toPlainText():
            return
        scroll = self.yaml_edit.verticalScrollBar().value()
        self._setting_text = True
        try:
            cursor = QTextCursor(self.yaml_edit.document())
            cursor.select(QTextCursor.SelectionType.Document)
            cursor.insertText(text)
        finally:
            self._setting_text = False
        self.yaml_edit.verticalScrollBar().setValue(scroll)

    def _flush_pending_edit(self) -> None:
        if self._debounce.isActive():
            self._debounce.stop()
            self._apply_text(self.text())
            self.changed.emit()

    def _apply_text(self, text: str) -> None:
        """Parse the YAML: show it in the form (when it parses), then validate."""
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            self.form.setEnabled(False)
            self._validate(text, parse_error=f"invalid YAML: {exc}")
            return
        if raw is not None and not isinstance(raw, dict):
            self.form.setEnabled(False)
            self._validate(text, parse_error=f"expected a mapping of sections, got {type(raw).__name__}")
            return
        self.form.setEnabled(True)
        self.form.set_values(raw or {})
        self._validate(text)

    def _validate(self, text: str, parse_error: str | None = None) -> None:
        problems: list[Problem] = []
        config = None
        if parse_error:
            problems.append(Problem("", " ".join(parse_error.split())))
        else:
            try:
                config = loads(text, base_dir=self._base_dir)
            except ConfigError as exc:
                problems = list(exc.problems)
            problems += self.form.local_problems()
            if problems:
                config = None
        self._config, self._problems = config, problems
        self.form.set_problems(problems)
        self._mark_yaml_lines(text, problems)
        if config is not None:
            vocab, source = _vocab_for(config)
            self._estimate = estimate(config, vocab)
            self.estimates.show_estimate(self._estimate, source)
            self.form.set_vocab_hint(f"from data ({vocab:,})" if source == "(from data)" else
                                     "from data (no meta.json yet)")
            message = "valid"
            self.status.setText("<span style='color:#27ae60'>✔ valid</span>")
            self.problems_label.hide()
        else:
            message = "; ".join(p.message for p in problems)
            count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
            self.status.setText(f"<span style='color:#d0473a'>✖ {count}</span>")
            self.problems_label.setText("\n".join(p.message for p in problems))
            self.problems_label.show()
            self.estimates.show_stale(count)
        self.validity_changed.emit(config is not None, message)

    def _mark_yaml_lines(self, text: str, problems: list[Problem]) -> None:
        """Red background on the YAML lines the problems point at (the parser's line for bad YAML)."""
        lines = set()
        for p in problems:
            line = find_key_line(text, p.path) if p.path else None
            m = re.search(r"line (\d+)", p.message) if line is None and not p.path else None
            if m:
                line = int(m.group(1)) - 1
            if line is not None:
                lines.add(line)
        selections = []
        doc = self.yaml_edit.document()
        for line in sorted(lines):
            block = doc.findBlockByNumber(line)
            if not block.isValid():
                continue
            sel = QTextEdit.ExtraSelection()
            sel.format.setBackground(QColor(231, 76, 60, 70))
            sel.format.setProperty(QTextFormat.Property.FullWidthSelection, True)
            sel.cursor = QTextCursor(block)
            selections.append(sel)
        self.yaml_edit.setExtraSelections(selections)

    # ------------------------------------------------------------------ slots
    def _on_yaml_edit_text_changed(self) -> None:
        if not self._setting_text:
            self._debounce.start()

    def _on_debounce_timeout(self) -> None:
        self._apply_text(self.text())
        self.changed.emit()

    def _on_form_value_edited(self, path: str, value: Any) -> None:
        self._flush_pending_edit()
        text = patch_yaml(self.text(), path, value)
        self._replace_yaml_text(text)
        self._validate(text)
        self.changed.emit()

    def _on_form_local_problems_changed(self) -> None:
        if self.form.isEnabled():
            self._validate(self.text())

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 (Qt override)
        if event.type() == QEvent.Type.PaletteChange and hasattr(self, "_highlighter"):
            self._highlighter.set_dark(self.palette().color(QPalette.ColorRole.Base).lightness() < 128)
        super().changeEvent(event)

    def _on_preset_combo_activated(self, index: int) -> None:
        path = self.preset_combo.itemData(index)
        if path:
            self.load_preset_file(path)


def _vocab_for(config: Config) -> tuple[int, str]:
    if config.model.vocab_size:
        return config.model.vocab_size, "(from model.vocab_size)"
    from_data = data_vocab_size(config.data.dir)
    if from_data:
        return from_data, "(from data)"
    return 50304, "(a default: data.dir has no meta.json yet)"
