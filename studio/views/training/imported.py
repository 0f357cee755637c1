"""The Training tab's note on an imported model (a base model, nothing to train here), whose links lead to
what it is for: the Generate and Attention tabs, the Fine-tune dialog with it as the base, Export."""

from __future__ import annotations

from html import escape

NOTE = ("A pretrained model imported from {source}: nothing to train here. Talk to it on the "
        "<a href='generate'>Generate</a> tab, look inside it on <a href='attention'>Attention</a>, "
        "<a href='finetune'>fine-tune it on your data</a> (Run → Fine-tune on My Data…, Ctrl+Shift+U), or "
        "<a href='export'>export it</a>.")


def imported_note(source: str) -> str:
    return NOTE.format(source=escape(source or "a file"))


def follow(window, link: str) -> None:
    """Open what a link of the note names, for the window's current run."""
    if link in ("generate", "attention"):
        window.show_tab(link)
    elif link == "finetune":
        from studio.views.finetune.dialog import open_finetune

        open_finetune(window, window.current_dir)
    elif link == "export":
        from studio.views.models.menu_actions import export_checkpoint

        export_checkpoint(window)
