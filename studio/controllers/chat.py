"""ChatSession: a conversation with a checkpoint that has a chat template (an imported model).

The conversation (an optional system prompt, then user and assistant turns) is sent whole as `messages`
with every new user turn; the worker (`llm-train serve`) renders it in the checkpoint's own chat template
and stops the reply at the model's end-of-turn token. The reply streams as `token` replies, each with the
model's probability and top alternatives, like a completion; it joins the conversation when its result
arrives. A stopped reply is kept as far as it got; a failed one is dropped with its user turn, so that the
user can send it again. After each reply the conversation goes to the prompt history (`history_entry`, one
entry per conversation, by its id); `restore` puts such an entry back to be continued. The view renders
this state and calls these methods; it holds none of it.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, Signal

from core.errors import CheckpointError
from core.layout import read_checkpoint_meta
from studio.controllers.generation import TOP_N
from studio.controllers.workers import WorkerLink
from studio.engine.worker import WorkerPool


def has_chat_template(checkpoint: str) -> bool:
    """Whether the checkpoint's meta.json carries a chat template (core.chat's rule, read torch-free)."""
    if not checkpoint:
        return False
    try:
        template = read_checkpoint_meta(checkpoint).get("chat_template")
    except CheckpointError:
        return False
    return isinstance(template, str) and bool(template.strip())


@dataclass
class Turn:
    role: str                                          # "user" or "assistant"
    content: str
    tokens: list[dict] = field(default_factory=list)   # an assistant turn's token replies


class ChatSession(QObject):
    turn_started = Signal(str, str)     # role, content ("" for an assistant reply about to stream)
    token_received = Signal(dict)       # a token of the streaming reply
    reply_finished = Signal(dict)       # the result of the reply (stopped_by, n_tokens, ...)
    failed = Signal(str)                # message
    busy_changed = Signal(bool)
    cleared = Signal()
    restored = Signal()                 # a conversation from the history was put back

    def __init__(self, pool: WorkerPool, parent: QObject | None = None):
        super().__init__(parent)
        self.link = WorkerLink(pool, self)
        self.link.token_received.connect(self._on_link_token_received)
        self.link.result_received.connect(self._on_link_result_received)
        self.link.request_failed.connect(self._on_link_request_failed)
        self.link.worker_died.connect(self.failed)
        self.system = ""
        self.turns: list[Turn] = []
        self.rid = ""
        self._reply: Turn | None = None
        self.conversation_id = uuid.uuid4().hex
        self.checkpoint = ""  # the one the last message went to

    def is_busy(self) -> bool:
        return bool(self.rid)

    def messages(self) -> list[dict]:
        """The conversation as the chat template takes it: system (when set), then the turns."""
        head = [{"role": "system", "content": self.system}] if self.system.strip() else []
        return head + [{"role": t.role, "content": t.content} for t in self.turns]

    def send(self, text: str, params: dict, checkpoint: str) -> bool:
        """Add a user turn and ask the model for the assistant's reply."""
        if self.is_busy() or not text.strip() or not checkpoint:
            return False
        self.turns.append(Turn("user", text))
        self.checkpoint = checkpoint
        self.turn_started.emit("user", text)
        # the sampling settings of completion mode; the reply also stops at the template's end of turn
        self.rid = self.link.request(checkpoint, "generate", messages=self.messages(), top_n=TOP_N, **params)
        self._reply = Turn("assistant", "")
        self.turn_started.emit("assistant", "")
        self.busy_changed.emit(True)
        return True

    def stop(self) -> None:
        self.link.cancel(self.rid)

    def clear(self) -> None:
        """A new conversation (the system prompt stays)."""
        self.stop()
        self.rid, self._reply, self.turns = "", None, []
        self.conversation_id = uuid.uuid4().hex
        self.busy_changed.emit(False)
        self.cleared.emit()

    def history_entry(self, params: dict) -> dict:
        """The conversation as a prompt-history entry (studio.controllers.generation_history)."""
        first = next((t.content for t in self.turns if t.role == "user"), "")
        return {"kind": "chat", "id": self.conversation_id, "time": time.time(), "prompt": first,
                "system": self.system, "checkpoint": self.checkpoint, "params": params,
                "messages": [{"role": t.role, "content": t.content} for t in self.turns]}

    def restore(self, entry: dict) -> bool:
        """Put a chat history entry back, to be read and continued (under the same entry)."""
        if self.is_busy():
            return False
        messages = [m for m in entry.get("messages") or [] if isinstance(m, dict)
                    and m.get("role") in ("user", "assistant") and isinstance(m.get("content"), str)]
        self.turns = [Turn(m["role"], m["content"]) for m in messages]
        self.system = entry.get("system") or ""
        self.checkpoint = entry.get("checkpoint") or ""
        self.conversation_id = entry.get("id") or uuid.uuid4().hex
        self.restored.emit()
        return True

    def shutdown(self, wait_ms: int = 0) -> None:
        self.rid = ""
        self.link.release(wait_ms)

    # ------------------------------------------------------------------ replies
    def _on_link_token_received(self, ev: dict) -> None:
        if ev.get("id") == self.rid and self._reply is not None:
            self._reply.tokens.append(ev)
            self.token_received.emit(ev)

    def _on_link_result_received(self, ev: dict) -> None:
        if ev.get("id") != self.rid or ev.get("op") != "generate" or self._reply is None:
            return
        self._reply.content = ev.get("text", "")
        self.turns.append(self._reply)
        self.rid, self._reply = "", None
        self.busy_changed.emit(False)
        self.reply_finished.emit(ev)

    def _on_link_request_failed(self, ev: dict) -> None:
        if ev.get("id") != self.rid:
            return
        if self.turns and self.turns[-1].role == "user":
            self.turns.pop()  # the question was not answered: it can be sent again
        self.rid, self._reply = "", None
        self.busy_changed.emit(False)
        self.failed.emit(f"{ev.get('kind')}: {ev.get('message')}")
