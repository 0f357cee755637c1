"""The small questions the run actions ask: a new name, a confirmation before the trash, notes and tags,
how many more steps. Each returns the answer (None when cancelled); tests replace these functions."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QInputDialog,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QWidget,
)


def ask_rename(parent: QWidget, name: str, text: str = "", problem: str = "") -> str | None:
    """The new name; asked again with `problem` (why the last answer was refused) above the question and
    `text` (a usable variant of it) filled in."""
    question = (f"{problem[:1].upper()}{problem[1:]}.\n\n" if problem else "") + f"New name for {name}:"
    text, ok = QInputDialog.getText(parent, "Rename run", question, QLineEdit.EchoMode.Normal, text or name)
    return text.strip() if ok and text.strip() else None


def confirm_delete(parent: QWidget, name: str, children: list[str] | tuple[str, ...] = (),
                   adapters: list[str] | tuple[str, ...] = ()) -> bool:
    made = (f"\n\nRuns made from it ({', '.join(children)}) keep their own files, but a fork that has not "
            "started yet loses the checkpoint it starts from." if children else "")
    if adapters:
        made += (f"\n\nLoRA fine-tunes of it ({', '.join(adapters)}) hold only adapters: they cannot be "
                 "loaded, resumed or exported without it until it is restored (or merge them first).")
    return _ask_to_trash(parent, "Move run to the trash",
                         f"Move the run {name} (its config, metrics and checkpoints) to the trash?{made}")


def confirm_delete_data(parent: QWidget, name: str, users: list[str]) -> bool:
    """Ask before a data set goes to the trash, naming the runs that train on it."""
    uses = (f"\n\nRuns that train on it ({', '.join(users)}) cannot start, resume or continue until a data set "
            f"is prepared as data/{name} again; their checkpoints keep their tokenizer, so Generate, Attention, "
            f"Evaluate and Export still work." if users else "\n\nNo run trains on it.")
    return _ask_to_trash(parent, "Move data set to the trash",
                         f"Move the data set {name} (its tokens and tokenizer) to the trash?{uses}")


def _ask_to_trash(parent: QWidget, title: str, text: str) -> bool:
    """Yes / Cancel (the default) under `text` and where it can be had back from."""
    answer = QMessageBox.question(
        parent, title, f"{text}\n\nIt can be restored from the desktop's trash.",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Cancel)
    return answer == QMessageBox.StandardButton.Yes


def ask_more_steps(parent: QWidget, name: str, current: int) -> int | None:
    more, ok = QInputDialog.getInt(parent, "Continue training",
                                   f"{name} has trained {current:,} steps. Train for how many more?\n\n"
                                   "The learning rate schedule starts over here: a fresh warm-up to train.lr\n"
                                   "and a decay to train.min_lr by the new last step. The loss rises for a\n"
                                   "while, then falls further than going on at the rate it had reached (a run\n"
                                   "still at its peak rate, constant or wsd before its decay, goes on at it).",
                                   max(1, current // 2 or 100), 1, 10_000_000, 100)
    return more if ok else None


class NotesDialog(QDialog):
    """Free-text notes and comma-separated tags of one run."""

    def __init__(self, name: str, notes: str, tags: list[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Notes and tags: {name}")
        self.tags_edit = QLineEdit(", ".join(tags))
        self.tags_edit.setPlaceholderText("baseline, lr-sweep")
        self.notes_edit = QPlainTextEdit(notes)
        self.notes_edit.setPlaceholderText("What this run tries, what came out of it…")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow("Tags", self.tags_edit)
        form.addRow("Notes", self.notes_edit)
        form.addRow(buttons)
        self.resize(460, 300)


def ask_notes(parent: QWidget, name: str, notes: str, tags: list[str]) -> tuple[str, str] | None:
    """(notes, tags text) or None."""
    dialog = NotesDialog(name, notes, tags, parent)
    if dialog.exec() != QDialog.DialogCode.Accepted:
        return None
    return dialog.notes_edit.toPlainText(), dialog.tags_edit.text()
