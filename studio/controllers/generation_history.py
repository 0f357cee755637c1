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
from studio.workspace.annotations import inside

HISTORY_FILE = "generation_history.json"
MAX_ENTRIES = 200
VERSION = 1


class GenerationHistory:
    def __init__(self, workspace_root: str = ""):
        self.path = os.path.join(workspace_root, HISTORY_FILE) if workspace_root else ""
        entries = read_json(self.path).get("entries", []) if self.path else []
        self.entries: list[dict] = [_clean(e) for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []

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

    def moved(self, old_dir: str, new_dir: str) -> int:
        """A run folder was renamed: the entries' checkpoint paths in it follow (they named the old folder: a
        click on one said its checkpoint was gone, and the list showed the old name). How many changed."""
        old = os.path.normpath(old_dir)
        count = 0

        def follow(path):
            nonlocal count
            if not path or not inside(os.path.normpath(path), old):  # a relative or empty path: not in the run
                return path
            count += 1
            return os.path.join(new_dir, os.path.relpath(path, old))

        for entry in self.entries:
            if "checkpoint" in entry:  # a conversation
                entry["checkpoint"] = follow(entry["checkpoint"])
            for output in entry.get("outputs") or []:
                if isinstance(output, dict) and "checkpoint" in output:
                    output["checkpoint"] = follow(output["checkpoint"])
        if count:
            self.save()
        return count

    def save(self) -> None:
        if self.path:
            atomic_write_json(self.path, {"version": VERSION, "entries": self.entries}, indent=1)


def _clean(entry: dict) -> dict:
    """An entry as the views read it, whatever a hand-edited or damaged file holds: text fields are strings,
    outputs a list of dicts (a null checkpoint stopped the history list with a TypeError)."""
    for key in ("prompt", "checkpoint"):
        if key in entry and not isinstance(entry[key], str):
            entry[key] = ""
    outputs = entry.get("outputs", [])
    entry["outputs"] = [o for o in outputs if isinstance(o, dict)] if isinstance(outputs, list) else []
    for output in entry["outputs"]:
        for key in ("checkpoint", "text"):
            if not isinstance(output.get(key, ""), str):
                output[key] = ""
    return entry
