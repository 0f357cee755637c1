"""MainWindow: assembles the runs list, the Data / Config / Training tabs, menus and status bar.

It only assembles: view intents are routed to the controllers (studio.controllers: the WorkspaceSession,
its RunControllers and PrepareJobs), their signals to the views, and window state (geometry, splitters,
theme, plot options) is kept in QSettings. Heavy panels (pyqtgraph, the config editor) are built right
after the first show, so the window appears fast.
"""

from __future__ import annotations

import os

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QLabel,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QTabWidget,
)

from studio import demo, plot_export, window_state
from studio.controllers.cores import CoreShare
from studio.controllers.runs import WorkspaceSession
from studio.controllers.system import SystemMonitor
from studio.settings import Settings
from studio.theme import apply_theme
from studio.views.finetune.dialog import open_finetune
from studio.views.models import menu_actions as model_menu
from studio.views.runs import workspace_dialogs
from studio.views.runs.actions import RunActions, follow_preset
from studio.views.runs.close_dialog import ask_about_running
from studio.views.runs.notifier import Notifier
from studio.views.runs.panel import RunsPanel

TABS = ("data", "config", "training", "generate", "attention")
TAB_TITLES = ("Data", "Config", "Training", "Generate", "Attention")
AUTOSAVE_MS = 500


class MainWindow(QMainWindow):
    """The studio's one window."""

    panels_built = Signal()

    def __init__(self, settings: Settings | None = None) -> None:
        super().__init__()
        self.settings = settings or Settings()
        self.session = WorkspaceSession(self)
        self.close_policy: str | None = None   # "stop" | "leave": answer the close question (tests)
        self.current_dir: str | None = None
        self.training = self.config_editor = self.data_panel = None
        self.generation = self.attention = self.inference_pool = None
        self.setWindowTitle("LLM Training Studio")
        self.setMinimumSize(760, 520)
        self.runs_panel = RunsPanel()
        self.runs_panel.setMinimumWidth(360)  # run names stay readable next to status, step, val, time
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self._pages = {}
        for name, title in zip(TABS, TAB_TITLES, strict=True):
            page = QLabel("Loading…", alignment=Qt.AlignmentFlag.AlignCenter)
            self._pages[name] = page
            self.tabs.addTab(page, title)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("main_splitter")
        self.splitter.addWidget(self.runs_panel)
        self.splitter.addWidget(self.tabs)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([430, 970])  # room for fork names (demo-fork-low-lr) and four columns
        self.setCentralWidget(self.splitter)
        self._build_status_bar()
        self._build_menus()
        self._autosave = QTimer(self)  # config edits reach config.yaml shortly after typing stops
        self._autosave.setSingleShot(True)
        self._autosave.setInterval(AUTOSAVE_MS)
        self._autosave.timeout.connect(self.save_config)
        self.runs_panel.run_selected.connect(self.select_run)
        self.runs_panel.compare_changed.connect(lambda _dirs: self._update_overlays())
        self.runs_panel.new_run_requested.connect(self.new_run)
        self.runs_panel.copy_run_requested.connect(self.copy_run)
        self.runs_panel.fork_run_requested.connect(self.fork_run)
        self.run_actions = RunActions(self, self.session, self.runs_panel)  # right-click intents
        self.notifier = Notifier(self)  # a run ended while the window is in the background
        self.session.runs_changed.connect(self._on_session_runs_changed)
        self.session.run_updated.connect(self._on_session_run_updated)
        self.session.run_finished.connect(self._on_session_run_finished)
        self.session.data_changed.connect(self._on_session_data_changed)
        self.session.status_message.connect(self.statusBar().showMessage)
        window_state.restore_window(self)

    # ------------------------------------------------------------------ construction
    def _build_status_bar(self) -> None:
        self.workspace_label, self.run_label = QLabel(), QLabel()
        self.statusBar().addPermanentWidget(self.run_label)
        self.statusBar().addPermanentWidget(self.workspace_label)

    def _action(self, menu, text: str, slot, shortcut=None, checkable: bool = False, tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.setCheckable(checkable)
        action.setStatusTip(tip)
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        m = bar.addMenu("&File")
        self._action(m, "&New Workspace…", self._on_new_workspace, "Ctrl+Shift+N")
        self._action(m, "&Open Workspace…", self._on_open_workspace, QKeySequence.StandardKey.Open)
        self.recent_menu = m.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        self._action(m, "Open &Demo Workspace", lambda: self.open_workspace(demo.ensure_demo_workspace().root))
        m.addSeparator()
        self._action(m, "&Import Model…", lambda: model_menu.import_model(self))
        export = m.addMenu("&Export Plots")
        self._action(export, "Image (PNG)…", lambda: self.export_plots("png"), "Ctrl+E")
        self._action(export, "Vector (SVG)…", lambda: self.export_plots("svg"))
        self._action(export, "Data (CSV)…", lambda: self.export_plots("csv"), "Ctrl+Shift+E")
        m.addSeparator()
        self._action(m, "&Quit", self.close, QKeySequence.StandardKey.Quit)

        m = bar.addMenu("&Run")
        self._action(m, "&New Run", self.new_run, QKeySequence.StandardKey.New)
        self.copy_action = self._action(m, "New Run from &This One", lambda: self.copy_run(self.current_dir),
                                        "Ctrl+D")
        self.fork_action = self._action(m, "&Fork from Checkpoint…", lambda: self.fork_run(self.current_dir),
                                        "Ctrl+Shift+F")
        self._action(m, "Fine-&tune on My Data…", lambda: open_finetune(self, self.current_dir),
                     "Ctrl+Shift+U")
        self.continue_action = self._action(m, "&Continue for More Steps…",
                                            lambda: self.run_actions.continue_run(self.current_dir))
        self._action(m, "Co&mpare with Ticked Runs…", lambda: self.run_actions.compare(
            self.runs_panel.compare_targets(self.current_dir)), "Ctrl+Shift+C")
        self._action(m, "Notes and T&ags…", lambda: self.run_actions.annotate(self.current_dir))
        self._action(m, "Rena&me…", lambda: self.run_actions.rename(self.current_dir), "F2")
        self._action(m, "Move to Tras&h…", lambda: self.run_actions.delete(self.current_dir))
        m.addSeparator()
        self.start_action = self._action(m, "&Start", lambda: self.start_training(), "Ctrl+R")
        self.stop_action = self._action(m, "S&top", self.stop_training, "Ctrl+.")
        self.resume_action = self._action(m, "&Resume", lambda: self.start_training(resume=True), "Ctrl+Shift+R")
        m.addSeparator()
        self._action(m, "E&xport Checkpoint…", lambda: model_menu.export_checkpoint(self))
        self._action(m, "E&valuate Checkpoint…", lambda: self.run_actions.evaluate.open_dialog(self.current_dir))
        self._action(m, "Find &Learning Rate…", lambda: self.run_actions.find_lr(self.current_dir))
        self._action(m, "&Multi-node Command…", lambda: self.show_multinode(1))

        m = bar.addMenu("&View")
        for i, (name, title) in enumerate(zip(TABS, ("&Data", "&Config", "&Training", "&Generate", "&Attention"), strict=True)):
            self._action(m, title, lambda _c=False, n=name: self.show_tab(n, focus=True), f"Ctrl+{i + 1}")
        m.addSeparator()
        self.runs_action = self._action(m, "Runs &List", self.runs_panel.setVisible, "Ctrl+B", checkable=True)
        self.runs_action.setChecked(True)
        self.log_action = self._action(m, "&Logarithmic Loss Axis", self._on_log_action_toggled, "Ctrl+L",
                                       checkable=True)
        xmenu = m.addMenu("&X Axis")
        group = QActionGroup(self)
        self.x_actions = {}
        for key, text in (("step", "Steps"), ("tokens", "Tokens"), ("time", "Wall Time")):
            act = self._action(xmenu, text, lambda _c=False, k=key: self._set_x_mode(k), checkable=True)
            group.addAction(act)
            self.x_actions[key] = act
        self.x_actions["step"].setChecked(True)
        m.addSeparator()
        self.dark_action = self._action(m, "&Dark Theme", self._on_dark_action_toggled, "Ctrl+Shift+T",
                                        checkable=True)

        m = bar.addMenu("&Help")
        self._action(m, "&Keyboard Shortcuts", self._show_shortcuts, QKeySequence.StandardKey.HelpContents)
        self._action(m, "&About LLM Training Studio", self._show_about)

    def ensure_panels(self) -> None:
        """Build the heavy tabs (idempotent); called right after the first show."""
        if self.training is not None:
            return
        from studio.engine.worker import WorkerPool
        from studio.views.attention.panel import AttentionPanel
        from studio.views.config.editor import ConfigEditor
        from studio.views.data.panel import DataPanel
        from studio.views.generate.panel import GenerationPanel
        from studio.views.training.panel import TrainingPanel

        self.data_panel = DataPanel(self.session.prepare_job)
        self.config_editor = ConfigEditor()
        self.training = TrainingPanel()
        self.inference_pool = WorkerPool(self)  # one inference worker per loaded checkpoint, shared
        self.generation = GenerationPanel(self.inference_pool)
        self.attention = AttentionPanel(self.inference_pool)
        self.core_share = CoreShare(self.session, self.inference_pool, parent=self)
        self.core_share.text_changed.connect(lambda text: self.generation.set_core_share(
            text, "Workers started before a run began keep their threads until their checkpoint is loaded again."))
        self.generation.inspect_attention_requested.connect(self._on_generation_inspect_attention_requested)
        for name, widget in (("data", self.data_panel), ("config", self.config_editor),
                             ("training", self.training), ("generate", self.generation),
                             ("attention", self.attention)):
            index, current = TABS.index(name), self.tabs.currentIndex()
            self.tabs.removeTab(index)
            self.tabs.insertTab(index, widget, TAB_TITLES[index])
            self._pages[name].deleteLater()
            self._pages[name] = widget
            self.tabs.setCurrentIndex(current)
        self.data_panel.prepare_requested.connect(self.session.prepare)
        self.data_panel.cancel_requested.connect(self.session.prepare_job.cancel)
        self.data_panel.trash_requested.connect(self.run_actions.trash_data_set)
        for slot in (self._update_start_blockers, self._autosave.start, self._update_time_estimate):
            self.config_editor.changed.connect(slot)
        self.config_editor.validity_changed.connect(lambda _ok, _msg: self._update_start_blockers())
        t = self.training
        t.device_combo.currentIndexChanged.connect(lambda _i: self._update_start_blockers())
        t.start_requested.connect(lambda n, dev: self.start_training(False, n, dev))
        t.resume_requested.connect(lambda n, dev: self.start_training(True, n, dev))
        t.stop_requested.connect(self.stop_training)
        t.multinode_requested.connect(self.show_multinode)
        t.plots.export_requested.connect(self.export_plots)
        self.system_monitor = SystemMonitor(self)  # CPU / RAM / GPU of the selected run while it trains
        t.system.set_monitor(self.system_monitor)
        window_state.restore_panels(self, TABS.index("training"))
        self.core_share.update()  # training takes every core while no inference request computes
        for panel in (self.data_panel, self.generation, self.attention) if self.session.workspace else ():
            panel.set_workspace(self.session.workspace.root)
        if self.current_dir:
            dir_, self.current_dir = self.current_dir, None
            self.select_run(dir_)
        elif self.session.workspace is not None:  # an empty workspace opened before the panels were built
            self.run_actions.show_no_run()
        self.panels_built.emit()

    def showEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().showEvent(event)
        if self.training is None:
            QTimer.singleShot(0, self.ensure_panels)

    # ------------------------------------------------------------------ workspace
    def open_workspace(self, root: str) -> None:
        ws = self.session.open(root)
        self.statusBar().clearMessage()  # the last workspace's news ('Demo data ready: press Start…')
        self.settings.add_recent_workspace(ws.root)
        self.setWindowTitle(f"{ws.name} — LLM Training Studio")
        self.workspace_label.setText(ws.root)
        for panel in (self.data_panel, self.generation, self.attention):
            if panel is not None:
                panel.set_workspace(ws.root)
        pick = self.session.initial_run()
        if pick:
            self.runs_panel.select_run(pick)
        else:
            self.run_actions.show_no_run()
        running = self.session.running()
        if running:
            self.statusBar().showMessage(f"Following {len(running)} run(s) still training", 8000)
        self.session.prepare_demo_data()

    def _on_session_data_changed(self) -> None:
        if self.data_panel is not None and self.session.workspace is not None:
            self.data_panel.set_workspace(self.session.workspace.root)
        if self.config_editor is not None:
            self.config_editor.revalidate()  # the estimates' vocabulary comes from the data's meta.json
        self._update_start_blockers()

    # ------------------------------------------------------------------ runs
    def controller(self):
        return self.session.controller(self.current_dir) if self.current_dir else None

    def select_run(self, run_dir: str) -> None:
        if run_dir == self.current_dir:
            return
        self.save_config()  # the run being left keeps its edits
        self.current_dir = run_dir
        ctl = self.session.select(run_dir)
        if ctl is None:
            return
        self.runs_panel.select_run(run_dir)
        if self.training is None:
            return
        self.config_editor.set_base_dir(ctl.run.dir)
        self.attention.set_run_dir(ctl.run.dir)  # its step slider follows the selected run's snapshots
        self.generation.set_run_dir(ctl.run.dir)  # the pickers preselect its latest checkpoint
        self.config_editor.set_checks(ctl.shape_problems)  # a trained run keeps its checkpoints' shape
        self.config_editor.set_text(ctl.run.read_config_text())
        follow_preset(self.config_editor.preset_combo, ctl.run.read_config_text())
        self.data_panel.follow_run(self.config_editor.config())  # the Data tab selects the run's data set
        self.training.set_controller(ctl)
        self.system_monitor.follow(ctl)
        self._update_overlays()
        self._update_start_blockers()
        self._update_actions()

    def save_config(self) -> None:
        """Autosave: the editor's text (comments kept) goes to the shown run's config.yaml, atomically."""
        self._autosave.stop()
        ctl = self.controller()
        if ctl is not None and self.config_editor is not None and ctl.save_config_text(self.config_editor.text()):
            self.statusBar().showMessage(f"Saved {ctl.run.name}/config.yaml", 2000)

    def _update_time_estimate(self) -> None:
        from studio.controllers.timing import measured_speed, time_estimate

        cfg, est, ctl = self.config_editor.config(), self.config_editor.last_estimate(), self.controller()
        if cfg is not None and est is not None:  # a stopped run resumes at its step: only the rest is estimated
            speed = measured_speed(self.session.controllers.values(), device=cfg.train.device)
            done, imported = (ctl.history.step, ctl.status == "imported") if ctl else (0, False)
            self.config_editor.estimates.show_timing(None if imported else time_estimate(cfg, est, speed, done),
                                                     cfg.train.device, imported)

    def _update_overlays(self) -> None:
        if self.training is not None and self.current_dir is not None:
            self.training.plots.set_overlays(self.session.overlays(self.current_dir, self.runs_panel.compared()))

    def _update_start_blockers(self) -> None:
        ctl = self.controller()
        if ctl is not None and self.training is not None:  # a new run's bar counts the steps as edited
            text = self.config_editor.text()
            blockers = ctl.start_blockers(text, self.training.device())
            self.training.set_start_blockers(blockers, ctl.planned_steps(text), ctl.resume_note(text))
            self._update_actions()

    def _update_actions(self) -> None:
        ctl = self.controller()
        new = ctl is not None and ctl.startable()
        self.start_action.setEnabled(bool(new and self.training and self.training.start_button.isEnabled()))
        self.stop_action.setEnabled(ctl is not None and ctl.is_running())
        self.resume_action.setEnabled(ctl is not None and ctl.can_resume())
        self.continue_action.setEnabled(ctl is not None and not ctl.continue_blocker())
        self.copy_action.setEnabled(ctl is not None)
        self.fork_action.setEnabled(ctl is not None and bool(ctl.run.checkpoints()))
        self.run_label.setText(f"{ctl.run.name}: {ctl.status}" if ctl is not None else "")
        if ctl is not None and self.config_editor is not None:
            self.config_editor.set_locked(ctl.edit_lock())  # read-only while the run trains with it

    def start_training(self, resume: bool = False, nproc: int | None = None, device: str | None = None) -> bool:
        ctl = self.controller()
        if ctl is None or self.training is None:
            return False
        problems = ctl.request_start(self.config_editor.text(), resume,
                                     self.training.nproc() if nproc is None else nproc,
                                     self.training.device() if device is None else device,
                                     **self.core_share.launch())
        if problems:
            self.training.set_start_blockers(problems)
            return False
        self.show_tab("training")
        self.statusBar().showMessage(f"{'Resuming' if resume else 'Starting'} {ctl.run.name}…", 5000)
        self._update_actions()
        return True

    def stop_training(self) -> None:
        ctl = self.controller()
        if ctl is not None and ctl.is_running():
            ctl.stop()
            self.statusBar().showMessage(f"Stopping {ctl.run.name}: finishing the step and writing a "
                                         "checkpoint…")
            if self.training is not None:
                self.training.refresh()

    def new_run(self) -> None:
        run = self.session.new_run()
        if run is not None:
            self.runs_panel.select_run(run.dir)
            self.show_tab("config")

    def copy_run(self, run_dir: str | None) -> None:
        if run_dir:
            run = self.session.copy_run(run_dir)
            self.runs_panel.select_run(run.dir)
            self.show_tab("config")

    def fork_run(self, run_dir: str | None) -> None:
        self.run_actions.fork(run_dir)

    def show_multinode(self, nproc: int) -> None:
        ctl = self.controller()
        if ctl is None:
            return
        from studio.controllers.run import device_overrides, multinode_plan
        from studio.views.training.multinode_dialog import MultiNodeDialog

        device = self.training.device() if self.training is not None else ""
        MultiNodeDialog(ctl.run.config_path, device_overrides(device), nproc, self, *multinode_plan(ctl)).exec()

    # ------------------------------------------------------------------ session slots
    def _on_session_runs_changed(self) -> None:
        self.runs_panel.set_runs(self.session.summaries())

    def _on_session_run_updated(self, run_dir: str) -> None:
        if run_dir in self.session.controllers:
            self.runs_panel.update_run(self.session.summary(run_dir))
        if self.generation is not None:  # a new checkpoint is offered where none was chosen by hand
            self.generation.checkpoints_changed()
            self.attention.checkpoints_changed()
            self.core_share.update()
        if run_dir == self.current_dir:
            self._update_actions()

    def _on_session_run_finished(self, run_dir: str, status: str, message: str) -> None:
        name = os.path.basename(run_dir)
        first_line = message.splitlines()[0] if message else ""
        self.statusBar().showMessage(f"{name}: {status}" + (f" — {first_line}" if first_line else ""), 0)
        self._on_session_run_updated(run_dir)
        self.notifier.run_finished(name, status, first_line)
        if run_dir == self.current_dir:
            self._update_start_blockers()
        if self.config_editor is not None:  # a run that trained here measures this machine (the first one too)
            self._update_time_estimate()
        if any(run_dir == d for d in self.runs_panel.compared()):
            self._update_overlays()

    # ------------------------------------------------------------------ view actions
    def show_tab(self, name: str, focus: bool = False) -> None:
        """`focus` (the Ctrl+1..5 shortcuts): the keyboard goes to the page's text box where it has one, so
        Ctrl+4 and typing writes a prompt (it went to the tab bar, and a space opened the checkpoint list)."""
        self.tabs.setCurrentIndex(TABS.index(name))
        typing = getattr(self.tabs.currentWidget(), "typing_widget", None)
        if focus and typing is not None:
            typing().setFocus(Qt.FocusReason.ShortcutFocusReason)

    def export_plots(self, fmt: str) -> None:
        plot_export.ask_and_export(self, fmt)

    def export_to(self, path: str) -> None:
        plot_export.export_to(self, path)

    def _set_x_mode(self, mode: str) -> None:
        if self.training is not None:
            self.training.plots.set_x_mode(mode)

    def _on_log_action_toggled(self, on: bool) -> None:
        if self.training is not None:
            self.training.plots.set_log_y(on)

    def _on_dark_action_toggled(self, on: bool) -> None:
        self.set_theme("dark" if on else "light")

    def set_theme(self, name: str) -> None:
        apply_theme(QApplication.instance(), name)
        self.dark_action.setChecked(name == "dark")
        if self.training is not None:
            self.training.apply_theme()
            self.attention.apply_theme()
        self._on_session_runs_changed()

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        for path in self.settings.recent_workspaces():
            self.recent_menu.addAction(path, lambda p=path: self.open_workspace(p))
        if self.recent_menu.isEmpty():
            self.recent_menu.addAction("(none)").setEnabled(False)
        else:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear", self.settings.clear_recent_workspaces)

    def _on_new_workspace(self) -> None:
        path = workspace_dialogs.ask_new(self, self.session.user_workspace())
        if path:
            self.open_workspace(path)

    def _on_open_workspace(self) -> None:
        path = workspace_dialogs.ask_open(self, self.session.user_workspace())
        if path:
            self.open_workspace(path)

    def _show_shortcuts(self) -> None:
        from studio.views.common.about import shortcuts_html

        QMessageBox.information(self, "Keyboard shortcuts", shortcuts_html(self.menuBar()))

    def _show_about(self) -> None:
        from studio.views.common.about import show_about

        show_about(self)

    # ------------------------------------------------------------------ window state
    def save_window_state(self) -> None:
        window_state.save_window(self)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt override)
        running = self.session.running()
        if running:
            choice = self.close_policy or ask_about_running(self, [c.run.name for c in running])
            if choice == "cancel":
                event.ignore()
                return
        else:
            choice = "leave"
        self.save_config()
        self.save_window_state()
        self.session.shutdown(stop_running=choice == "stop")  # a stop is graceful: engines finish detached
        if self.inference_pool is not None:
            # each waits for the workers it was the last user of (killed: they end at once)
            self.generation.shutdown_workers(wait_ms=3000)
            self.attention.shutdown_workers(wait_ms=3000)
            self.inference_pool.shutdown(wait_ms=3000)
        event.accept()

    def _on_generation_inspect_attention_requested(self, checkpoint: str, text: str) -> None:
        self.show_tab("attention")
        self.attention.inspect(checkpoint, text)
