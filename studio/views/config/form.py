"""ConfigForm: the run config as a form, generated from the config dataclasses' field metadata.

One group box per section (model, data, train, run); one editor per field, picked by type: spin boxes
for ints, line edits that read scientific notation for floats, check boxes, combo boxes for `choices`,
a line edit plus "browse" for paths, two number fields for the betas. Tooltips come from the field docs.

The form shows plain YAML data (`set_values`) and reports user edits (`value_edited`); it never
validates on its own beyond "this text is not a number" (`local_problems`). The YAML text stays the
truth: values the widgets cannot hold (0 where the minimum is 1, a string where a number belongs) are
still shown, or at least flagged, never silently clamped.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from core.config import SECTIONS, Problem, field_docs
from core.errors import quote
from studio.views.common.wheel_guard import guard_wheel
from studio.views.common.wrap_row import WrapRow
from studio.views.config.field_text import (
    empty_meaning,
    escape_text,
    format_float,
    parse_float,
    unescape_text,
)

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
SECTION_TITLES = {"model": "Model", "data": "Data", "train": "Training", "run": "Run"}

GROUP_STYLE = """
QGroupBox { border: 1px solid palette(mid); border-radius: 4px; margin-top: 1.1em; padding-top: 6px; }
QGroupBox::title { subcontrol-origin: margin; left: 8px; padding: 0 4px; color: palette(highlight); }
"""
PROBLEM_STYLE = GROUP_STYLE + """
QGroupBox[problem="true"] { border: 1px solid #c0392b; }
QLineEdit[problem="true"] { border: 1px solid #c0392b; border-radius: 2px; background: rgba(231, 76, 60, 50);
  padding: 2px; }
QAbstractSpinBox[problem="true"], QComboBox[problem="true"], QCheckBox[problem="true"] {
  background-color: rgba(231, 76, 60, 70); }
QLabel[role="field-error"] { color: #d0473a; }
"""


def set_problem_flag(widget: QWidget, on: bool) -> None:
    """Mark a widget for the `[problem="true"]` style rule (re-polished so the change shows)."""
    if bool(widget.property("problem")) == on:
        return
    widget.setProperty("problem", on)
    widget.style().unpolish(widget)
    widget.style().polish(widget)
    widget.update()


class _SpinBox(QSpinBox):
    """A spin box that ignores the mouse wheel unless focused (scrolling the form must not edit it)."""

    def wheelEvent(self, event) -> None:  # noqa: N802 (Qt override)
        if self.hasFocus():
            super().wheelEvent(event)
        else:
            event.ignore()


class FieldEditor(QWidget):
    """One field's editor plus the error line under it. Subclasses build `self.input`."""

    edited = Signal(object)            # the new value, already parsed
    rejected = Signal(str)             # "not a number" and friends ("" = fine again)

    def __init__(self, path: str, info: dict, parent: QWidget | None = None):
        super().__init__(parent)
        self.path, self.info = path, info
        self._showing = False
        self.input = self._build()
        self.error = QLabel()
        self.error.setProperty("role", "field-error")
        self.error.setWordWrap(True)
        self.error.hide()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        lay.addWidget(self.input)
        lay.addWidget(self.error)

    def _build(self) -> QWidget:
        raise NotImplementedError

    def show_value(self, value: Any) -> None:
        """Display a value from YAML without emitting `edited`."""
        self._showing = True
        try:
            self._show(value)
        finally:
            self._showing = False

    def _show(self, value: Any) -> None:
        raise NotImplementedError

    def _emit(self, value: Any) -> None:
        if not self._showing:
            self.edited.emit(value)

    def set_problem(self, message: str) -> None:
        set_problem_flag(self.input, bool(message))
        self.error.setText(message)
        self.error.setVisible(bool(message))


class IntEditor(FieldEditor):
    def _build(self) -> QWidget:
        box = _SpinBox()
        box.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        box.setGroupSeparatorShown(not self.path.endswith("seed"))
        self._lo = int(self.info.get("min", INT32_MIN))
        self._hi = int(min(self.info.get("max", INT32_MAX), INT32_MAX))
        box.setRange(self._lo, self._hi)
        box.valueChanged.connect(self._on_box_value_changed)
        return box

    def _show(self, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not INT32_MIN <= value <= INT32_MAX:
            return  # not displayable: the validation message says what YAML holds
        # Widen the range so an out-of-range value from YAML shows as it is (and gets flagged).
        self.input.setRange(min(self._lo, value), max(self._hi, value))
        self.input.setValue(value)

    def _on_box_value_changed(self, value: int) -> None:
        self._emit(int(value))


class FloatEditor(FieldEditor):
    """A line edit that reads 3e-4, 0.0003 or 1e-5 and shows what YAML holds, even if it is not a number."""

    def _build(self) -> QWidget:
        edit = QLineEdit()
        edit.textEdited.connect(self._on_edit_text_edited)
        return edit

    def _show(self, value: Any) -> None:
        is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
        self.input.setText(format_float(value) if is_number else "" if value is None else str(value))

    def _on_edit_text_edited(self, text: str) -> None:
        value = parse_float(text)
        if value is None:
            self.rejected.emit(f"{self.path}: {quote(text)} is not a number")
            return
        self.rejected.emit("")
        self._emit(value)


class BoolEditor(FieldEditor):
    def _build(self) -> QWidget:
        box = QCheckBox()
        box.toggled.connect(self._emit)
        return box

    def _show(self, value: Any) -> None:
        if isinstance(value, bool):
            self.input.setChecked(value)


class ChoiceEditor(FieldEditor):
    def _build(self) -> QWidget:
        combo = QComboBox()
        combo.addItems(list(self.info["choices"]))
        combo.currentTextChanged.connect(self._on_combo_text_changed)
        return combo

    def _show(self, value: Any) -> None:
        combo, choices = self.input, list(self.info["choices"])
        while combo.count() > len(choices):  # drop an earlier out-of-list value
            combo.removeItem(combo.count() - 1)
        text = str(value)
        if text not in choices:
            combo.addItem(text)  # show what YAML says; validation flags it
        combo.setCurrentText(text)

    def _on_combo_text_changed(self, text: str) -> None:
        if text in self.info["choices"]:
            self._emit(text)


class TextEditor(FieldEditor):
    """str or str|None (empty = None); newlines shown as \\n so one line can hold them."""

    def _build(self) -> QWidget:
        edit = QLineEdit()
        self.optional = self.info["type"].endswith("|None")
        empty = empty_meaning(self.info.get("doc", ""))  # what leaving the field empty does, from its doc
        if empty or self.optional:
            edit.setPlaceholderText(f"empty = {empty or 'none'}")
        edit.textEdited.connect(self._on_edit_text_edited)
        return edit

    def line_edit(self) -> QLineEdit:
        return self.input

    def _show(self, value: Any) -> None:
        self.line_edit().setText("" if value is None else escape_text(str(value)))
        self.line_edit().setCursorPosition(0)  # long text shows its beginning
        self.line_edit().setToolTip(self.line_edit().text())  # and all of it on hover

    def _on_edit_text_edited(self, text: str) -> None:
        self._emit(None if self.optional and not text else unescape_text(text))


class PathEditor(TextEditor):
    """A path: line edit plus a browse button; a picked folder inside the base folder is made relative."""

    base_dir: Callable[[], str] = staticmethod(os.getcwd)

    def _build(self) -> QWidget:
        box = QWidget()
        lay = QHBoxLayout(box)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(4)
        self._edit = super()._build()
        self.browse = QToolButton()
        self.browse.setText("…")  # compact, like the checkpoint pickers': the path gets the width
        self.browse.setToolTip(f"Browse: pick the folder for {self.path}")
        self.browse.setAccessibleName("Browse")
        self.browse.clicked.connect(self._on_browse_clicked)
        lay.addWidget(self._edit, 1)
        lay.addWidget(self.browse)
        return box

    def line_edit(self) -> QLineEdit:
        return self._edit

    def set_problem(self, message: str) -> None:
        super().set_problem(message)
        set_problem_flag(self._edit, bool(message))
        set_problem_flag(self.input, False)

    def _on_browse_clicked(self) -> None:
        base = self.base_dir()
        current = os.path.join(base, self._edit.text()) if self._edit.text() else base
        picked = QFileDialog.getExistingDirectory(self, f"Choose {self.path}", current)
        if not picked:
            return
        rel = os.path.relpath(picked, base)
        text = picked if rel.startswith("..") and rel.count("..") > 2 else rel
        self._edit.setText(text)
        self._emit(text)


class BetasEditor(FieldEditor):
    """AdamW (beta1, beta2) as two number fields."""

    def _build(self) -> QWidget:
        box = QWidget()
        lay = QHBoxLayout(box)
        lay.setContentsMargins(0, 0, 0, 0)
        self.edits = []
        for name in ("beta1", "beta2"):
            edit = QLineEdit()
            edit.setToolTip(name)
            edit.textEdited.connect(self._on_edit_text_edited)
            lay.addWidget(edit)
            self.edits.append(edit)
        return box

    def _show(self, value: Any) -> None:
        items = list(value) if isinstance(value, (list, tuple)) else []
        for i, edit in enumerate(self.edits):
            v = items[i] if i < len(items) else ""
            is_number = isinstance(v, (int, float)) and not isinstance(v, bool)
            edit.setText(format_float(v) if is_number else str(v))

    def set_problem(self, message: str) -> None:
        super().set_problem(message)
        set_problem_flag(self.input, False)
        for edit in self.edits:
            set_problem_flag(edit, bool(message))

    def _on_edit_text_edited(self, _text: str) -> None:
        values = [parse_float(e.text()) for e in self.edits]
        if None in values:
            self.rejected.emit(f"{self.path}: expected two numbers")
            return
        self.rejected.emit("")
        self._emit(values)


def make_editor(path: str, info: dict) -> FieldEditor:
    kind = info["type"]
    if "choices" in info:
        return ChoiceEditor(path, info)
    if info.get("path"):
        return PathEditor(path, info)
    if kind == "int":
        return IntEditor(path, info)
    if kind == "float":
        return FloatEditor(path, info)
    if kind == "bool":
        return BoolEditor(path, info)
    if kind == "list":
        return BetasEditor(path, info)
    if kind == "int|None":
        return OptionalIntEditor(path, info)
    return TextEditor(path, info)


class OptionalIntEditor(TextEditor):
    """int|None as a line edit: empty = None (e.g. model.vocab_size: taken from the data)."""

    def _on_edit_text_edited(self, text: str) -> None:
        if not text.strip():
            self.rejected.emit("")
            self._emit(None)
            return
        try:
            value = int(text.strip().replace(",", "").replace("_", ""))
        except ValueError:
            self.rejected.emit(f"{self.path}: {quote(text)} is not a whole number")
            return
        self.rejected.emit("")
        self._emit(value)

    def _show(self, value: Any) -> None:
        self.input.setText("" if value is None else str(value))


def tooltip_for(path: str, info: dict) -> str:
    parts = [f"<b>{html.escape(path)}</b> ({html.escape(info['type'])})", html.escape(info["doc"])]
    bounds = [f"min {info['min']}" if "min" in info else "", f"max {info['max']}" if "max" in info else ""]
    extra = ", ".join(b for b in bounds if b)
    default = info["default"]
    parts.append(f"default: {html.escape(repr(default))}" + (f"; {extra}" if extra else ""))
    return "<br>".join(parts)


class ConfigForm(QWidget):
    """All sections' fields in group boxes; shows YAML data, reports edits, flags problems."""

    value_edited = Signal(str, object)     # dotted path, new value
    local_problems_changed = Signal()      # text in a field that is not a value (e.g. "3e-")

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setStyleSheet(PROBLEM_STYLE)
        self.editors: dict[str, FieldEditor] = {}
        self.groups: dict[str, QGroupBox] = {}
        self._group_errors: dict[str, QLabel] = {}
        self._local: dict[str, str] = {}
        self._labels: dict[str, QLabel] = {}
        self._base_dir = os.getcwd()
        docs = field_docs()
        for section in SECTIONS:
            group = QGroupBox(SECTION_TITLES[section])
            form = QFormLayout(group)
            form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
            form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            form.setVerticalSpacing(5)
            for path, info in docs.items():
                if not path.startswith(section + "."):
                    continue
                editor = make_editor(path, info)
                if isinstance(editor, PathEditor):
                    editor.base_dir = lambda: self._base_dir
                tip = tooltip_for(path, info)
                editor.setToolTip(tip)
                label = QLabel(path.split(".", 1)[1])
                label.setToolTip(tip)
                editor.edited.connect(lambda value, p=path: self._on_editor_edited(p, value))
                editor.rejected.connect(lambda message, p=path: self._on_editor_rejected(p, message))
                form.addRow(label, editor)
                self.editors[path], self._labels[path] = editor, label
            error = QLabel()
            error.setProperty("role", "field-error")
            error.setWordWrap(True)
            error.hide()
            form.addRow(error)
            self.groups[section], self._group_errors[section] = group, error
        # Each box aligns its own labels: the data box's short "dir" leaves its path the width that a
        # label column shared with the model box would take (the path was cut at 1280 px).
        # Training beside Model, Data and Run, or under them where both do not fit (a 1024 px window beside
        # the runs list cut the Training column to its labels' first letters, behind a sideways scroll bar)
        left, right = QVBoxLayout(), QVBoxLayout()
        for section in ("model", "data", "run"):
            left.addWidget(self.groups[section])
        left.addStretch(1)
        right.addWidget(self.groups["train"])
        right.addStretch(1)
        self.columns = WrapRow(left, right, halves=True)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(4, 4, 4, 4)
        outer.addWidget(self.columns)
        guard_wheel(self)  # the wheel scrolls the form; it changed a field's value under the pointer

    # ------------------------------------------------------------------ public
    def set_base_dir(self, path: str) -> None:
        self._base_dir = path

    def set_values(self, raw: dict) -> None:
        """Show plain YAML data (missing keys show the defaults); emits nothing."""
        docs = field_docs()
        for path, editor in self.editors.items():
            section, key = path.split(".", 1)
            data = raw.get(section) if isinstance(raw, dict) else None
            data = data if isinstance(data, dict) else {}
            editor.show_value(data.get(key, docs[path]["default"]))
        if self._local:
            self._local.clear()
            self.local_problems_changed.emit()

    def set_vocab_hint(self, text: str) -> None:
        self.editors["model.vocab_size"].input.setPlaceholderText(text)

    def local_problems(self) -> list[Problem]:
        return [Problem(path, message) for path, message in self._local.items()]

    def set_problems(self, problems: list[Problem]) -> None:
        """Flag each problem's field (or its section, for unknown keys) and show the message there."""
        by_field: dict[str, list[str]] = {}
        by_section: dict[str, list[str]] = {}
        for p in problems:
            if p.path in self.editors:
                by_field.setdefault(p.path, []).append(p.message)
            else:
                by_section.setdefault(p.path.split(".", 1)[0], []).append(p.message)
        for path, editor in self.editors.items():
            editor.set_problem("\n".join(by_field.get(path, [])))
        for section, group in self.groups.items():
            messages = by_section.get(section, [])
            set_problem_flag(group, bool(messages))
            self._group_errors[section].setText("\n".join(messages))
            self._group_errors[section].setVisible(bool(messages))

    def flagged_paths(self) -> list[str]:
        return [p for p, e in self.editors.items() if e.error.isVisible() or e.input.property("problem")]

    # ------------------------------------------------------------------ slots
    def _on_editor_edited(self, path: str, value: Any) -> None:
        self.value_edited.emit(path, value)

    def _on_editor_rejected(self, path: str, message: str) -> None:
        if message:
            self._local[path] = message
        else:
            self._local.pop(path, None)
        self.local_problems_changed.emit()
