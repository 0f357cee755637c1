"""EvaluateActions: opens the Evaluate dialog and the results view for a run (Run menu, the runs list's
right-click menu) and refreshes the run's row in the runs list when an evaluation is saved."""

from __future__ import annotations

from PySide6.QtCore import QObject

from core.layout import is_checkpoint, latest_checkpoint
from studio.controllers.evaluate import EvalResult, EvaluateJob
from studio.views.evaluate.dialog import EvaluateDialog
from studio.views.evaluate.results import ResultsView
from studio.workspace.checkpoints import run_of


class EvaluateActions(QObject):
    def __init__(self, window, session, panel) -> None:
        super().__init__(window)
        self.window, self.session, self.panel = window, session, panel
        self.dialog: EvaluateDialog | None = None
        self.results: ResultsView | None = None
        panel.evaluate_requested.connect(self.open_dialog)
        panel.results_requested.connect(self.open_results)

    def _root(self) -> str:
        return self.session.workspace.root if self.session.workspace is not None else ""

    def open_dialog(self, run_dir: str | None = None) -> EvaluateDialog:
        """The Evaluate dialog on the run's latest checkpoint (any other can be picked in it); one at a time."""
        if self.dialog is not None and self.dialog.job.is_running():
            self.dialog.raise_()
            return self.dialog
        if self.dialog is not None:
            self.dialog.deleteLater()
        dialog = EvaluateDialog(EvaluateJob(), self._root(), run_dir or "", parent=self.window)
        dialog.job.setParent(dialog)  # the process ends with its dialog
        dialog.evaluated.connect(self._on_dialog_evaluated)
        dialog.results_requested.connect(self.open_results)
        self.dialog = dialog
        dialog.show()
        return dialog

    def open_results(self, where: str | None = None, select_path: str = "") -> ResultsView:
        """The results view of a checkpoint (or of a run's latest checkpoint)."""
        checkpoint = where if where and is_checkpoint(where) else (latest_checkpoint(where) if where else None)
        if self.results is not None:
            self.results.deleteLater()
        self.results = ResultsView(self._root(), checkpoint or "", parent=self.window)
        if select_path:
            self.results.reload(select_path)
        self.results.show()
        return self.results

    def _on_dialog_evaluated(self, result: EvalResult) -> None:
        run_dir = run_of(result.request.checkpoint)
        if run_dir and self.session.controller(run_dir) is not None:
            self.panel.update_run(self.session.summary(self.session.controller(run_dir).run.dir))
        if self.results is not None and self.results.isVisible() \
                and self.results.picker.checkpoint() == result.request.checkpoint:
            self.results.reload(result.evaluation.path if result.evaluation else "")
