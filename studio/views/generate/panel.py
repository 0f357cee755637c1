"""GenerationPanel: prompt a checkpoint (or two side by side) and watch the text stream in.

Generation runs in an inference worker (`llm-train serve`, see studio.engine.worker); tokens arrive one
reply at a time and are appended as they come. Stop cancels at once (the worker checks between tokens).
Clicking a generated token offers the model's top alternatives there; picking one keeps the text up to
it and generates on from the new token. Finished generations go to the workspace's prompt history.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

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
    QVBoxLayout,
    QWidget,
)

from studio.engine.worker import InferenceWorker, WorkerPool
from studio.views.attention.numeric import visible
from studio.views.common.checkpoint_picker import CheckpointPicker, checkpoint_label
from studio.views.generate.history import GenerationHistory, HistoryList
from studio.views.generate.output import TokenOutput, prob_color
from studio.views.generate.params import GenerationParams


@dataclass
class Side:
    """One output column: its checkpoint picker, worker, view and the generation in progress."""

    name: str
    picker: CheckpointPicker
    output: TokenOutput
    header: QLabel
    worker: InferenceWorker | None = None
    rid: str = ""
    offset: int = 0                    # index of the first token of the running request in the view
    prompt_ids: list[int] = field(default_factory=list)
    t0: float = 0.0
    result: dict | None = None
    error: str = ""


class GenerationPanel(QWidget):
    generation_finished = Signal(dict)                  # the history entry of a finished generation
    inspect_attention_requested = Signal(str, str)      # checkpoint, text (prompt + output)
    status_changed = Signal(str)

    def __init__(self, pool: WorkerPool | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.pool = pool or WorkerPool(self)
        self.history = GenerationHistory()
        self._request_params: dict = {}
        self._build()

    # ------------------------------------------------------------------ construction
    def _build(self) -> None:
        self.params = GenerationParams()
        self.compare = QCheckBox("Side by side with")
        self.compare.toggled.connect(self._on_compare_toggled)
        sides = []
        for name in ("A", "B"):
            header = QLabel()
            header.setTextFormat(Qt.TextFormat.RichText)
            output = TokenOutput()
            output.token_clicked.connect(lambda i, pos, n=name: self._on_output_token_clicked(n, i, pos))
            sides.append(Side(name, CheckpointPicker(), output, header))
        self.sides = {s.name: s for s in sides}
        self.colour = QCheckBox("Colour tokens by probability")
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
        self.history_list.entry_chosen.connect(self.restore_entry)
        self.status = QLabel()
        self.status.setWordWrap(True)

        left = QVBoxLayout()
        models = QGroupBox("Checkpoint")
        ml = QVBoxLayout(models)
        ml.addWidget(self.sides["A"].picker)
        ml.addWidget(self.compare)
        ml.addWidget(self.sides["B"].picker)
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
        left_w.setMinimumWidth(260)
        left_w.setMaximumWidth(380)

        buttons = QHBoxLayout()
        for w in (self.generate_button, self.stop_button, self.inspect_button):
            buttons.addWidget(w)
        buttons.addStretch(1)
        buttons.addWidget(self.colour)
        buttons.addWidget(self._legend())
        self.outputs = QSplitter(Qt.Orientation.Horizontal)
        for s in self.sides.values():
            col = QWidget()
            cl = QVBoxLayout(col)
            cl.setContentsMargins(0, 0, 0, 0)
            cl.addWidget(s.header)
            cl.addWidget(s.output, 1)
            self.outputs.addWidget(col)
        self.outputs.widget(1).setVisible(False)
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.prompt)
        out_w = QWidget()
        ol = QVBoxLayout(out_w)
        ol.setContentsMargins(0, 0, 0, 0)
        ol.addLayout(buttons)
        ol.addWidget(self.outputs, 1)
        right.addWidget(out_w)
        right.setSizes([110, 590])
        right_w = QWidget()
        rl = QVBoxLayout(right_w)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(right, 1)
        rl.addWidget(self.status)
        layout = QHBoxLayout(self)
        layout.addWidget(left_w)
        layout.addWidget(right_w, 1)
        for s in self.sides.values():
            self._update_header(s)

    def _legend(self) -> QLabel:
        cells = "".join(f"<td style='background:{prob_color(p).name()}'>&nbsp;{int(p * 100)}%&nbsp;</td>"
                        for p in (0.05, 0.25, 0.5, 0.75, 1.0))
        legend = QLabel(f"<table cellspacing='0'><tr>{cells}</tr></table>")
        legend.setToolTip("The model's probability of each generated token; hover a token for the top 5")
        return legend

    # ------------------------------------------------------------------ public
    def set_workspace(self, root: str) -> None:
        for s in self.sides.values():
            s.picker.set_workspace(root)
        self.history = GenerationHistory(root)
        self.history_list.show_entries(self.history.entries)

    def active_sides(self) -> list[Side]:
        return [self.sides["A"]] + ([self.sides["B"]] if self.compare.isChecked() else [])

    def is_busy(self) -> bool:
        return any(s.rid for s in self.sides.values())

    def generate(self) -> None:
        if self.is_busy():
            return
        sides = self.active_sides()
        missing = [s.name for s in sides if not s.picker.checkpoint()]
        if missing:
            self._set_status("Pick a checkpoint first.", error=True)
            return
        prompt, params = self.prompt.toPlainText(), self.params.values()
        self._request_params = params
        for s in sides:
            s.output.begin(prompt)
            s.result, s.error, s.offset, s.prompt_ids = None, "", 0, []
            self._start(s, prompt=prompt, **params)
        self._set_status("Generating…")

    def stop(self) -> None:
        for s in self.sides.values():
            if s.rid and s.worker is not None:
                s.worker.cancel(s.rid)

    def pick_alternative(self, side: str, index: int, token_id: int) -> None:
        """Replace generated token `index` of `side` by one of its alternatives and continue from there."""
        s = self.sides[side]
        if s.rid or s.result is None or index >= len(s.output.tokens):
            return
        ev = s.output.tokens[index]
        alt = next((a for a in ev.get("top", []) if a[1] == token_id), None)
        if alt is None:
            return
        kept = [t["token_id"] for t in s.output.tokens[:index]] + [token_id]
        s.output.truncate(index)
        s.output.append_token({**ev, "token_id": token_id, "text": alt[0], "prob": alt[2], "picked": True})
        params = dict(self._request_params or self.params.values())
        remaining = params["max_new_tokens"] - len(kept)
        s.offset = len(kept)
        if remaining <= 0:
            s.result = {**s.result, "text": s.output.output_text(), "n_tokens": len(kept)}
            self._update_header(s)
            return
        params["max_new_tokens"] = remaining
        self._start(s, prompt_ids=s.prompt_ids + kept, **params)

    def restore_entry(self, entry: dict) -> None:
        """Put a history entry back: prompt, settings, and the outputs as plain text."""
        if self.is_busy():
            return
        self.prompt.setPlainText(entry.get("prompt", ""))
        self.params.set_values(entry.get("params", {}))
        outputs = entry.get("outputs", [])
        self.compare.setChecked(len(outputs) > 1)
        for s, out in zip(self.active_sides(), outputs, strict=False):
            if out.get("checkpoint") and os.path.isdir(out["checkpoint"]):
                s.picker.set_checkpoint(out["checkpoint"])
            s.output.begin(entry.get("prompt", ""))
            s.output.append_token({"text": out.get("text", ""), "token_id": -1, "top": []})
            s.result = None
            self._update_header(s, note="from history")
        self.inspect_button.setEnabled(False)

    def shutdown_workers(self, wait_ms: int = 0) -> None:
        for s in self.sides.values():
            w, s.worker, s.rid = s.worker, None, ""
            if w is not None:
                self._connect(w, False)
                self.pool.release(w)
                if wait_ms and w.state == "stopped":
                    w.wait_for_finished(wait_ms)

    # ------------------------------------------------------------------ worker plumbing
    def _start(self, s: Side, **fields) -> None:
        worker = self._worker_for(s)
        s.rid = worker.request("generate", top_n=5, **fields)
        s.t0 = time.monotonic()
        self._update_header(s)
        self._update_buttons()

    def _worker_for(self, s: Side) -> InferenceWorker:
        checkpoint = os.path.abspath(s.picker.checkpoint())
        if s.worker is not None and s.worker.checkpoint == checkpoint:
            return s.worker
        old = s.worker
        others = [o.worker for o in self.sides.values() if o is not s]
        if old is not None and old not in others:
            self._connect(old, False)
        s.worker = self.pool.acquire(checkpoint, previous=old)
        if s.worker not in others:
            self._connect(s.worker, True)
        return s.worker

    def _connect(self, w: InferenceWorker, on: bool) -> None:
        for sig, slot in ((w.token_received, self._on_worker_token), (w.result_received, self._on_worker_result),
                          (w.request_failed, self._on_worker_failed), (w.died, self._on_worker_died)):
            sig.connect(slot) if on else sig.disconnect(slot)

    def _side_of(self, rid) -> Side | None:
        return next((s for s in self.sides.values() if s.rid and s.rid == rid), None)

    def _on_worker_token(self, ev: dict) -> None:
        s = self._side_of(ev.get("id"))
        if s is not None:
            s.output.append_token({**ev, "index": ev.get("index", 0) + s.offset})
            self._update_header(s)

    def _on_worker_result(self, ev: dict) -> None:
        s = self._side_of(ev.get("id"))
        if s is None or ev.get("op") != "generate":
            return
        s.rid = ""
        if s.offset == 0:
            s.prompt_ids = list(ev.get("prompt_ids", []))
        s.result = {**ev, "text": s.output.output_text(), "n_tokens": len(s.output.tokens)}
        self._update_header(s)
        self._finish_if_idle()

    def _on_worker_failed(self, ev: dict) -> None:
        s = self._side_of(ev.get("id"))
        if s is None:
            return
        s.rid, s.error = "", f"{ev.get('kind')}: {ev.get('message')}"
        s.output.append_note(f"\n[{s.error}]")
        self._update_header(s)
        self._finish_if_idle()

    def _on_worker_died(self, message: str) -> None:
        w = self.sender()
        restarting = isinstance(w, InferenceWorker) and w.state == "dead" and w.auto_restart
        self._set_status(message + ("\nThe worker is being restarted." if restarting else ""), error=True)

    def _finish_if_idle(self) -> None:
        self._update_buttons()
        if self.is_busy():
            return
        done = [s for s in self.active_sides() if s.result is not None]
        if not done:
            self._set_status("Generation failed: " + "; ".join(s.error for s in self.active_sides() if s.error),
                             error=True)
            return
        outputs = [{"checkpoint": s.worker.checkpoint, "text": s.result["text"], "n_tokens": s.result["n_tokens"],
                    "stopped_by": s.result.get("stopped_by")} for s in done]
        entry = self.history.add(self.prompt.toPlainText(), self._request_params, outputs)
        self.history_list.show_entries(self.history.entries)
        self._set_status("Done. Hover a token for its alternatives; click one to continue from it.")
        self.generation_finished.emit(entry)

    # ------------------------------------------------------------------ view
    def _update_header(self, s: Side, note: str = "") -> None:
        name = checkpoint_label(s.picker.checkpoint()) if s.picker.checkpoint() else "no checkpoint"
        n = len(s.output.tokens)
        if note:
            state = note
        elif s.rid:
            dt = max(time.monotonic() - s.t0, 1e-6)
            state = f"generating… {n} tokens, {(n - s.offset) / dt:.0f} tok/s" if n > s.offset else "generating…"
        elif s.error:
            state = f"<span style='color:#d93025'>{s.error}</span>"
        elif s.result is not None:
            state = f"{n} tokens, stopped by {s.result.get('stopped_by')}"
        else:
            state = "idle"
        s.header.setText(f"<b>{s.name} · {name}</b> &nbsp; <span style='color:#57606a'>{state}</span>")

    def _update_buttons(self) -> None:
        busy = self.is_busy()
        self.generate_button.setEnabled(not busy)
        self.stop_button.setEnabled(busy)
        self.inspect_button.setEnabled(not busy and self.sides["A"].result is not None)

    def _on_compare_toggled(self, on: bool) -> None:
        self.sides["B"].picker.setEnabled(on)
        self.outputs.widget(1).setVisible(on)

    def _on_colour_toggled(self, on: bool) -> None:
        for s in self.sides.values():
            s.output.set_colouring(on)

    def _on_inspect_clicked(self) -> None:
        s = self.sides["A"]
        if s.worker is not None and s.result is not None:
            self.inspect_attention_requested.emit(s.worker.checkpoint, s.output.prompt + s.output.output_text())

    def _on_output_token_clicked(self, side: str, index: int, pos: QPoint) -> None:
        s = self.sides[side]
        ev = s.output.tokens[index]
        if s.rid or s.result is None or not ev.get("top"):
            return
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
