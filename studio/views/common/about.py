"""Help texts and the About dialog (version, and the engine's torch/CUDA build asked from the engine).

The studio never imports torch, so the About dialog asks the engine: it runs `llm-train version --json`
(through studio.controllers.engine_info, so from a bundle it is the bundle's own engine) and fills in
the torch build, CUDA version and GPUs when the answer arrives; the answer is kept for the session.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QMenuBar, QVBoxLayout, QWidget

from core import __version__ as studio_version
from studio.controllers import engine_info


def engine_build_text(info: dict) -> str:
    """'torch 2.13.0+cpu, CPU build' or 'torch 2.13.0, CUDA 12.8; GPUs: NVIDIA H100' from the engine's answer."""
    build = f"CUDA {info['cuda']}" if info.get("cuda") else "CPU build"
    gpus = info.get("gpus") or []
    if gpus:
        seen = f"GPUs: {', '.join(gpus)}"
    elif info.get("mps_available"):
        seen = "Apple GPU (MPS)"
    elif info.get("cuda"):
        seen = "no GPU found"
    else:
        seen = ""
    return ", ".join(p for p in (f"torch {info.get('torch', '?')}", build, seen) if p)


def about_html(engine: dict | None = None, engine_status: str = "asking the engine…") -> str:
    """The About text; `engine` is the engine's `version --json` answer, or None while it is unknown."""
    from PySide6 import __version__ as pyside_version

    if engine is not None:
        bundle = " (bundled)" if engine.get("frozen") else ""
        engine_line = (f"Engine{bundle}: {html.escape(engine_build_text(engine))}, "
                       f"Python {html.escape(str(engine.get('python', '?')))}")
    else:
        engine_line = f"Engine: {html.escape(engine_status)}"
    return ("<h3>LLM Training Studio</h3>"
            f"<p>Version {html.escape(studio_version)}</p>"
            "<p>Train, watch, inspect and talk to your own GPT-style language "
            "model on a workstation.</p><p>The window never imports torch: every run is an engine process "
            "(<code>llm-train</code>) that writes its run folder; the studio follows it.</p>"
            f"<p><small>{engine_line}<br>PySide6 {pyside_version}</small></p>")


class AboutDialog(QDialog):
    """The About box; asks the engine for its build in the background unless the answer is known."""

    engine_info_received = Signal(object)  # the engine's answer (dict), or None when it could not tell

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("About LLM Training Studio")
        self.label = QLabel(about_html(engine_info.known()))
        self.label.setTextFormat(Qt.TextFormat.RichText)
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok)
        buttons.accepted.connect(self.accept)
        layout = QVBoxLayout(self)
        layout.addWidget(self.label)
        layout.addWidget(buttons)
        self.setMinimumWidth(420)
        self.process: engine_info.EngineInfoQuery | None = None  # None when the answer is known
        if engine_info.known() is None:
            self.process = engine_info.EngineInfoQuery(self)
            self.process.answered.connect(self._on_process_answered)
            self.process.failed.connect(self._on_process_failed)
            self.process.start()

    def _on_process_answered(self, answer: dict) -> None:
        self.label.setText(about_html(answer))
        self.engine_info_received.emit(answer)

    def _on_process_failed(self, message: str) -> None:
        self.label.setText(about_html(None, message))
        self.engine_info_received.emit(None)

    def done(self, result: int) -> None:
        if self.process is not None:
            self.process.cancel()
        super().done(result)


def show_about(parent: QWidget) -> AboutDialog:
    """Open the About dialog (window-modal, not blocking the event loop)."""
    dialog = AboutDialog(parent)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.open()
    return dialog


def shortcuts_html(menu_bar: QMenuBar) -> str:
    """Every menu action with a shortcut (submenus' too: Export Plots), then the panels' own keys."""
    rows = list(_menu_shortcuts(menu_bar.actions()))
    for name, keys in PANEL_KEYS:  # the panels' own keys (buttons, the chat box), not in any menu
        # one key or several ("Enter / Shift+Enter"): each in the platform's words (a whole "a / b" is no key)
        rows.append((name, " / ".join(QKeySequence(k).toString(QKeySequence.SequenceFormat.NativeText)
                                      for k in keys.split(" / "))))
    return "<table>" + "".join(f"<tr><td>{html.escape(name)}</td><td>&nbsp;&nbsp;<b>{html.escape(keys)}</b></td></tr>"
                               for name, keys in rows) + "</table>"


def _menu_shortcuts(actions, prefix: str | None = None):
    """(name, keys) of the actions with a shortcut, walking into submenus ("Export Plots: Image (PNG)…");
    prefix None: the menu bar's own entries (File, Run, …), not named in the rows."""
    for action in actions:
        name = action.text().replace("&", "")
        if action.menu() is not None:
            yield from _menu_shortcuts(action.menu().actions(), "" if prefix is None else f"{prefix}{name}: ")
            continue
        keys = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        if keys:
            yield (prefix or "") + name, keys


PANEL_KEYS = (("Generate (Generate tab)", "Ctrl+Return"), ("Stop generating", "Esc"),
              ("Send a chat message / new line", "Enter / Shift+Enter"),
              ("Compute (Attention tab)", "Ctrl+Return"))
