"""Help texts: the About box and the keyboard shortcut list (built from the menus themselves)."""

from __future__ import annotations

import html

from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QMenuBar


def about_html() -> str:
    from PySide6 import __version__ as pyside_version

    return ("<h3>LLM Training Studio</h3><p>Train, watch, inspect and talk to your own GPT-style language "
            "model on a workstation.</p><p>The window never imports torch: every run is an engine process "
            "(<code>llm-train</code>) that writes its run folder; the studio follows it.</p>"
            f"<p><small>PySide6 {pyside_version}</small></p>")


def shortcuts_html(menu_bar: QMenuBar) -> str:
    rows = []
    for menu_action in menu_bar.actions():
        menu = menu_action.menu()
        if menu is None:
            continue
        for action in menu.actions():
            keys = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
            if keys:
                name = html.escape(action.text().replace("&", ""))
                rows.append(f"<tr><td>{name}</td><td>&nbsp;&nbsp;<b>{html.escape(keys)}</b></td></tr>")
    return "<table>" + "".join(rows) + "</table>"
