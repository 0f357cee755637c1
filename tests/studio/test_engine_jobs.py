"""Training jobs and run controllers against the scripted fake engine (detached launch, tailing).

The fake engine is never paced by sleeps: a test that needs a run in flight holds it at a step
(`hold_at`) until the test stops it or releases it, so stop/done cannot race on a loaded machine.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from studio.controllers.run import RunController
from studio.engine.command import engine_command, launcher_command, torchrun_command, train_args
from studio.engine.process import EngineProcess
from tests.studio.fake_engine import release_path


def test_command_resolution(monkeypatch):
    monkeypatch.delenv("LLM_STUDIO_ENGINE", raising=False)
    assert engine_command("train", "--config", "c.yaml")[:3] == [sys.executable, "-m", "core"]
    multi = engine_command("train", *train_args("c.yaml", resume=True, overrides=["train.lr=1"]), nproc=2)
    assert "torch.distributed.run" in multi and "--nproc_per_node=2" in multi and "--resume" in multi
    assert multi[-2:] == ["--set", "train.lr=1"]
    node = torchrun_command(4, 2, 1, "10.0.0.1", 29500, "train", "--config", "c.yaml")
    assert "--node_rank=1" in node and "--master_addr=10.0.0.1" in node
    assert launcher_command("/r", ["x"])[-3:] == ["/r", "--", "x"]


def test_run_trains_to_done(qtbot, workspace, fake_engine):
    ctl = RunController(workspace.run("tiny"))
    assert ctl.status == "new" and ctl.start_problems() == []
    with qtbot.waitSignal(ctl.run_finished, timeout=20000) as blocker:
        assert ctl.start()
        assert ctl.status == "running"
    assert blocker.args == ["done", ""]
    assert ctl.history.step == 200 and len(ctl.history.steps) == 200
    assert ctl.history.best_val_loss < 2.0
    assert any("fake engine" in ln for ln in ctl.stderr_tail)
    assert ctl.start_problems()  # a started run cannot be started again


def test_graceful_stop_then_resume(qtbot, workspace, fake_engine):
    fake_engine("normal", hold_at=5)
    ctl = RunController(workspace.run("tiny"))
    ctl.start()
    qtbot.waitUntil(lambda: ctl.history.step >= 5, timeout=15000)
    with qtbot.waitSignal(ctl.run_finished, timeout=15000) as blocker:
        ctl.stop()
    assert blocker.args[0] == "stopped" and ctl.history.step == 5  # held there until the stop
    assert ctl.run.checkpoints()[-1].step == 5 and ctl.can_resume()
    fake_engine("normal")
    with qtbot.waitSignal(ctl.run_finished, timeout=20000) as blocker:
        ctl.start(resume=True)
    assert blocker.args[0] == "done"
    steps = ctl.history.steps["step"].tolist()
    assert steps == list(range(1, 201)) and ctl.history.starts == 2


def test_crash_reports_stderr_and_marks_failed(qtbot, workspace, fake_engine):
    fake_engine("crash", FAKE_ENGINE_CRASH_AT="3")
    ctl = RunController(workspace.run("tiny"))
    with qtbot.waitSignal(ctl.run_finished, timeout=15000) as blocker:
        ctl.start()
    status, message = blocker.args
    assert status == "failed" and "code 3" in message and "simulated crash" in message
    again = RunController(workspace.run("tiny"))  # also after reopening, in the same words
    qtbot.waitUntil(lambda: again.status == "failed" and bool(again.message), timeout=5000)
    assert again.message == message


def test_error_event_and_missing_data(qtbot, workspace, fake_engine):
    fake_engine("error", FAKE_ENGINE_CRASH_AT="2")
    ctl = RunController(workspace.run("tiny"))
    with qtbot.waitSignal(ctl.run_finished, timeout=15000) as blocker:
        ctl.start()
    assert blocker.args[0] == "failed" and "loss became nan" in blocker.args[1]
    # data folder removed under a configured run: the engine refuses, the message says why
    run = workspace.create_run("second", workspace.run("tiny").read_config_text())
    os.remove(os.path.join(workspace.data_dir, "demo", "meta.json"))
    ctl2 = RunController(run)
    assert any("data.dir" in p for p in ctl2.start_problems())
    with qtbot.waitSignal(ctl2.run_finished, timeout=15000) as blocker:
        ctl2.start()
    assert blocker.args[0] == "failed" and "no prepared data" in blocker.args[1]


def test_a_refusal_before_metrics_reads_the_same_after_reopening(qtbot, workspace, fake_engine):
    """A usage error the engine finds before it opens metrics.jsonl (a device this machine lacks, a fork
    that ends before its checkpoint) is only on its stdout: the reopened run said 'the engine stopped
    without finishing the run (it crashed or was killed)'."""
    fake_engine("setup")
    ctl = RunController(workspace.run("tiny"))
    with qtbot.waitSignal(ctl.run_finished, timeout=15000) as blocker:
        ctl.start()
    assert blocker.args[0] == "failed" and blocker.args[1].startswith("train.max_steps: 100 is not beyond")
    again = RunController(workspace.run("tiny"))
    qtbot.waitUntil(lambda: again.status == "failed" and bool(again.message), timeout=5000)
    assert again.message == blocker.args[1]


def test_odd_output_is_tolerated(qtbot, workspace, fake_engine):
    fake_engine("odd")
    ctl = RunController(workspace.run("tiny"))
    with qtbot.waitSignal(ctl.run_finished, timeout=15000) as blocker:
        ctl.start()
    assert blocker.args[0] == "done" and ctl.history.unknown > 0 and ctl.history.step == 200


def test_reattach_to_a_run_left_running(qtbot, workspace, fake_engine):
    fake_engine("normal", hold_at="3,8")
    first = RunController(workspace.run("tiny"))
    first.start()
    qtbot.waitUntil(lambda: first.history.step >= 3, timeout=15000)
    first.detach()  # the studio closes, leaving it running
    second = RunController(workspace.run("tiny"))  # the studio reopens
    assert second.status == "running" and second.is_running() and second.history.step == 3
    Path(release_path(second.run.dir, 3)).touch()  # the engine goes on while the new studio follows it
    qtbot.waitUntil(lambda: second.history.step >= 8, timeout=15000)
    with qtbot.waitSignal(second.run_finished, timeout=15000) as blocker:
        second.stop()
    assert blocker.args[0] == "stopped" and second.history.step == 8
    assert second.history.steps["step"].tolist() == list(range(1, 9))


def test_engine_process_prepare(qtbot, tmp_path, fake_engine):
    proc = EngineProcess()
    events = []
    proc.event_received.connect(events.append)
    with qtbot.waitSignal(proc.finished, timeout=15000) as blocker:
        proc.start("prepare", ["--input", "@synthetic", "--out", str(tmp_path / "d"), "--events"])
    assert blocker.args[0] == 0 and blocker.args[1]["event"] == "done"
    assert [e["event"] for e in events][0] == "start"


def test_engine_process_keeps_whole_lines_of_its_last_read(qtbot):
    """The last read when the engine ends may hold whole lines (the close event among them), not only an
    unterminated remainder: each is dispatched, none is dropped."""
    class Ended:  # what QProcess holds after the engine exited, not yet read
        def readAllStandardOutput(self):
            return b'{"v":1,"event":"step","step":3}\n{"v":1,"event":"done","step":3}\nlast words'

        def readAllStandardError(self):
            return b"warning one\nwarning two\n"

    proc = EngineProcess()
    events, texts, errors = [], [], []
    proc.event_received.connect(events.append)
    proc.text_received.connect(texts.append)
    proc.stderr_received.connect(errors.append)
    proc._proc = Ended()
    with qtbot.waitSignal(proc.finished, timeout=1000) as blocker:
        proc._on_proc_finished(0, None)
    assert [e["event"] for e in events] == ["step", "done"] and blocker.args[1]["event"] == "done"
    assert texts == ["last words"] and errors == ["warning one", "warning two"]


def test_start_intent_saves_the_edited_config_or_says_why_not(qtbot, workspace, fake_engine, monkeypatch):
    from studio.controllers import engine_info
    from studio.workspace import workspace as wsmod
    from studio.workspace.workspace import with_changes

    monkeypatch.setattr(wsmod, "gpu_driver_present", lambda: True)  # as on a GPU machine (the engine is fake)
    monkeypatch.setattr(engine_info, "_ANSWER", None)

    ctl = RunController(workspace.run("tiny"))
    original = ctl.run.read_config_text()
    bad = with_changes(original, {"model.n_embd": 33})
    problems = ctl.request_start(bad)
    assert any("model.n_embd" in p for p in problems) and ctl.status == "new" and not ctl.is_running()
    assert ctl.run.read_config_text() == original  # a refused start writes nothing
    assert ctl.request_start(resume=True)  # nothing to resume yet
    edited = with_changes(original, {"train.max_steps": 30})
    with qtbot.waitSignal(ctl.run_finished, timeout=20000) as blocker:
        assert ctl.request_start(edited, device="cuda") == []
    assert blocker.args == ["done", ""] and ctl.history.step == 30
    assert ctl.run.read_config_text() == edited
    assert ctl.history.start["config"]["train"]["device"] == "cuda"  # the config says cpu: --set won


def test_launcher_runs_as_a_plain_script_without_pythonpath(tmp_path):
    """From source the launcher is started as a file, from any folder, with no PYTHONPATH: it must still
    find core.layout, record the engine's pid and write exit.json with the engine's exit code."""
    import subprocess

    from core import layout

    argv = launcher_command(str(tmp_path), [sys.executable, "-c", "import sys; print('hi'); sys.exit(3)"])
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(argv, cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert layout.read_json(str(tmp_path / layout.EXIT_JSON))["code"] == 3
    info = layout.read_json(str(tmp_path / layout.LAUNCHER_JSON))
    assert info["pid"] > 0 and info["argv"][-1].endswith("sys.exit(3)")
    assert (tmp_path / layout.ENGINE_OUT).read_text() == "hi\n"
