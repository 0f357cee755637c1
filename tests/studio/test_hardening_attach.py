"""Issue 14, item 1: the studio never re-attaches to, or signals, a process it cannot prove is its run's.

The repro: a `sleep` (somebody else's process) has the pid a finished run's launcher.json recorded.
Opening the workspace must not show the run as running, and Stop / kill must leave the `sleep` alone.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from core import layout
from studio.controllers.run import RunController
from studio.main_window import MainWindow
from studio.workspace.proc import fingerprint, lock_holders, runs_command, same_process, valid_pid
from studio.workspace.run import Run
from tests.studio.helpers import open_window, write_finished_run


@pytest.fixture
def stranger():
    """An unrelated process (the `sleep 1000 &` of the repro); killed at the end whatever happens."""
    proc = subprocess.Popen(["sleep", "1000"])
    yield proc
    proc.kill()
    proc.wait()


def _open(qtbot, root: str) -> MainWindow:
    w = open_window(qtbot, root, close_policy="leave")
    return w


def _demo(workspace, launcher: dict, exit_info: dict | None) -> Run:
    run = workspace.create_run("demo", workspace.run("tiny").read_config_text())
    write_finished_run(run.dir, status="done")
    layout.atomic_write_json(run.path(layout.LAUNCHER_JSON), launcher)
    if exit_info is not None:
        layout.atomic_write_json(run.path(layout.EXIT_JSON), exit_info)
    return run


def _stop_everything(w: MainWindow, ctl: RunController) -> None:
    """Every way the studio has of ending a run's process."""
    w.select_run(ctl.run.dir)
    w.stop_training()
    ctl.stop()
    ctl.kill()
    if ctl.job is not None:
        ctl.job.stop(grace_ms=0)
        ctl.job.kill()


def test_the_issue_repro_finished_run_with_a_stranger_pid(qtbot, workspace, stranger):
    v = stranger.pid
    run = _demo(workspace, {"pid": v, "launcher_pid": v, "started": 1}, {"code": 0, "ended": 2, "started": 1})
    w = _open(qtbot, workspace.root)
    ctl = w.session.controller(run.dir)
    assert ctl.status == "done" and not ctl.is_running() and not w.session.running()
    _stop_everything(w, ctl)
    qtbot.wait(50)
    assert stranger.poll() is None  # the sleep survived


def test_a_reused_pid_without_exit_json_is_not_ours(qtbot, workspace, stranger):
    """The machine rebooted mid-run (no exit.json) and the pid now belongs to somebody else."""
    v = stranger.pid
    run = _demo(workspace, {"pid": v, "launcher_pid": v, "started": 1}, None)
    w = _open(qtbot, workspace.root)
    ctl = w.session.controller(run.dir)
    assert ctl.status != "running" and not ctl.is_running()
    _stop_everything(w, ctl)
    qtbot.wait(50)
    assert stranger.poll() is None


def test_a_recorded_fingerprint_that_does_not_match_is_not_ours(qtbot, workspace, stranger):
    v = stranger.pid
    fp = fingerprint(v)
    assert fp is not None
    other = dict(fp, **({"start_ticks": fp["start_ticks"] + 1} if "start_ticks" in fp
                        else {"create_time": fp["create_time"] + 1}))
    run = _demo(workspace, {"pid": v, "launcher_pid": v, "started": 1, "pid_fingerprint": other,
                            "launcher_fingerprint": other, "argv": ["sleep", "1000"]}, None)
    assert not same_process(v, other) and same_process(v, fp)
    ctl = RunController(run)
    assert ctl.status != "running" and not ctl.is_running()
    ctl.stop()
    ctl.kill()
    qtbot.wait(50)
    assert stranger.poll() is None


def test_a_proven_process_is_followed_and_stopped(qtbot, workspace, stranger):
    """The positive case: the recorded fingerprint matches, so the run is re-attached and Stop works."""
    v = stranger.pid
    fp = fingerprint(v)
    run = _demo(workspace, {"pid": v, "launcher_pid": v, "started": 1, "pid_fingerprint": fp,
                            "launcher_fingerprint": fp}, None)
    ctl = RunController(run)
    assert ctl.status == "running" and ctl.is_running()
    ctl.stop()
    assert stranger.wait(timeout=10) == -15
    qtbot.waitUntil(lambda: not ctl.is_running(), timeout=10000)


def test_run_json_pid_needs_its_command_line(workspace, stranger):
    """run.json of an engine started by hand: alive only when the pid runs the recorded command."""
    run = workspace.run("tiny")
    v = stranger.pid
    layout.atomic_write_json(run.path(layout.RUN_JSON), {"status": "running", "pid": v, "sessions": [
        {"started": 1, "argv": ["/x/llm-train", "train", "--config", "c.yaml"]}]})
    assert not run.is_alive() and run.live_pids() == (0, 0)
    layout.atomic_write_json(run.path(layout.RUN_JSON), {"status": "running", "pid": v, "sessions": [
        {"started": 1e12, "argv": ["/bin/sleep", "1000"]}]})
    assert run.is_alive() and runs_command(v, ["1000"])


@pytest.mark.parametrize("value", ["abc", "1234x", 2 ** 70, -5, 0, True, 1.5, None, [1], {"a": 1}])
def test_only_plausible_pids(value):
    assert valid_pid(value) is None
    assert fingerprint(value) is None


def test_without_proc_or_psutil_ps_start_time_identifies(monkeypatch, stranger):
    """macOS and the BSDs without psutil: `ps -o lstart` is the start time that proves identity."""
    import sys

    from studio.workspace import proc

    monkeypatch.setattr(proc, "_stat_fields", lambda pid: None)
    monkeypatch.setitem(sys.modules, "psutil", None)  # import psutil raises ImportError
    fp = fingerprint(stranger.pid)
    assert fp is not None and set(fp) == {"lstart"}
    assert same_process(stranger.pid, fp) and not same_process(stranger.pid, {"lstart": "Thu Jan  1 00:00:00 1970"})
    assert proc.started_by(stranger.pid, 1e12) and not proc.started_by(stranger.pid, 1.0)


@pytest.mark.skipif(not os.path.exists("/proc/locks"), reason="the lock is read from Linux's /proc/locks")
def test_run_json_pid_holding_the_engines_run_lock_is_ours(workspace):
    """An engine started by hand (run.json only) that holds RUN_DIR/.lock is provably the run's engine."""
    import sys

    run = workspace.run("tiny")
    lock = run.path(".lock")
    code = ("import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_CREAT | os.O_RDWR); "
            "fcntl.flock(fd, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(1000)")
    holder = subprocess.Popen([sys.executable, "-c", code, lock], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        info = {"status": "running", "pid": holder.pid, "sessions": [{"started": 1e12, "argv": ["x", "y"]}]}
        layout.atomic_write_json(run.path(layout.RUN_JSON), info)
        assert lock_holders(lock) == {holder.pid} and run.is_alive() and run.engine_pid() == holder.pid
    finally:
        holder.kill()
        holder.wait()
    assert lock_holders(lock) == set() and not run.is_alive()
