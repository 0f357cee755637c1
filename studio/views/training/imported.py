"""The Training tab's note on an imported model (a base model, nothing to train here), whose links lead to
what it is for: the Generate and Attention tabs, the Fine-tune dialog with it as the base, Export."""

from __future__ import annotations

from html import escape

NOTE = ("{what} imported from {source}: nothing to train here. Talk to it on the "
        "<a href='generate'>Generate</a> tab, look inside it on <a href='attention'>Attention</a>, "
        "<a href='finetune'>fine-tune it on your data</a> (Run → Fine-tune on My Data…, Ctrl+Shift+U), or "
        "<a href='export'>export it</a>.")


def imported_note(source: str, model: str = "", base_run: str | None = None) -> str:
    """The note, with what the model is (`model_line`) under it when known; `base_run`: the run folder of the
    base model an imported LoRA adapter goes on."""
    import os

    what = (f"A LoRA adapter on {escape(os.path.basename(base_run))}," if base_run else "A pretrained model")
    return NOTE.format(what=what, source=escape(source or "a file")) + (
        f"<br><br>The model: {escape(model)}." if model else "")


def model_line(run) -> str:
    """'2 layers × 32 wide, 4 heads (2 key/value), vocabulary 400, context 64; instruction data uses its own
    chat template' for an imported run's weights, '' when they cannot be read (the note still stands)."""
    from core.errors import UsageError
    from studio.controllers.finetune import read_base

    checkpoints = run.checkpoints()
    try:
        return read_base(checkpoints[-1].path).summary() if checkpoints else ""
    except UsageError:
        return ""


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
