"""GenerationPanel: prompt a checkpoint (or two side by side) and watch the text stream in.

The view of a GenerationSession (studio.controllers.generation), which owns the requests, the workers,
branching and the history: this panel renders the session's state and turns clicks into its calls.
Tokens are appended as they arrive; Stop cancels at once. Clicking a generated token offers the model's
top alternatives there; picking one continues from it. Finished generations go to the prompt history.
Chat mode (studio.views.generate.chat), for a checkpoint with a chat template, replaces the prompt and the
outputs by a conversation with side A's checkpoint.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from studio.controllers.chat import ChatSession, has_chat_template
from studio.controllers.generation import GenerationSession
from studio.views.common.checkpoint_picker import CheckpointPicker
from studio.views.common.wrap_row import WrapRow
from studio.views.generate.chat import ChatPane
from studio.views.generate.history import HistoryList
from studio.views.generate.output import TokenOutput, prob_color
from studio.views.generate.params import GenerationParams
from studio.workspace.checkpoints import checkpoint_label, counterpart
from studio.workspace.token_labels import visible


@dataclass
class Side:
    """One output column's widgets: its checkpoint picker, output and header."""

    name: str
    picker: CheckpointPicker
    output: TokenOutput
    header: QLabel


class GenerationPanel(QWidget):
    generation_finished = Signal(dict)                  # the history entry of a finished generation
    inspect_attention_requested = Signal(str, str)      # checkpoint, text (prompt + output)
    status_changed = Signal(str)

    def __init__(self, pool=None, parent: QWidget | None = None):
        """`pool`: the WorkerPool shared with the attention panel (the session makes its own if None)."""
        super().__init__(parent)
        self.session = GenerationSession(pool, self)
        self.chat = ChatSession(self.session.pool, self)
        self.chat.reply_finished.connect(lambda _ev: self.session.record(self.chat.history_entry(
            self.params.values())))
        self._build()
        session = self.session
        session.output_started.connect(self._on_session_output_started)
        session.token_received.connect(self._on_session_token_received)
        session.output_truncated.connect(self._on_session_output_truncated)
        session.side_failed.connect(self._on_session_side_failed)
        session.side_changed.connect(lambda name: self._update_header(self.sides[name]))
        session.busy_changed.connect(self._update_buttons)
        session.history_changed.connect(self.history_list.show_entries)
        session.status_changed.connect(self._set_status)
        session.generation_finished.connect(self.generation_finished)

    @property
    def pool(self):
        return self.session.pool

    @property
    def history(self):
        return self.session.history

    # ------------------------------------------------------------------ construction
    def _build(self) -> None:
        self.params = GenerationParams()
        self.compare = QCheckBox("Side by side with")
        self.compare.toggled.connect(self._on_compare_toggled)
        self.chat_mode = QCheckBox("Chat")
        self._chat_checkpoint = ""  # side A's checkpoint when chat mode was last set for it
        self.chat_mode.toggled.connect(self._on_chat_mode_toggled)
        sides = []
        for name in ("A", "B"):
            header = QLabel()
            header.setTextFormat(Qt.TextFormat.RichText)
            header.setWordWrap(True)  # a narrow window (side by side, 1024 px) wraps its state, not cuts it
            output = TokenOutput()
            output.token_clicked.connect(lambda i, pos, n=name: self._on_output_token_clicked(n, i, pos))
            picker = CheckpointPicker()
            picker.checkpoint_refused.connect(lambda message: self._set_status(message, error=True))
            picker.checkpoint_changed.connect(lambda _path, n=name: self._update_header(self.sides[n]))
            if name == "A":
                picker.checkpoint_changed.connect(lambda _path: self._update_chat_mode())
            sides.append(Side(name, picker, output, header))
        self.sides = {s.name: s for s in sides}
        self.colour = QCheckBox("Colour by probability")
        self.colour.setChecked(True)
        self.colour.toggled.connect(self._on_colour_toggled)
        self.prompt = QPlainTextEdit()
        self.prompt.setPlaceholderText("Prompt…  (Ctrl+Return generates)")
        self.generate_button = QPushButton("Generate")
        self.generate_button.setShortcut("Ctrl+Return")
        self.generate_button.setDefault(True)
        self.generate_button.clicked.connect(self.generate)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setShortcut("Esc")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop)
        self.inspect_button = QPushButton("Inspect attention")
        self.inspect_button.setToolTip("Open the attention panel on prompt + output")
        self.inspect_button.setEnabled(False)
        self.inspect_button.clicked.connect(self._on_inspect_clicked)
        self.history_list = HistoryList()
        self.history_list.entry_requested.connect(self.restore_entry)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.cores_label = QLabel()  # how the CPU is shared with training (set by the owner)
        self.cores_label.setWordWrap(True)
        self.cores_label.setStyleSheet("color: palette(placeholder-text);")
        self.chat_pane = ChatPane(self.chat, self.params.values, self.sides["A"].picker.checkpoint)
        self.modes = QStackedWidget()  # completion | chat
        layout = QHBoxLayout(self)
        layout.addWidget(self._build_left())
        self.modes.addWidget(self._build_right())
        self.modes.addWidget(self.chat_pane)
        layout.addWidget(self.modes, 1)
        for s in self.sides.values():
            self._update_header(s)
        self._update_chat_mode()

    def _build_left(self) -> QWidget:
        left = QVBoxLayout()
        models = QGroupBox("Checkpoint")
        ml = QVBoxLayout(models)
        ml.addWidget(self.sides["A"].picker)
        ml.addWidget(self.chat_mode)
        ml.addWidget(self.compare)
        ml.addWidget(self.sides["B"].picker)
        ml.addWidget(self.cores_label)
        self.sides["B"].picker.setEnabled(False)
        settings = QGroupBox("Sampling")
        QVBoxLayout(settings).addWidget(self.params)
        history = QGroupBox("History")
        QVBoxLayout(history).addWidget(self.history_list)
        for w in (models, settings):
            left.addWidget(w)
        left.addWidget(history, 1)
        left_w = QWidget()
        left_w.setLayout(left)
        left_w.setMaximumWidth(380)
        return left_w

    def _build_right(self) -> QWidget:
        buttons, colours = QHBoxLayout(), QHBoxLayout()
        for w in (self.generate_button, self.stop_button, self.inspect_button):
            buttons.addWidget(w)
        buttons.addStretch(1)
        colours.addStretch(1)
        colours.addWidget(self.colour)
        colours.addWidget(self._legend())
        self.button_row = WrapRow(buttons, colours)  # in a narrow window the colour key goes under the buttons
        self.outputs = QSplitter(Qt.Orientation.Horizontal)
        for s in self.sides.values():
            col = QWidget()
            cl = QVBoxLayout(col)
            cl.setContentsMargins(0, 0, 0, 0)
            cl.addWidget(s.header)
            cl.addWidget(s.output, 1)
            self.outputs.addWidget(col)
        for i in range(2):
            self.outputs.setStretchFactor(i, 1)
        self.outputs.widget(1).setVisible(False)
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.prompt)
        out_w = QWidget()
        ol = QVBoxLayout(out_w)
        ol.setContentsMargins(0, 0, 0, 0)
        ol.addWidget(self.button_row)
        ol.addWidget(self.outputs, 1)
        right.addWidget(out_w)
        right.setSizes([110, 590])
        right_w = QWidget()
        rl = QVBoxLayout(right_w)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(right, 1)
        rl.addWidget(self.status)
        return right_w

    def _legend(self) -> QLabel:
        cells = "".join(f"<td style='background:{prob_color(p).name()}; color:#1b1f23'>&nbsp;{int(p * 100)}%&nbsp;</td>"
                        for p in (0.05, 0.25, 0.5, 0.75, 1.0))
        legend = QLabel(f"<table cellspacing='0'><tr>{cells}</tr></table>")
        # dark text on the pastel cells in either theme, like the tokens themselves (token_text.py)
        legend.setToolTip("The model's probability of each generated token; hover a token for the top 5")
        return legend

    # ------------------------------------------------------------------ public
    def set_workspace(self, root: str) -> None:
        """Another workspace: its checkpoints and history; the last one's outputs and conversation cleared."""
        if root != self.session.root:
            self.chat.clear()
        for s in self.sides.values():
            s.picker.set_workspace(root)
        self.session.set_workspace(root)

    def set_run_dir(self, run_dir: str) -> None:
        """The selected run: the pickers list its checkpoints first and preselect its latest."""
        for s in self.sides.values():
            s.picker.set_run(run_dir)
        for s in self.sides.values():
            self._update_header(s)

    def set_core_share(self, text: str, tip: str = "") -> None:
        """Say how the CPU cores are shared between generation and training runs."""
        self.cores_label.setText(text)
        self.cores_label.setToolTip(tip)

    def checkpoints_changed(self) -> None:
        """A run wrote a checkpoint: offer it where nothing was chosen by hand."""
        for s in self.sides.values():
            s.picker.offer_latest(follow_run=not s.picker.pinned)

    def active_sides(self) -> list[Side]:
        return [self.sides["A"]] + ([self.sides["B"]] if self.compare.isChecked() else [])

    def is_busy(self) -> bool:
        return self.session.is_busy()

    def generate(self) -> None:
        checkpoints = {s.name: s.picker.checkpoint() for s in self.active_sides()}
        self.session.generate(self.prompt.toPlainText(), self.params.values(), checkpoints)

    def stop(self) -> None:
        self.session.stop()

    def pick_alternative(self, side: str, index: int, token_id: int) -> None:
        """Replace generated token `index` of `side` by one of its alternatives and continue from there."""
        self.session.pick_alternative(side, index, token_id)

    def restore_entry(self, entry: dict) -> None:
        """Put a history entry back: prompt, settings, and the outputs as plain text; a conversation in chat
        mode, to be continued."""
        if self.is_busy() or self.chat.is_busy():
            return
        self.params.set_values(entry.get("params", {}))
        if entry.get("kind") == "chat":
            self._restore_chat(entry)
            return
        self.prompt.setPlainText(entry.get("prompt", ""))
        outputs = entry.get("outputs", [])
        self.compare.setChecked(len(outputs) > 1)
        sides = self.active_sides()
        for s, checkpoint in zip(sides, self.session.entry_checkpoints(entry), strict=False):
            if checkpoint:
                s.picker.set_checkpoint(checkpoint)
        self.chat_mode.setChecked(False)  # a completion of a chat model is shown as one
        self.session.restore(entry, [s.name for s in sides])
        self.inspect_button.setEnabled(False)

    def _restore_chat(self, entry: dict) -> None:
        checkpoint, picker = entry.get("checkpoint", ""), self.sides["A"].picker
        gone = not has_chat_template(checkpoint)
        if not gone and checkpoint != picker.checkpoint():
            picker.set_checkpoint(checkpoint)
        if not self.chat_mode.isEnabled():
            self._set_status(f"This conversation's checkpoint is gone ({checkpoint}): pick a checkpoint with a "
                             "chat template to read and continue it.", error=True)
            return
        self.chat_mode.setChecked(True)
        if self.chat.restore(entry) and gone:
            self.chat_pane.status.setText(f"This conversation's checkpoint is gone ({checkpoint}); it goes on "
                                          f"with {checkpoint_label(picker.checkpoint())}.")

    def shutdown_workers(self, wait_ms: int = 0) -> None:
        self.session.shutdown(wait_ms)
        self.chat.shutdown(wait_ms)

    # ------------------------------------------------------------------ chat mode
    def _update_chat_mode(self) -> None:
        """Chat is offered when side A's checkpoint has a chat template, and chosen when such a checkpoint
        is picked (an instruction fine-tune, an imported chat model: made to be talked to; untick for
        completion, which stays until another checkpoint is picked); it is left when it has none."""
        checkpoint = self.sides["A"].picker.checkpoint()
        ok = has_chat_template(checkpoint)
        self.chat_mode.setEnabled(ok)
        self.chat_mode.setToolTip("Talk to the model in its own chat template (system, user and assistant turns)"
                                  if ok else "This checkpoint has no chat template: chat needs an instruction "
                                  "fine-tune or an imported model that has one (File → Import Model…)")
        if ok != self.chat_mode.isChecked() and (not ok or checkpoint != self._chat_checkpoint):
            self.chat_mode.setChecked(ok)
        self._chat_checkpoint = checkpoint

    def typing_widget(self) -> QWidget:
        """Where a keyboard user types first: the chat's message box in chat mode, else the prompt."""
        return self.chat_pane.message if self.chat_mode.isChecked() else self.prompt

    def _on_chat_mode_toggled(self, on: bool) -> None:
        self.modes.setCurrentIndex(1 if on else 0)
        self.compare.setEnabled(not on)
        if on and self.compare.isChecked():
            self.compare.setChecked(False)

    # ------------------------------------------------------------------ session
    def _on_session_output_started(self, side: str, prompt: str) -> None:
        self.sides[side].output.begin(prompt)

    def _on_session_token_received(self, side: str, ev: dict) -> None:
        self.sides[side].output.append_token(ev)
        self._update_header(self.sides[side])

    def _on_session_output_truncated(self, side: str, n: int) -> None:
        self.sides[side].output.truncate(n)

    def _on_session_side_failed(self, side: str, message: str) -> None:
        self.sides[side].output.append_note(f"\n[{message}]")

    # ------------------------------------------------------------------ view
    def _update_header(self, s: Side) -> None:
        """'A · run · step N' of the checkpoint that wrote the output shown (the picker may have moved on:
        a training run's newest checkpoint is offered as it is written), and the side's state."""
        state = self.session.side(s.name)
        picked = s.picker.checkpoint()
        shown = state.checkpoint or picked
        name = checkpoint_label(shown) if shown else "no checkpoint"
        n = len(state.tokens)
        if state.note:
            text = state.note
        elif state.rid:
            dt = max(time.monotonic() - state.t0, 1e-6)
            text = f"generating… {n} tokens, {(n - state.offset) / dt:.0f} tok/s" if n > state.offset \
                else "generating…"
        elif state.error:
            text = f"<span style='color:#d93025'>{state.error}</span>"
        elif state.result is not None:
            text = f"{n} tokens, stopped by {state.result.get('stopped_by')}"
        else:
            text = "idle"
        if picked and shown != picked:
            text += f"; Generate uses {checkpoint_label(picked)}"
        s.header.setText(f"<b>{s.name} · {name}</b> &nbsp; <span style='color:#57606a'>{text}</span>")

    def _update_buttons(self) -> None:
        busy = self.is_busy()
        self.generate_button.setEnabled(not busy)
        self.stop_button.setEnabled(busy)
        self.inspect_button.setEnabled(not busy and self.session.inspect_target() is not None)

    def _on_compare_toggled(self, on: bool) -> None:
        a, b = self.sides["A"].picker, self.sides["B"].picker
        b.setEnabled(on)
        if on and not b.pinned and a.checkpoint() and b.checkpoint() in ("", a.checkpoint()):
            other = counterpart(a.checkpoint(), b.checkpoints())
            if other:
                b.set_checkpoint(other)
        self.outputs.widget(1).setVisible(on)
        if on:  # side by side means equal widths
            half = max(1, sum(self.outputs.sizes()) // 2)
            self.outputs.setSizes([half, half])

    def _on_colour_toggled(self, on: bool) -> None:
        for s in self.sides.values():
            s.output.set_colouring(on)

    def _on_inspect_clicked(self) -> None:
        target = self.session.inspect_target()
        if target is not None:
            self.inspect_attention_requested.emit(*target)

    def _on_output_token_clicked(self, side: str, index: int, pos: QPoint) -> None:
        if not self.session.can_branch(side, index):
            return
        ev = self.session.side(side).tokens[index]
        menu = QMenu(self)
        menu.setToolTipsVisible(True)
        menu.addSection(f"Token {index}: continue with…")
        for text, token_id, p in ev["top"]:
            act = menu.addAction(f"{visible(text)}\t{100 * p:.1f}%")
            act.setCheckable(True)
            act.setChecked(token_id == ev.get("token_id"))
            act.triggered.connect(lambda _c=False, t=token_id: self.pick_alternative(side, index, t))
        menu.popup(pos)

    def _set_status(self, text: str, error: bool = False) -> None:
        self.status.setStyleSheet("color: #d93025;" if error else "")
        self.status.setText(text)
        self.status_changed.emit(text)
