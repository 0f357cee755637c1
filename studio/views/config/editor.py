"""ConfigEditor: edit a run config as a form or as YAML, validated as you type, with live estimates.

The YAML text is the truth. A form edit changes that one value in the text through core.config_text
(comments, blank lines and key order survive);
a YAML edit updates the form after a 300 ms pause; YAML that does not parse shows the parser's message
and leaves the form as it was (disabled until the text parses again). Every change runs the engine's
own validation (core.config) and flags the offending fields in both views.
"""

from __future__ import annotations

import os
import re
from typing import Any

import yaml
from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtGui import (
    QColor,
    QFontDatabase,
    QPalette,
    QTextCursor,
    QTextFormat,
)
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QTabWidget,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from core import config_text, layout
from core.config import (
    Config,
    ConfigError,
    Problem,
    data_vocab_size,
    estimate,
    loads,
    safe_yaml,
)
from studio.theme import banner_style
from studio.views.config.estimates import EstimatesPanel
from studio.views.config.form import ConfigForm
from studio.views.config.yaml_tab import YamlHighlighter, list_presets
from studio.workspace.presets import keep_own_data

DEBOUNCE_MS = 300


class ConfigEditor(QWidget):
    """A run config as form + YAML, validated by core.config on every change, with estimates.

    Signals: `changed()` after every change of the text (form edit, YAML edit after the pause,
    set_text, a preset); `validity_changed(valid, message)` after every validation, the
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
        self._locked = False
        self._form_parses = True
        self._checks = None  # extra rules of the shown run (Config -> list[Problem]): its checkpoint's shape
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
        self.lock_label = QLabel()  # why the config cannot be edited now (a training run uses it)
        self.lock_label.setWordWrap(True)
        self.lock_label.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)  # no run: a
        # banner at the top, not a box filling the tab
        self.lock_label.setObjectName("banner")
        self.lock_label.hide()
        self.notice_label = QLabel()  # what loading a preset kept of the run's own config
        self.notice_label.setWordWrap(True)
        self.notice_label.setObjectName("banner")
        self.notice_label.hide()
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
        # Long flow-style lines (train: {...}) wrap at the edge rather than run off it.
        self.yaml_edit.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.yaml_edit.setTabStopDistance(16)
        self._highlighter = YamlHighlighter(self.yaml_edit.document())
        self._highlighter.set_dark(self.palette().color(QPalette.ColorRole.Base).lightness() < 128)
        self.yaml_edit.textChanged.connect(self._on_yaml_edit_text_changed)
        self.tabs = QTabWidget()
        self.tabs.addTab(scroll, "Form")
        self.tabs.addTab(self.yaml_edit, "YAML")
        self.estimates = EstimatesPanel()
        self._split = split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.tabs)
        split.addWidget(self._scrolled(self.estimates))
        split.setStretchFactor(0, 1)
        split.setSizes([700, 260])
        self.problems_label = QLabel()
        self.problems_label.setWordWrap(True)
        self.problems_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.problems_label.setObjectName("banner")
        self.problems_label.hide()
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(self.lock_label)
        lay.addWidget(self.notice_label)
        lay.addWidget(split, 1)
        lay.addWidget(self.problems_label)
        lay.addStretch(0)  # takes the room only while the views are hidden (no run): the banner stays on top
        self.set_text(config_text.dump_new(Config()))

    @staticmethod
    def _scrolled(panel: QWidget) -> QScrollArea:
        """The estimates in a scroll area: a low window scrolls them (squeezed, their notes were drawn over
        each other)."""
        side = QScrollArea()
        side.setWidgetResizable(True)
        side.setFrameShape(QFrame.Shape.NoFrame)
        side.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        side.setWidget(panel)
        side.setMinimumWidth(250)
        return side

    # ------------------------------------------------------------------ public API
    def set_base_dir(self, path: str) -> None:
        """Folder that relative paths (data.dir, run.dir) resolve against; re-validates."""
        self._base_dir = os.path.abspath(path)
        self.form.set_base_dir(self._base_dir)
        self._apply_text(self.text())

    def revalidate(self) -> None:
        """Validate the same text again: something it refers to (a data folder's meta.json) changed."""
        self._flush_pending_edit()
        self._apply_text(self.text())

    def base_dir(self) -> str:
        return self._base_dir

    def set_locked(self, message: str | None) -> None:
        """Read-only with `message` shown above the views (a run trains with this config, or it is an imported
        model's), or editable; a change re-validates (the run's checkpoints, which the checks read, may have
        changed; a locked config has no "data.dir not prepared" note)."""
        if bool(message) == self._locked and (message or "") == self.lock_label.text():
            return  # asked again at every run update: nothing to restyle
        self._locked = bool(message)
        self.lock_label.setText(message or "")
        self.lock_label.setStyleSheet(banner_style("info"))
        self.lock_label.setVisible(self._locked)
        self.yaml_edit.setReadOnly(self._locked)
        self.preset_combo.setEnabled(not self._locked)
        self.form.setEnabled(not self._locked and self._form_parses)
        self.revalidate()

    def set_checks(self, checks) -> None:
        """Rules beyond core.config's for the shown run (`checks(config) -> list[Problem]`, or None),
        applied from the next validation (set_text, an edit, revalidate)."""
        self._checks = checks

    def show_no_run(self, message: str) -> None:
        """No run to edit: `message` in the banner and no form, YAML, estimates or "✔ valid" (they described
        a default config nobody would train); the next set_text brings them back."""
        self.set_text("")
        self.set_locked(message)
        self._split.hide()
        self.status.hide()

    def set_text(self, text: str) -> None:
        """Replace the YAML; the form and validation follow at once."""
        self._split.show()
        self.status.show()
        self.notice_label.hide()  # a preset's notice is about the text it loaded
        self._debounce.stop()
        self._estimate = None  # another run's (or text's) figures are not this one's "last valid" ones
        self._replace_yaml_text(text)
        self._apply_text(text)
        self.changed.emit()

    def text(self) -> str:
        return self.yaml_edit.toPlainText()

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
        """A preset's text replaces the config; the base folder stays (presets' paths are workspace-relative).
        The run keeps its data.dir when the preset's is not a prepared data set here (the user's data is not
        the preset's to choose): the notice above the views says so."""
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        text, notice = keep_own_data(text, self.text(), self._base_dir, os.path.splitext(os.path.basename(path))[0])
        self.set_text(text)
        self.notice_label.setText(notice)
        self.notice_label.setStyleSheet(banner_style("info"))
        self.notice_label.setVisible(bool(notice))

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
            raw = safe_yaml(text)  # no anchors/aliases: a few lines of them expand to gigabytes
        except yaml.YAMLError as exc:
            self._set_form_parses(False)
            self._validate(text, parse_error=f"invalid YAML: {exc}")
            return
        if raw is not None and not isinstance(raw, dict):
            self._set_form_parses(False)
            self._validate(text, parse_error=f"expected a mapping of sections, got {type(raw).__name__}")
            return
        self._set_form_parses(True)
        self.form.set_values(raw or {})
        self._validate(text)

    def _set_form_parses(self, parses: bool) -> None:
        self._form_parses = parses
        self.form.setEnabled(parses and not self._locked)

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
        estimated = config is not None  # even when the run's own checks object: the config itself is sound
        if estimated:
            vocab, source = _vocab_for(config)
            self._estimate = estimate(config, vocab)
            self.estimates.show_estimate(self._estimate, source)
            self.form.set_vocab_hint(f"from data ({vocab:,})" if source == "(from data)" else
                                     "from data (no meta.json yet)")
            if self._checks is not None:
                problems = list(self._checks(config))
                config = config if not problems else None
        self._config, self._problems = config, problems
        self.form.set_problems(problems)
        self._mark_yaml_lines(text, problems)
        if config is not None:
            message = "valid"
            unprepared = not self._locked and not layout.is_data_dir(config.data.dir)  # Start waits for it
            self.status.setText("<span style='color:#27ae60'>✔ valid</span>" + (
                " <span style='color:#c27c0e'>· data.dir not prepared yet (Data tab)</span>" if unprepared else ""))
            self.problems_label.hide()
        else:
            message = "; ".join(p.message for p in problems)
            count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
            self.status.setText(f"<span style='color:#d0473a'>✖ {count}</span>")
            self.problems_label.setText("\n".join(p.message for p in problems))
            self.problems_label.setStyleSheet(banner_style("error"))  # the theme may have changed
            self.problems_label.show()
            if not estimated and self._estimate is not None:
                self.estimates.show_stale(count)
            elif not estimated:
                self.estimates.show_none(count)
        self.validity_changed.emit(config is not None, message)

    def _mark_yaml_lines(self, text: str, problems: list[Problem]) -> None:
        """Red background on the YAML lines the problems point at (the parser's line for bad YAML)."""
        lines = set()
        for p in problems:
            line = config_text.key_line(text, p.path) if p.path else None
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
        try:
            text = config_text.set_value(self.text(), path, value)
        except ConfigError as exc:  # text the form cannot edit (anchors): say why, show the text's values
            self._apply_text(self.text())
            self._validate(self.text(), parse_error=str(exc))
            return
        self._replace_yaml_text(text)
        self._validate(text)
        self.changed.emit()

    def _on_form_local_problems_changed(self) -> None:
        if self._form_parses:
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
