"""HistoryList: the workspace's prompt history (studio.controllers.generation_history) as a list, chat
conversations marked "Chat:" with their message count; a click asks for an entry to be put back (`entry_requested`).
"""

from __future__ import annotations

import time

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QListWidget, QListWidgetItem, QWidget

from studio.workspace.checkpoints import checkpoint_label


class HistoryList(QListWidget):
    entry_requested = Signal(dict)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setAlternatingRowColors(True)
        self.setWordWrap(True)
        self.itemActivated.connect(self._on_item_activated)
        self.itemClicked.connect(self._on_item_activated)

    def show_entries(self, entries: list[dict]) -> None:
        self.clear()
        for e in entries:
            first = (e.get("prompt") or "").strip().splitlines()[:1]
            when = time.strftime("%d %b %H:%M", time.localtime(e.get("time", 0)))
            if e.get("kind") == "chat":
                first = [f"Chat: {first[0] if first else ''}"]
                names = f"{checkpoint_label(e.get('checkpoint', ''))} · {len(e.get('messages') or [])} messages"
            else:
                names = ", ".join(checkpoint_label(o.get("checkpoint", "")) for o in e.get("outputs", []))
            item = QListWidgetItem(f"{(first[0] if first else '(empty prompt)')[:60]}\n{when} · {names}")
            item.setData(Qt.ItemDataRole.UserRole, e)
            item.setToolTip((e.get("prompt") or "")[:500])
            self.addItem(item)

    def _on_item_activated(self, item: QListWidgetItem) -> None:
        self.entry_requested.emit(item.data(Qt.ItemDataRole.UserRole))
