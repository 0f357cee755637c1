"""The main window's model menu entries (File -> Import Model…, Run -> Export Checkpoint…), kept here so
main_window.py only wires two actions."""

from __future__ import annotations

import os

from studio.views.models.export_dialog import run_export_dialog
from studio.views.models.import_dialog import run_import_dialog


def import_model(window) -> None:
    """The imported model becomes a run folder (a base model); the runs list shows it selected as soon as
    it is written (the dialog says it is there), with what to do with it in the status bar."""
    if window.session.workspace is None:
        return

    def show(result) -> None:
        window.session.refresh()
        if window.session.controller(result.run_dir) is not None:
            window.runs_panel.select_run(result.run_dir)
            window.statusBar().showMessage(f"Imported {os.path.basename(result.run_dir)}: talk to it on the Generate "
                                           f"tab, look inside on Attention, or right-click it to fine-tune", 15000)

    run_import_dialog(window.session.workspace, window, on_imported=show)


def export_checkpoint(window) -> None:
    """Export the current run's latest checkpoint; a run without one says so (the menu entry did nothing)."""
    from core.layout import latest_checkpoint

    run_dir = window.current_dir
    if run_dir and not latest_checkpoint(run_dir):
        window.statusBar().showMessage(f"{os.path.basename(run_dir)} has no checkpoint to export yet: training "
                                       "writes one at every checkpoint interval and when it ends or is stopped",
                                       15000)
        return
    run_export_dialog(run_dir, window)
