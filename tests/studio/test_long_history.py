"""Review finding 8: opening a workspace replays a long run's metrics.jsonl in a worker thread.

A run of many steps (log_interval 1) has a metrics.jsonl of megabytes; parsing and folding it in took
seconds in the GUI thread, once per such run, at every opening. Now a file above ASYNC_REPLAY_BYTES is
replayed off the GUI thread: the run shows "loading" meanwhile, the event loop keeps running, and the
history that arrives equals the one a synchronous replay builds.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QTimer

from studio.controllers import run as run_mod
from studio.controllers.run import RunController
from tests.studio.helpers import open_window, write_finished_run

STEPS = 20000  # ~4 MB of events: above the 2 MB threshold


def _long_run(workspace, name="long"):
    run = workspace.create_run(name, workspace.run("tiny").read_config_text())
    write_finished_run(run.dir, steps=STEPS, status="stopped", eval_every=100, ckpt_every=10**9)
    return run


def test_a_long_history_loads_in_a_worker_thread_while_the_event_loop_runs(qtbot, workspace):
    run = _long_run(workspace)
    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(5)
    ctl = RunController(run)
    # the constructor returned before the history was read: nothing is startable or resumable meanwhile
    assert ctl.loading and ctl.status == "loading" and len(ctl.history.steps) == 0
    assert not ctl.startable() and not ctl.can_resume()
    qtbot.waitUntil(lambda: not ctl.loading, timeout=120000)
    timer.stop()
    assert ticks, "the event loop did not run while the history was replayed"
    assert len(ctl.history.steps) == STEPS and ctl.history.step == STEPS
    assert len(ctl.history.evals) == STEPS // 100
    assert ctl.status == "stopped"
    assert ctl.console and ctl.console[-1].startswith("[studio] stopped at step")


def test_the_threaded_replay_equals_the_synchronous_one(qtbot, workspace, monkeypatch):
    run = _long_run(workspace)
    threaded = RunController(run)
    qtbot.waitUntil(lambda: not threaded.loading, timeout=120000)
    monkeypatch.setattr(run_mod, "ASYNC_REPLAY_BYTES", 10**12)
    direct = RunController(run)
    assert not direct.loading
    for name in ("step", "loss", "elapsed", "grad_norm"):
        np.testing.assert_array_equal(threaded.history.steps[name], direct.history.steps[name])
    np.testing.assert_array_equal(threaded.history.evals["val_loss"], direct.history.evals["val_loss"])
    assert threaded.history.best_val_loss == direct.history.best_val_loss
    assert list(threaded.console) == list(direct.console)
    assert threaded.status == direct.status == "stopped" and threaded.summary() == direct.summary()


def test_the_console_keeps_only_the_last_lines(qtbot, workspace, monkeypatch):
    monkeypatch.setattr(RunController, "CONSOLE_KEEP", 7)
    run = workspace.create_run("short", workspace.run("tiny").read_config_text())
    write_finished_run(run.dir, steps=200, status="done", eval_every=10, ckpt_every=10**9)
    ctl = RunController(run)
    lines = list(ctl.console)
    assert len(lines) == 7 and lines[-1].startswith("[studio] done at step 200")
    assert lines[-2].startswith("[studio] step 200: val loss")


def test_the_window_opens_on_a_long_run_and_shows_it_when_loaded(qtbot, workspace):
    _long_run(workspace)
    w = open_window(qtbot, workspace.root, close_policy="leave")
    ctl = w.session.controller(workspace.run("long").dir)
    qtbot.waitUntil(lambda: not ctl.loading, timeout=120000)
    assert ctl.summary()["step"] == STEPS and ctl.summary()["status"] == "stopped"
    tree = w.runs_panel.tree

    def row():
        items = [tree.topLevelItem(i) for i in range(tree.topLevelItemCount())]
        return next((it.text(1), it.text(2)) for it in items if it.text(0).startswith("long"))

    qtbot.waitUntil(lambda: row() == ("stopped", f"{STEPS}/{STEPS}"), timeout=5000)


def test_the_console_shows_line_starts_after_a_long_last_line(qtbot):
    """Loading a run's console must not scroll sideways to the end of a long last line (a checkpoint path
    cut the start of every line in the new-user trial)."""
    from studio.views.training.console import ConsoleView

    view = ConsoleView()
    qtbot.addWidget(view)
    view.resize(300, 120)
    view.show()
    lines = [f"[studio] step {i}: val loss 2.0" for i in range(50)]
    view.set_lines(lines + ["[studio] step 50: checkpoint /a/very/long/path/" + "x" * 300])
    qtbot.wait(20)
    assert view.horizontalScrollBar().maximum() > 0  # the long line does not fit
    assert view.horizontalScrollBar().value() == 0
    assert view.verticalScrollBar().value() == view.verticalScrollBar().maximum()
