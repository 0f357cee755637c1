"""RunActions: the runs list's right-click intents (rename, move to trash, notes and tags, continue for
more steps, compare) asked about in dialogs and carried out by the WorkspaceSession.

Kept out of the main window so that it stays an assembler; the window passes itself for the dialogs'
parent, its status bar and `select_run`.
"""

from __future__ import annotations

import os

from PySide6.QtCore import QObject

from core.layout import checkpoint_step
from studio.controllers.runs import WorkspaceSession, fork_drops_target, reached_target
from studio.views.evaluate.actions import EvaluateActions
from studio.views.finetune.dialog import open_finetune
from studio.views.models.export_dialog import run_export_dialog
from studio.views.runs import dialogs
from studio.views.runs.compare import CompareView
from studio.views.runs.panel import RunsPanel
from studio.workspace.annotations import lora_children, parse_tags
from studio.workspace.workspace import safe_name, with_changes

NO_RUN = ("No run in this workspace yet. New makes one, on the data set prepared last (prepare one on the "
          "Data tab first), or File → Import Model… brings a pretrained one.")


class RunActions(QObject):
    """Routes RunsPanel's run intents to the session."""

    def __init__(self, window, session: WorkspaceSession, panel: RunsPanel) -> None:
        super().__init__(window)
        self.window, self.session, self.panel = window, session, panel
        self.trash: str | None = None    # None: the desktop's trash (tests point it elsewhere)
        self.compare_view: CompareView | None = None
        self.lr_dialog = None  # the last Find Learning Rate dialog
        panel.rename_requested.connect(self.rename)
        panel.delete_requested.connect(self.delete)
        panel.annotate_requested.connect(self.annotate)
        panel.continue_requested.connect(self.continue_run)
        panel.compare_requested.connect(self.compare)
        panel.finetune_requested.connect(lambda run_dir: open_finetune(window, run_dir))
        panel.export_requested.connect(lambda run_dir: run_export_dialog(run_dir, window))
        self.evaluate = EvaluateActions(window, session, panel)  # Evaluate… and the saved results
        session.prepare_job.finished.connect(self._on_prepare_job_finished)
        session.run_gone.connect(self._on_session_run_gone)

    def _say(self, text: str, ms: int = 8000) -> None:
        self.window.statusBar().showMessage(text, ms)

    def rename(self, run_dir: str) -> str | None:
        ctl = self.session.controller(run_dir)
        if ctl is None:
            return None
        if ctl.is_running():  # said before asking for a name (the Run menu and F2 reach here too)
            self._say(f"Cannot rename {ctl.run.name} while it trains: stop it first")
            return None
        was_current = self.window.current_dir == ctl.run.dir
        text, why = ctl.run.name, ""
        while True:  # a refused name is asked again, with the reason and a usable variant filled in
            name = dialogs.ask_rename(self.window, ctl.run.name, text, why)
            if not name or name == ctl.run.name:
                return None
            new_dir, why = self.session.rename_run(run_dir, name)
            if new_dir is not None:
                break
            if ctl.is_running():
                self._say(f"Cannot rename {ctl.run.name}: {why}")
                return None
            text = safe_name(name) or name
        if self.window.generation is not None:  # the prompt history names the run's checkpoints
            self.window.generation.session.run_moved(run_dir, new_dir)
        if was_current:
            self.window.current_dir = None
        self.panel.select_run(new_dir)
        self.window.select_run(new_dir)
        self._say(f"Renamed {os.path.basename(run_dir)} to {name}")
        return new_dir

    def delete(self, run_dir: str) -> bool:
        ctl = self.session.controller(run_dir)
        if ctl is None:
            return False
        if ctl.is_running():  # said before the confirmation (the Run menu reaches here too)
            self._say(f"Cannot move {ctl.run.name} to the trash while it trains: stop it first", 0)
            return False
        children = [c.run.name for c in self.session.controllers.values() if c.run.parent_dir() == ctl.run.dir]
        adapters = lora_children([c.run for c in self.session.controllers.values()], ctl.run.dir)
        if not dialogs.confirm_delete(self.window, ctl.run.name, children, adapters):
            return False
        name, was_current = ctl.run.name, self.window.current_dir == ctl.run.dir
        dirs = list(self.session.controllers)
        why = self.session.delete_run(run_dir, self.trash)
        if why:
            self._say(f"Cannot delete {name}: {why}", 0)
            return False
        if was_current:
            self._show_neighbour(ctl.run.dir, dirs)
        self._say(f"Moved {name} to the trash")
        return True

    def trash_data_set(self, name: str) -> bool:
        """The Data tab's Move to Trash: asked first, naming the runs that train on it; refused while one does."""
        users = self.session.data_users(name)
        busy = [c.run.name for c in users if c.is_running()]
        if busy:  # said before the confirmation
            self._say(f"Cannot move {name} to the trash while {', '.join(busy)} trains on it: stop it first", 0)
            return False
        if not dialogs.confirm_delete_data(self.window, name, [c.run.name for c in users]):
            return False
        why = self.session.delete_data_set(name, self.trash)
        self._say(f"Cannot move {name} to the trash: {why}" if why else f"Moved the data set {name} to the trash",
                  0 if why else 8000)
        return not why

    def _show_neighbour(self, gone: str, dirs: list[str]) -> None:
        """The shown run `gone` is no more: show the one after it in `dirs` (the runs before it went), else
        the one before, else no run."""
        rest = [d for d in dirs if d != gone and self.session.controller(d) is not None]
        self.window.current_dir = None
        if rest:
            pick = rest[min(dirs.index(gone), len(rest) - 1)]
            self.panel.select_run(pick)
            self.window.select_run(pick)
        else:
            self.show_no_run()

    def _on_session_run_gone(self, run_dir: str, dirs: list) -> None:
        """A run folder went away outside the studio (a shell, a file manager): if it was shown, its config
        is not saved back (that would make the folder again) and a neighbour is shown."""
        if run_dir == self.window.current_dir:
            self._show_neighbour(run_dir, dirs)
            self._say(f"{os.path.basename(run_dir)} was moved or deleted outside the studio", 0)

    def show_no_run(self) -> None:
        """No run to show (an empty workspace, or its last run trashed): no other run's config, curves or
        console stay on screen (a new workspace showed the last one's run), and the Config tab says why."""
        w = self.window
        w.save_config()
        w.current_dir = None
        w.run_label.setText("")
        if w.training is not None:
            w.training.set_controller(None)
            w.system_monitor.follow(None)
            w.config_editor.show_no_run(NO_RUN)

    def _on_prepare_job_finished(self, result) -> None:
        """A data set prepared on the Data tab becomes the data of the runs that were waiting for one (New in a
        workspace without data): the shown run's pending edit is saved first, and the editor then shows the
        new data.dir."""
        if not result.ok or result.meta.get("kind") == "sft":
            return
        self.window.save_config()
        given = self.session.give_data(result.out)
        if not given:
            return
        editor, ctl = self.window.config_editor, self.window.controller()
        if editor is not None and ctl is not None and ctl.run.name in given:
            editor.set_text(ctl.run.read_config_text())
        self.session.data_changed.emit()  # the start blockers and estimates, with the data now there
        self._say(f"{', '.join(given)} will train on {os.path.basename(os.path.normpath(result.out))}, the data "
                  f"set just prepared (the one it named was never prepared)", 15000)

    def annotate(self, run_dir: str) -> bool:
        ctl = self.session.controller(run_dir)
        if ctl is None:
            return False
        s = self.session.summary(ctl.run.dir)
        answer = dialogs.ask_notes(self.window, ctl.run.name, s.get("notes", ""), s.get("tags", []))
        if answer is None:
            return False
        self.session.annotate(ctl.run.dir, notes=answer[0], tags=parse_tags(answer[1]))
        self.panel.apply_filter()
        return True

    def fork(self, run_dir: str | None) -> None:
        """Fork from Checkpoint…: the dialog, then the new run selected; a reached target it drops is said."""
        defaults = self.session.fork_defaults(run_dir) if run_dir else None
        if defaults is None:
            return
        from studio.views.runs.fork_dialog import ForkDialog

        ctl, train, name, rates = defaults
        dialog = ForkDialog(ctl.run.name, ctl.run.checkpoints(), train, name, rates, self.window)
        if dialog.exec() != ForkDialog.DialogCode.Accepted:
            return
        checkpoint, changes = dialog.checkpoint_path(), dialog.changes()
        dropped = fork_drops_target(ctl, checkpoint, changes)  # what the session's fork_run will clear
        run = self.session.fork_run(run_dir, checkpoint, changes, dialog.name.text())
        self.panel.select_run(run.dir)
        if dropped is not None:
            self._say(f"Forked {run.name} from step {checkpoint_step(checkpoint):,}: train.target_val_loss "
                      f"{dropped:g}, already reached there, is cleared")

    def continue_run(self, run_dir: str) -> bool:
        ctl = self.session.controller(run_dir)
        if ctl is None:
            return False
        if why := ctl.continue_blocker():  # said before asking for a number of steps it would then refuse
            self._say(f"Cannot continue {ctl.run.name}: {why}", 0)
            return False
        more = dialogs.ask_more_steps(self.window, ctl.run.name, ctl.history.step)
        if not more:
            return False
        training = self.window.training
        self.window.save_config()  # a pending edit of the shown run reaches config.yaml before max_steps rises
        share = self.window.core_share.launch() if training else {}  # the cores, as Start shares them
        target = reached_target(ctl)
        why = self.session.continue_run(run_dir, more, training.nproc() if training else 1,
                                        training.device() if training else "", **share)
        if why:
            self._say(f"Cannot continue {ctl.run.name}: {why}", 0)
            return False
        editor = self.window.config_editor
        if editor is not None and self.window.current_dir == ctl.run.dir:
            editor.set_text(ctl.run.read_config_text())  # shows the raised max_steps, not the text before it
        self.panel.select_run(ctl.run.dir)
        self.window.show_tab("training")
        self._say(f"Continuing {ctl.run.name} for {more} more steps…" + (
            f" (train.target_val_loss {target:g}, already reached, is cleared)" if target is not None else ""))
        return True

    def find_lr(self, run_dir: str):
        """Run → Find Learning Rate…: the range test on the run's saved config; Use writes train.lr (and a
        tenth of it as train.min_lr) into it. Not while it trains (the config is in use), nor for an imported
        model (nothing trains it here); None then, said in the status bar."""
        from studio.controllers.lr_find import LrFindJob
        from studio.views.config.lr_find import LrFindDialog

        ctl = self.session.controller(run_dir)
        if ctl is None:
            return None
        if ctl.is_running() or ctl.status == "imported":
            self._say(f"Cannot find a learning rate for {ctl.run.name}: {ctl.edit_lock()}", 0)
            return None
        self.window.save_config()  # the test reads config.yaml: a pending edit first
        if ctl.run.config_or_none() is None:
            self._say(f"Cannot find a learning rate for {ctl.run.name}: its config has problems (Config tab)", 0)
            return None
        if self.lr_dialog is not None and self.lr_dialog.job.is_running():  # one test at a time
            self.lr_dialog.raise_()
            return self.lr_dialog
        if self.lr_dialog is not None:
            self.lr_dialog.deleteLater()
        dialog = LrFindDialog(LrFindJob(), ctl.run.name, ctl.run.config_path, parent=self.window)
        dialog.job.setParent(dialog)  # the process ends with its dialog
        dialog.use_lr.connect(lambda lr: self._use_lr(ctl.run.dir, lr))
        dialog.show()
        self.lr_dialog = dialog
        return dialog

    def _use_lr(self, run_dir: str, lr: float) -> None:
        ctl = self.session.controller(run_dir)
        if ctl is None or ctl.is_running():
            return
        ctl.run.write_config_text(with_changes(ctl.run.read_config_text(), {"train.lr": lr,
                                                                            "train.min_lr": lr / 10}))
        editor = self.window.config_editor
        if editor is not None and self.window.current_dir == ctl.run.dir:
            editor.set_text(ctl.run.read_config_text())
        self._say(f"{ctl.run.name}: train.lr {lr:g}, train.min_lr {lr / 10:g}")

    def compare(self, run_dirs: list[str]) -> CompareView:
        view = CompareView(self.session.compare(list(run_dirs)), tuple(run_dirs), self.window)
        view.export_requested.connect(self._on_compare_view_export_requested)
        if self.compare_view is None:
            self.session.run_updated.connect(self._on_session_run_updated)
        self.compare_view = view
        view.show()
        return view

    def _on_session_run_updated(self, run_dir: str) -> None:
        """A compared run trained on (or finished): the open comparison shows its new figures."""
        view = self.compare_view
        if view is not None and view.isVisible() and run_dir in view.run_dirs:
            view.set_table(self.session.compare(list(view.run_dirs)))

    def _on_compare_view_export_requested(self, path: str) -> None:
        if self.compare_view is None:
            return
        try:
            self.compare_view.shown.write_csv(path)
        except OSError as exc:  # a read-only folder, a full disk: say so, keep the window
            self._say(f"Could not export {path}: {exc.strerror or exc}")
            return
        self._say(f"Exported {path}")


def follow_preset(combo, config_text: str) -> None:
    """The Config tab's Preset box names the preset the selected run's config follows ("Load a preset…",
    its first entry, when none)."""
    from studio.views.config.yaml_tab import list_presets
    from studio.workspace.presets import matching_preset

    combo.setCurrentIndex(max(0, combo.findText(matching_preset(config_text, list_presets()) or "")))
