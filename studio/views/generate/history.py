"""Prompt history of a workspace: GenerationHistory (a JSON file in the workspace folder) and HistoryList.

One entry per finished generation: when, the prompt, the settings, and per checkpoint the text and why
it stopped. The newest entries come first; the file keeps the last MAX_ENTRIES and is written atomically.
"""

from __future__ import annotations

import json
import os
import time

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QListWidget, QListWidgetItem, QWidget

from studio.views.common.checkpoint_picker import checkpoint_label

HISTORY_FILE = "generation_history.json"
MAX_ENTRIES = 200


class GenerationHistory:
    def __init__(self, workspace_root: str = ""):
        self.path = os.path.join(workspace_root, HISTORY_FILE) if workspace_root else ""
        self.entries: list[dict] = []
        if self.path:
            try:
                with open(self.path, encoding="utf-8") as fh:
                    data = json.load(fh)
                self.entries = [e for e in data.get("entries", []) if isinstance(e, dict)]
            except (OSError, ValueError, AttributeError):
                self.entries = []

    def add(self, prompt: str, params: dict, outputs: list[dict]) -> dict:
        entry = {"time": time.time(), "prompt": prompt, "params": params, "outputs": outputs}
        self.entries.insert(0, entry)
        del self.entries[MAX_ENTRIES:]
        self.save()
        return entry

    def save(self) -> None:
        if not self.path:
            return
        tmp = f"{self.path}.tmp-{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump({"version": 1, "entries": self.entries}, fh, ensure_ascii=False, indent=1)
        os.replace(tmp, self.path)


class HistoryList(QListWidget):
    entry_chosen = Signal(dict)

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
            names = ", ".join(checkpoint_label(o.get("checkpoint", "")) for o in e.get("outputs", []))
            item = QListWidgetItem(f"{(first[0] if first else '(empty prompt)')[:60]}\n{when} · {names}")
            item.setData(Qt.ItemDataRole.UserRole, e)
            item.setToolTip((e.get("prompt") or "")[:500])
            self.addItem(item)

    def _on_item_activated(self, item: QListWidgetItem) -> None:
        self.entry_chosen.emit(item.data(Qt.ItemDataRole.UserRole))
