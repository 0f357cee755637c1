"""TrainingPanel: start/stop/resume controls, progress with ETA, live plots and the engine console.

Observes a RunController; every action is an intent signal the main window routes to the controller.
"""

from __future__ import annotations

import math

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QStyle,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from studio.controllers.run import RunController, eta_text
from studio.theme import banner_style, status_color
from studio.views.common.elided_label import ElidedLabel
from studio.views.common.wrap_row import WrapRow
from studio.views.training import imported
from studio.views.training.console import ConsoleView
from studio.views.training.plots import MetricsPlots
from studio.views.training.samples import SamplesView
from studio.views.training.system import SystemView
from studio.workspace.run import format_duration

DEVICES = (("From config", ""), ("CPU", "cpu"), ("CUDA GPU", "cuda"), ("Apple MPS", "mps"))
PROGRESS_MS = 200


class TrainingPanel(QWidget):
    """One run's training view."""

    start_requested = Signal(int, str)     # processes, device override ("" = from config)
    resume_requested = Signal(int, str)
    stop_requested = Signal()
    multinode_requested = Signal(int)      # processes per node

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller: RunController | None = None
        self._planned_steps = 0  # train.max_steps of the selected run's config, for the progress bar
        self._planned_start = 0  # the step a new fork starts at (its checkpoint's), for the progress bar
        self._resume_steps = 0  # train.max_steps as edited, of a run Resume may continue
        self._blockers: list[str] = []
        self._resume_note = ""
        bar = self._build_bar()

        self.blocker_label = QLabel()
        self.blocker_label.setWordWrap(True)
        self.blocker_label.setObjectName("banner")
        self.blocker_label.hide()
        self.blocker_label.linkActivated.connect(lambda link: imported.follow(self.window(), link))
        self.error_banner = QLabel()
        self.error_banner.setWordWrap(True)
        self.error_banner.setObjectName("banner")
        self.error_banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_banner.hide()

        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setFormat("%v / %m steps")
        self.progress_label = ElidedLabel(" ", mode=Qt.TextElideMode.ElideRight)  # never widens the tab
        prow = QHBoxLayout()
        prow.addWidget(self.progress, 2)
        prow.addWidget(self.progress_label, 3)

        self.plots = MetricsPlots()
        self.console = ConsoleView()
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.setObjectName("training_splitter")
        self.splitter.addWidget(self.plots)
        self.samples = SamplesView()   # evaluation samples, step -> text
        self.system = SystemView()     # CPU / RAM / GPU of the run's processes
        self.bottom_tabs = QTabWidget()
        self.bottom_tabs.setDocumentMode(True)
        for widget, title in ((self.console, "Console"), (self.samples, "Samples"), (self.system, "System")):
            self.bottom_tabs.addTab(widget, title)
        self.splitter.addWidget(self.bottom_tabs)
        self.splitter.setStretchFactor(0, 4)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([520, 140])

        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 8, 8, 8)
        lay.addWidget(bar)
        lay.addWidget(self.blocker_label)
        lay.addWidget(self.error_banner)
        lay.addLayout(prow)
        self.rule = line = QFrame()
        line.setFrameShape(QFrame.Shape.HLine)
        line.setFrameShadow(QFrame.Shadow.Sunken)
        lay.addWidget(line)
        lay.addWidget(self.splitter, 1)
        lay.addStretch(0)  # takes the room only when the splitter is hidden (an imported model's note)

        self._progress_timer = QTimer(self)
        self._progress_timer.setSingleShot(True)
        self._progress_timer.setInterval(PROGRESS_MS)
        self._progress_timer.timeout.connect(self.refresh_progress)
        self.refresh()

    def _build_bar(self) -> WrapRow:
        """Start / Stop / Resume, device and process count, Multi-node, the run's status."""
        style = self.style()
        self.start_button = QPushButton(style.standardIcon(QStyle.StandardPixmap.SP_MediaPlay), "Start")
        self.stop_button = QPushButton(style.standardIcon(QStyle.StandardPixmap.SP_MediaStop), "Stop")
        self.resume_button = QPushButton(style.standardIcon(QStyle.StandardPixmap.SP_MediaSeekForward), "Resume")
        self.stop_button.setToolTip("Graceful stop: finishes the current step and writes a checkpoint")
        self.device_combo = QComboBox()
        for text, value in DEVICES:
            self.device_combo.addItem(text, value)
        self.nproc_spin = QSpinBox()
        self.nproc_spin.setRange(1, 64)
        self.nproc_spin.setToolTip("Processes on this machine; more than 1 launches through torchrun (DDP)")
        self.multinode_button = QPushButton("Multi-node…")
        self.multinode_button.setToolTip("Show the torchrun command to run on each node")
        self.status_label = ElidedLabel(mode=Qt.TextElideMode.ElideMiddle)  # a long run name does not widen the tab
        self.status_label.setObjectName("heading")
        self.status_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.start_button.clicked.connect(self._on_start_button_clicked)
        self.resume_button.clicked.connect(self._on_resume_button_clicked)
        self.stop_button.clicked.connect(self.stop_requested)
        self.multinode_button.clicked.connect(lambda: self.multinode_requested.emit(self.nproc_spin.value()))

        buttons, launch = QHBoxLayout(), QHBoxLayout()
        for w in (self.start_button, self.stop_button, self.resume_button):
            buttons.addWidget(w)
        buttons.addStretch(1)
        for w in (QLabel("Device"), self.device_combo, QLabel("Processes"), self.nproc_spin, self.multinode_button):
            launch.addWidget(w)
        launch.addWidget(self.status_label, 1)
        self.bar = WrapRow(buttons, launch)  # in a narrow window the launch options go under the buttons
        return self.bar

    # ------------------------------------------------------------------ model
    def set_controller(self, controller: RunController | None) -> None:
        if self.controller is controller:
            return
        if self.controller is not None:
            for sig, slot in self._connections():
                sig.disconnect(slot)
        self.controller = controller
        if controller is not None:
            for sig, slot in self._connections():
                sig.connect(slot)
            self._planned_steps = controller.planned_steps()
            self._planned_start = controller.planned_start() if controller.startable() else 0
            self.plots.set_history(controller.history, controller.run.name, self._planned_steps)
            self.console.set_lines(list(controller.console))
            self._follow_process_count(controller.history.start or {})
        else:
            self.plots.set_history(None)
            self.console.set_lines([])
        self.samples.set_samples(controller.history.samples if controller is not None else [])
        cfg = controller.run.config_or_none() if controller is not None else None
        self.samples.set_sample_tokens(cfg.train.sample_tokens if cfg is not None else None)
        self.refresh()

    def _follow_process_count(self, start: dict) -> None:
        """A run that has trained shows the processes it trained on on its node (torchrun's LOCAL_WORLD_SIZE):
        Processes kept the count set for the last run, and a 1-process run was continued on 2 (twice the
        tokens per step). A run never trained, or one whose count on its node is unknown, keeps the choice."""
        local = start.get("local_world_size", 1 if start.get("world_size") == 1 else None)
        if isinstance(local, int) and 1 <= local <= self.nproc_spin.maximum():
            self.nproc_spin.setValue(local)

    def _connections(self):
        c = self.controller
        return [(c.history_changed, self._on_controller_history_changed),
                (c.console_line, self.console.append_line),
                (c.status_changed, self._on_controller_status_changed),
                (c.run_finished, self._on_controller_run_finished)]

    def set_start_blockers(self, problems: list[str], planned_steps: int = 0, resume_note: str = "") -> None:
        """Why Start (a new run) or Resume (a stopped one) is disabled, shown next to it; empty when it may.
        `planned_steps`: train.max_steps of the run's config as edited (0 = keep): for a new run the progress
        bar's and the plots' end before it starts, for a stopped one the bar's end. `resume_note`: what Resume
        would do that the user may not expect (RunController.resume_note), shown while it is enabled."""
        self._blockers = list(problems)
        self._resume_note = resume_note
        c = self.controller
        # a stopped run's bar ends where Resume will (max_steps edited since: "244 / 600" said the old end)
        self._resume_steps = planned_steps if c is not None and c.can_resume() else 0
        if (planned_steps and planned_steps != self._planned_steps and c is not None and c.startable()
                and not len(c.history.steps)):
            self._planned_steps = planned_steps
            self.plots.set_history(c.history, c.run.name, planned_steps)
        self.refresh()

    def device(self) -> str:
        return self.device_combo.currentData()

    def nproc(self) -> int:
        return self.nproc_spin.value()

    # ------------------------------------------------------------------ view updates
    def apply_theme(self) -> None:
        """The curves and the system plots in the theme's colours, the status in its status colour."""
        self.plots.apply_theme()
        self.system.apply_theme()
        self.refresh()

    def refresh(self) -> None:
        c = self.controller
        status = c.status if c is not None else ""
        running = c is not None and c.is_running()
        fresh = c is not None and c.startable()
        # Start, Stop and Resume always keep their places (a button never moves under the cursor);
        # only what applies is enabled.
        resumable = c is not None and c.can_resume()
        self.start_button.setEnabled(fresh and not self._blockers)
        reason = "; ".join(self._blockers) if (fresh or resumable) and self._blockers else ""
        verb = "start" if fresh else "resume"
        self.start_button.setToolTip(f"Cannot start: {reason}" if fresh and reason else "Start training (Ctrl+R)")
        self.resume_button.setToolTip(f"Cannot resume: {reason}" if resumable and reason else
                                      "Continue from the latest checkpoint")
        note = ""
        if status == "imported":  # a base model, not a run: say what it is for instead of why it cannot start
            note = imported.imported_note(str(c.run.lineage().get("parent_checkpoint") or ""), imported.model_line(c.run),
                                          c.run.parent_dir())
        hint = self._resume_note if resumable and not reason else ""
        self.blocker_label.setText(f"Cannot {verb} — {reason}" if reason else note or hint)
        self.blocker_label.setStyleSheet(banner_style("warning" if reason or hint else "info"))
        self.blocker_label.setVisible(bool(reason or note or hint))
        self.progress.setVisible(c is not None and not note)  # no run, or a model never trained here: no steps
        for w in (self.splitter, self.rule):  # nor curves and engine log (they stood empty under the note)
            w.setVisible(not note)
        self.stop_button.setEnabled(running and not (c is not None and c.stopping))
        self.stop_button.setText("Stopping…" if c is not None and c.stopping else "Stop")
        self.resume_button.setEnabled(resumable and not self._blockers)
        for w in (self.device_combo, self.nproc_spin):
            w.setEnabled(not running)
        # no run: the neutral colour (it kept the last run's, a green 'done' over an empty workspace)
        self.status_label.setText("No run selected" if c is None else c.run.name, "" if c is None else f" — {status}")
        self.status_label.setStyleSheet(f"color: {status_color('new' if c is None else status)};")
        failed = c is not None and status in ("failed", "damaged") and bool(c.message)
        self.error_banner.setText(c.message if failed else "")
        self.error_banner.setStyleSheet(banner_style("error"))
        self.error_banner.setVisible(failed)
        self.refresh_progress()

    def refresh_progress(self) -> None:
        c = self.controller
        if c is None:
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
            self.progress.setFormat("")  # no run: no "0 / 1 steps"
            self.progress_label.setText(" ")
            return
        self.progress.setFormat("%v / %m steps")
        h = c.history
        step = h.step if h.start or len(h.steps) else max(h.step, self._planned_start)  # a fork: from its step
        total = max(self._resume_steps or h.max_steps or self._planned_steps, step, 1)  # else the config's
        self.progress.setRange(0, total)
        self.progress.setValue(min(step, total))
        parts = [f"elapsed {format_duration(h.elapsed_s)}" if len(h.steps) else ""]
        if c.is_running():
            parts.append(eta_text(h))
        if math.isfinite(h.tokens_per_s):
            parts.append(f"{h.tokens_per_s:,.0f} tokens/s")
        if math.isfinite(h.best_val_loss):
            parts.append(f"best val {h.best_val_loss:.4f} @ {h.best_val_step}")
        close = h.close or {}
        why = close.get("reason") if not c.is_running() else None
        if isinstance(why, str) and (close.get("event") == "done" or why.startswith("early stopping")):
            parts.append(f"ended early: {why}")  # target reached, or early stopping: why a bar is not full
        self.progress_label.setText("   ·   ".join(p for p in parts if p) or " ")

    # ------------------------------------------------------------------ slots
    def _on_controller_history_changed(self) -> None:
        self.plots.mark_dirty()
        self.samples.set_samples(self.controller.history.samples)
        if not self._progress_timer.isActive():
            self._progress_timer.start()

    def _on_controller_status_changed(self, _status: str) -> None:
        self.refresh()

    def _on_controller_run_finished(self, _status: str, _message: str) -> None:
        self.console.flush()
        self.refresh()

    def _on_start_button_clicked(self) -> None:
        self.start_requested.emit(self.nproc(), self.device())

    def _on_resume_button_clicked(self) -> None:
        self.resume_requested.emit(self.nproc(), self.device())
