"""Export of the selected run's plots (PNG/SVG through the plots widget) or its metrics (CSV)."""

from __future__ import annotations

import os

from PySide6.QtWidgets import QFileDialog

FILTERS = {"png": "PNG image (*.png)", "svg": "SVG image (*.svg)", "csv": "CSV table (*.csv)"}


def ask_and_export(window, fmt: str) -> None:
    """Ask where to save (next to the run by default), then export."""
    ctl = window.controller()
    if window.training is None or ctl is None:
        return
    default = os.path.join(ctl.run.dir, f"{ctl.run.name}.{fmt}")
    path, _ = QFileDialog.getSaveFileName(window, "Export", default, FILTERS[fmt])
    if path:
        export_to(window, path)


def export_to(window, path: str) -> None:
    """CSV of the run's metrics history, or an image of the plots, by the path's extension."""
    from studio.workspace.metrics import write_csv

    try:
        if path.lower().endswith(".csv"):
            write_csv(window.controller().history, path)
        else:
            window.training.plots.export_image(path)
    except OSError as exc:  # a read-only folder, a full disk: say so, keep the window
        window.statusBar().showMessage(f"Could not export {path}: {exc.strerror or exc}", 10000)
        return
    window.statusBar().showMessage(f"Exported {path}", 5000)
