"""GenerationHistory: the prompt history of a workspace, one JSON file in the workspace folder.

One entry per finished generation: when, the prompt, the settings, and per checkpoint the text and why
it stopped; and one per chat conversation (`kind: "chat"`: its id, checkpoint, system prompt and messages),
brought to the top and rewritten after each reply, so a conversation can be reopened and continued. The
newest entries come first; the file keeps the last MAX_ENTRIES and is written atomically
(core.layout), so a crash never leaves half a history.
"""

from __future__ import annotations

import os
import time

from core.layout import atomic_write_json, read_json

HISTORY_FILE = "generation_history.json"
MAX_ENTRIES = 200
VERSION = 1


class GenerationHistory:
    def __init__(self, workspace_root: str = ""):
        self.path = os.path.join(workspace_root, HISTORY_FILE) if workspace_root else ""
        entries = read_json(self.path).get("entries", []) if self.path else []
        self.entries: list[dict] = [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []

    def add(self, prompt: str, params: dict, outputs: list[dict]) -> dict:
        entry = {"time": time.time(), "prompt": prompt, "params": params, "outputs": outputs}
        self.entries.insert(0, entry)
        del self.entries[MAX_ENTRIES:]
        self.save()
        return entry

    def put(self, entry: dict) -> dict:
        """Add `entry` at the top, replacing the entry with its `id` (a conversation that went on)."""
        self.entries = [e for e in self.entries if not (entry.get("id") and e.get("id") == entry["id"])]
        self.entries.insert(0, entry)
        del self.entries[MAX_ENTRIES:]
        self.save()
        return entry

    def save(self) -> None:
        if self.path:
            atomic_write_json(self.path, {"version": VERSION, "entries": self.entries}, indent=1)
