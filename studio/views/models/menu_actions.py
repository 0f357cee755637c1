"""The main window's model menu entries (File -> Import Model…, Run -> Export Checkpoint…), kept here so
main_window.py only wires two actions."""

from __future__ import annotations

from studio.views.models.export_dialog import run_export_dialog
from studio.views.models.import_dialog import run_import_dialog


def import_model(window) -> None:
    """The imported model becomes a run folder (a base model); the runs list is refreshed to show it."""
    if window.session.workspace is not None:
        run_import_dialog(window.session.workspace, window)
        window.session.refresh()


def export_checkpoint(window) -> None:
    """Export the current run's latest checkpoint."""
    run_export_dialog(window.current_dir, window)
