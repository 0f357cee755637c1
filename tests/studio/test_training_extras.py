"""The Training tab's extras: system metrics of the run's processes (Qt-free sampling, then the monitor
and its plots on a real engine process) and the browsable history of evaluation samples."""

from __future__ import annotations

import math
import os

from PySide6.QtCore import Qt

from core import layout
from core.config import loads
from core.protocol import encode, make_event
from studio.controllers.run import RunController
from studio.controllers.system import SystemMonitor
from studio.views.training.panel import TrainingPanel
from studio.workspace.sysmetrics import ProcessSampler, parse_nvidia_smi, process_tree, rss_bytes
from studio.workspace.workspace import with_changes
from tests.studio.helpers import write_finished_run

SMI = "87, 10240, 81559, 64\n[N/A], 1, 2, 3\n12, 300, 81559, 41\n"


def test_process_figures_from_proc():
    me = os.getpid()
    assert me in process_tree(me) and rss_bytes(me) > 10 * 2**20  # a Python with Qt loaded
    sampler = ProcessSampler()
    first = sampler.sample(me, now=0.0)
    assert first["rss_mb"] > 10 and math.isnan(first["cpu_percent"])
    busy = 0
    for i in range(3_000_000):  # some CPU time must show between the samples
        busy += i * i
    second = sampler.sample(me, now=2.0)
    assert second["cpu_percent"] > 0 and second["processes"] >= 1
    assert sampler.sample(0) is None and ProcessSampler().sample(2**22 + 12345) is None


def test_nvidia_smi_rows_are_parsed_and_unreadable_rows_skipped():
    gpus = parse_nvidia_smi(SMI)
    assert [g["util_percent"] for g in gpus] == [87.0, 12.0]
    assert gpus[0] == {"util_percent": 87.0, "mem_used_mb": 10240.0, "mem_total_mb": 81559.0, "temp_c": 64.0}


def test_system_monitor_follows_a_training_run(qtbot, workspace, fake_engine):
    fake_engine("normal", hold_at=3)
    ctl = RunController(workspace.run("tiny"))
    monitor = SystemMonitor(gpu_query=lambda: parse_nvidia_smi(SMI))
    panel = TrainingPanel()
    qtbot.addWidget(panel)
    panel.show()
    panel.system.set_monitor(monitor)
    panel.bottom_tabs.setCurrentWidget(panel.system)
    monitor.follow(ctl)
    assert monitor.sample() is None and not monitor.timer.isActive()  # not running: nothing to sample
    assert not panel.system.plot_row.isVisible()  # no empty 0..1 axes before there is anything to plot
    assert ctl.start()
    assert monitor.timer.isActive()
    qtbot.waitUntil(lambda: ctl.history.step >= 3, timeout=15000)
    row = monitor.sample()
    assert row is not None and row["rss_mb"] > 1 and row["gpu_util_percent"] == 87.0
    assert row["gpu_mem_mb"] == 10540.0 and row["gpu_temp_c"] == 64.0
    monitor.sample()
    assert len(monitor.series["t"]) == 2 and math.isfinite(monitor.series["cpu_percent"][-1])
    view = panel.system
    assert view.plots["gpu"].isVisible() and "GPU 87 %" in view.summary.text() and view.plot_row.isVisible()
    assert [label.text for _s, label in view.plots["mem"].plotItem.legend.items] == ["RAM", "GPU memory"]
    assert view.plots["cpu"].getAxis("bottom").tickStrings([4.0, 12.0], 1.0, 1.0) == ["4 s", "12 s"]
    _assert_left_labels_apart(qtbot, panel, view.plots["cpu"])
    xs, ys = view.curves["rss_mb"].getData()
    assert len(xs) == 2 and ys[-1] == monitor.series["rss_mb"][-1]
    with qtbot.waitSignal(ctl.run_finished, timeout=15000):
        ctl.stop()
    assert not monitor.timer.isActive()
    monitor.follow(None)
    assert monitor.series["t"] == [] and "appear while the run trains" in view.summary.text()


def _assert_left_labels_apart(qtbot, panel, plot) -> None:
    """At the window's default size the bottom pane gives each system plot ~90 px: the CPU plot's left
    labels (120, 140, 160) were drawn over each other. Whatever labels pyqtgraph draws stand apart."""
    from tests.studio.helpers import axis_text_specs

    plot.plotItem.vb.setYRange(118, 168, padding=0)  # a busy run's CPU %
    panel.resize(970, 720)
    qtbot.wait(50)
    rects = [spec[0] for spec in axis_text_specs(plot.getAxis("left"))]
    assert len(rects) >= 2, rects
    assert not any(a.intersects(b) for i, a in enumerate(rects) for b in rects[i + 1:]), rects


def test_no_gpu_hides_its_plot(qtbot, workspace, fake_engine):
    fake_engine("normal", hold_at=2)
    ctl = RunController(workspace.run("tiny"))
    monitor = SystemMonitor(gpu_query=lambda: None)
    panel = TrainingPanel()
    qtbot.addWidget(panel)
    panel.show()
    panel.system.set_monitor(monitor)
    panel.bottom_tabs.setCurrentWidget(panel.system)
    monitor.follow(ctl)
    ctl.start()
    qtbot.waitUntil(lambda: ctl.history.step >= 2, timeout=15000)
    assert monitor.sample() is not None and monitor.has_gpu is False
    assert not panel.system.plots["gpu"].isVisible() and "no GPU" in panel.system.summary.text()
    legend = panel.system.plots["mem"].plotItem.legend  # no 'GPU memory' entry without a GPU
    assert [label.text for _sample, label in legend.items] == ["RAM"]
    with qtbot.waitSignal(ctl.run_finished, timeout=15000):
        ctl.stop()


def _add_samples(run_dir: str, steps: list[int]) -> None:
    with open(os.path.join(run_dir, layout.METRICS), "a", encoding="utf-8") as fh:
        for s in steps:
            fh.write(encode(make_event("sample", step=s, prompt="ROMEO:", text=f"ROMEO: words of step {s}")))


def test_samples_history_is_browsable_by_step(qtbot, workspace):
    run = workspace.run("tiny")
    write_finished_run(run.dir, steps=30)
    _add_samples(run.dir, [10, 20, 30])
    ctl = RunController(run)
    panel = TrainingPanel()
    qtbot.addWidget(panel)
    panel.show()
    panel.set_controller(ctl)
    view = panel.samples
    assert [view.steps.item(i).text() for i in range(view.steps.count())] == ["step 10", "step 20", "step 30"]
    assert view.text.toPlainText() == "ROMEO: words of step 30"  # the newest shown first
    qtbot.mouseClick(view.steps.viewport(), Qt.MouseButton.LeftButton,
                     pos=view.steps.visualItemRect(view.steps.item(0)).center())
    assert view.text.toPlainText() == "ROMEO: words of step 10"
    # a new sample arriving live is listed; the user's choice of an older one is kept
    ctl._on_job_event_received(make_event("sample", step=40, prompt="ROMEO:", text="ROMEO: later"))
    assert view.steps.count() == 4 and view.text.toPlainText() == "ROMEO: words of step 10"
    assert view.select_step(40) and view.text.toPlainText() == "ROMEO: later"
    panel.set_controller(RunController(workspace.create_run("empty", run.read_config_text())))
    assert view.steps.count() == 0 and view.text.toPlainText() == ""
    # a run whose config writes no samples says so, and how to get them, instead of promising some
    assert run.config().train.sample_tokens == 0 and "train.sample_tokens is 0" in view.text.placeholderText()
    sampled = workspace.create_run("sampled", with_changes(run.read_config_text(), {"train.sample_tokens": 50}))
    panel.set_controller(RunController(sampled))
    assert view.text.placeholderText() == view.PLACEHOLDER


def test_the_demo_run_writes_samples():
    from studio import demo

    cfg = loads(demo.tiny_config_text())
    assert cfg.train.sample_tokens > 0 and cfg.train.eval_interval > 0


def test_the_process_count_follows_the_run_that_trained_with_it(qtbot, workspace):
    """Processes kept the count set for another run: a run trained on 1 process was continued on 2 (DDP,
    twice the tokens per step). A run that has trained shows its world size; a new one keeps the choice."""
    text = workspace.run("tiny").read_config_text()
    one, two, new = workspace.run("tiny"), workspace.create_run("two", text), workspace.create_run("fresh", text)
    nodes = workspace.create_run("nodes", text)
    for run, world in ((one, {"world_size": 1}), (two, {"world_size": 2, "local_world_size": 2}),
                       (nodes, {"world_size": 8})):  # two nodes of 4, from an engine before local_world_size
        write_finished_run(run.dir, steps=20)
        metrics = os.path.join(run.dir, layout.METRICS)
        lines = open(metrics, encoding="utf-8").read().splitlines(keepends=True)
        start = make_event("start", max_steps=20, start_step=0, resumed=False, config={}, **world)
        layout.atomic_write(metrics, encode(start) + "".join(lines[1:]))
    panel = TrainingPanel()
    qtbot.addWidget(panel)
    seen = []
    for run in (two, new, one, new, two, nodes):
        panel.set_controller(RunController(run))
        seen.append(panel.nproc())
    assert seen == [2, 2, 1, 1, 2, 2]  # a run never trained, or of unknown count per node, keeps the choice
