"""ChatPane: the Generate tab's chat mode, for checkpoints with a chat template (imported models).

A system prompt, the conversation (user turns and assistant replies under their own headings; each reply's
tokens shaded by the model's probability, with the top alternatives on hover, as in completion mode), a
message box (Enter sends, Shift+Enter is a new line), Send, Stop and New chat. The state lives in
studio.controllers.chat.ChatSession.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from studio.controllers.chat import ChatSession
from studio.views.generate.output import TokenOutput

HEADINGS = {"user": ("You", "#0969da"), "assistant": ("Assistant", "#1a7f37")}


class ChatPane(QWidget):
    def __init__(self, session: ChatSession, params, checkpoint, parent: QWidget | None = None):
        """`params()` gives the sampling settings, `checkpoint()` the checkpoint to talk to."""
        super().__init__(parent)
        self.session, self._params, self._checkpoint = session, params, checkpoint
        self.system = QLineEdit()
        self.system.setPlaceholderText("optional: how the assistant should behave")
        self.conversation = TokenOutput()
        self.conversation.click_hint = ""
        self.message = QPlainTextEdit()
        self.message.setPlaceholderText("Message…  (Enter sends, Shift+Enter for a new line)")
        self.message.setMaximumHeight(80)
        self.message.installEventFilter(self)
        self.send_button = QPushButton("Send")
        self.send_button.clicked.connect(self.send)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(session.stop)
        self.new_button = QPushButton("New chat")
        self.new_button.clicked.connect(session.clear)
        self.status = QLabel()
        self.status.setWordWrap(True)
        buttons = QHBoxLayout()
        for w in (self.send_button, self.stop_button, self.new_button):
            buttons.addWidget(w)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        system_row = QHBoxLayout()
        system_row.addWidget(QLabel("System prompt"))  # without a label the field reads as part of the chat
        system_row.addWidget(self.system, 1)
        layout.addLayout(system_row)
        layout.addWidget(self.conversation, 1)
        layout.addWidget(self.message)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        session.turn_started.connect(self._on_session_turn_started)
        session.token_received.connect(self.conversation.append_token)
        session.reply_finished.connect(self._on_session_reply_finished)
        session.failed.connect(self._on_session_failed)
        session.busy_changed.connect(self._on_session_busy_changed)
        session.cleared.connect(self._on_session_cleared)
        session.restored.connect(self._on_session_restored)
        self._on_session_cleared()

    def send(self) -> bool:
        text = self.message.toPlainText().strip()
        if not self._checkpoint():
            self.status.setText("Pick a checkpoint first.")
            return False
        self.session.system = self.system.text()
        if not self.session.send(text, self._params(), self._checkpoint()):
            return False
        self.message.clear()
        self.status.setText("The assistant is answering…")
        return True

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt override)
        if obj is self.message and event.type() == QEvent.Type.KeyPress and \
                event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and \
                not event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            self.send()
            return True
        return super().eventFilter(obj, event)

    # ------------------------------------------------------------------ session
    def _on_session_turn_started(self, role: str, content: str) -> None:
        self._show_turn(role, content, first=not self.session.turns[:-1] and role == "user")

    def _show_turn(self, role: str, content: str, first: bool) -> None:
        heading, color = HEADINGS[role]
        self.conversation.append_note(("" if first else "\n\n") + heading + "\n", color, bold=True)
        if content:
            self.conversation.append_note(content, "")

    def _on_session_restored(self) -> None:
        """A conversation from the history: its turns as plain text (no probabilities were kept)."""
        self.conversation.begin("")
        self.system.setText(self.session.system)
        for i, turn in enumerate(self.session.turns):
            self._show_turn(turn.role, turn.content, first=i == 0)
        self.status.setText(f"A conversation from the history ({len(self.session.turns)} messages): "
                            "write to go on with it, or New chat.")

    def _on_session_reply_finished(self, ev: dict) -> None:
        how = {"eos": "end of turn", "length": "token limit", "cancel": "stopped",
               "stop_string": "stop string"}.get(ev.get("stopped_by"), ev.get("stopped_by", ""))
        self.status.setText(f"Reply: {ev.get('n_tokens', 0)} tokens ({how}). Hover a token for its alternatives.")

    def _on_session_failed(self, message: str) -> None:
        self.conversation.append_note(f"\n{message}")
        self.status.setText(message)

    def _on_session_busy_changed(self, busy: bool) -> None:
        self.send_button.setEnabled(not busy)
        self.stop_button.setEnabled(busy)

    def _on_session_cleared(self) -> None:
        self.conversation.begin("")
        self.status.setText("A new conversation. The whole conversation is sent in the model's chat template "
                            "with every message.")
