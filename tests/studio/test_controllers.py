"""The controller layer driven directly: PrepareJob (with a scripted prepare), the engine-failure
classifier, and the WorkspaceSession's run control (demo set-up, the run shown first, overlays, close)."""

from __future__ import annotations

import os
import sys

import pytest

from core import layout
from studio import demo
from studio.controllers.prepare import PrepareJob
from studio.controllers.prepare_request import PrepareRequest, make_request
from studio.controllers.runs import WorkspaceSession
from studio.engine.failure import classify
from studio.workspace.workspace import Workspace
from tests.studio.fake_engine import release_path
from tests.studio.helpers import write_checkpoint, write_finished_run

FAKE_PREPARE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fake_prepare.py")


@pytest.fixture
def fake_prepare(monkeypatch):
    monkeypatch.setenv("LLM_STUDIO_ENGINE", f"{sys.executable} {FAKE_PREPARE}")

    def mode(name: str) -> None:
        monkeypatch.setenv("FAKE_PREPARE_MODE", name)

    mode("normal")
    return mode


# ------------------------------------------------------------------ the failure classifier
def test_error_event_gives_the_engines_message_and_the_other_log_lines():
    close = {"event": "error", "kind": "usage", "message": "input not found: /x"}
    f = classify(close, 2, ["--- 2024-01-01 argv", "reading inputs", "llm-train: error: input not found: /x"])
    assert f.headline == "input not found: /x (usage error)"
    assert f.details == ["reading inputs"] and f.exit_text() == "exit code 2 (bad input)"
    assert f.log == ["reading inputs", "llm-train: error: input not found: /x"]  # launcher header dropped
    assert f.text() == ("input not found: /x (usage error)\n\nLast lines of the engine's log:\n"
                        "reading inputs\nllm-train: error: input not found: /x")


def test_a_traceback_is_named_by_its_last_line_not_listed():
    log = ["step 1", "Traceback (most recent call last):", '  File "train.py", line 1', "    boom()",
           "RuntimeError: out of memory"]
    f = classify(None, 3, log)
    assert f.headline == "The engine crashed (code 3): RuntimeError: out of memory"
    assert f.details == ["step 1"] and f.exit_text() == "exit code 3"


def test_a_silent_death_says_what_is_known():
    assert classify(None, 1, [], "preparing the data").headline == \
        "The engine exited (code 1) without finishing preparing the data."
    f = classify(None, -1, ["x"])
    assert f.headline == "The engine stopped without finishing the run (it crashed or was killed)."
    assert f.exit_text() == "" and f.details == ["x"]
    assert classify(None, None, []).text() == f.headline  # no log: the headline alone


# ------------------------------------------------------------------ PrepareJob
def test_request_arguments_and_refusals(tmp_path):
    req = make_request(str(tmp_path), ["@synthetic", "/a b/c.txt"], " web ", "bpe", 512, 0.05)
    assert req.arguments() == ["--input", "@synthetic", "/a b/c.txt", "--out", str(tmp_path / "web"),
                               "--tokenizer", "bpe", "--vocab-size", "512", "--val-fraction", "0.05",
                               "--events"]
    assert PrepareRequest(("@synthetic",), "/d", "char", 512).arguments() == [
        "--input", "@synthetic", "--out", "/d", "--tokenizer", "char", "--events"]  # no BPE size for char
    from core.errors import UsageError

    for root, sources, name, field in ((None, ["x"], "a", "workspace"), ("/r", [], "a", "sources"),
                                       ("/r", ["x"], "../up", "name")):
        with pytest.raises(UsageError) as err:
            make_request(root, sources, name)
        assert err.value.field == field


def test_prepare_job_reports_progress_and_the_data_set(qtbot, tmp_path, fake_prepare):
    job = PrepareJob()
    progress = []
    job.progressed.connect(lambda stage, done, total: progress.append((stage, done, total)))
    out = str(tmp_path / "data" / "tiny")
    with qtbot.waitSignal(job.finished, timeout=15000) as sig:
        assert job.start(PrepareRequest(("@synthetic",), out, "char"))
        assert job.is_running() and not job.start(PrepareRequest(("@synthetic",), out))  # one at a time
    result = sig.args[0]
    assert result.ok and result.out == out and result.failure is None
    assert result.meta == layout.load_json(os.path.join(out, layout.DATA_META))
    assert ("encode", 100, 100) in progress and progress[0] == ("scan", 0, 100)
    assert layout.is_data_dir(out)


def test_prepare_job_failure_is_one_message(qtbot, tmp_path, fake_prepare):
    job = PrepareJob()
    with qtbot.waitSignal(job.finished, timeout=15000) as sig:
        job.start(PrepareRequest(("/nonexistent/corpus.txt",), str(tmp_path / "d")))
    result = sig.args[0]
    assert result.status == "failed" and not result.ok
    assert result.failure.headline == "input not found: /nonexistent/corpus.txt (usage error)"
    assert result.failure.exit_text() == "exit code 2 (bad input)"
    fake_prepare("crash")
    with qtbot.waitSignal(job.finished, timeout=15000) as sig:
        job.start(PrepareRequest(("@synthetic",), str(tmp_path / "d")))
    failure = sig.args[0].failure
    assert failure.headline == "The engine crashed (code 1): RuntimeError: fake engine crashed while encoding"
    assert not any("Traceback" in line or "File " in line for line in failure.details)
    assert not os.path.exists(tmp_path / "d" / layout.DATA_META)


def test_prepare_job_cancel_and_shutdown(qtbot, tmp_path, fake_prepare):
    fake_prepare("slow")
    job = PrepareJob()
    with qtbot.waitSignal(job.progressed, timeout=15000):
        job.start(PrepareRequest(("@synthetic",), str(tmp_path / "d")))
    with qtbot.waitSignal(job.finished, timeout=15000) as sig:
        job.cancel()
    assert sig.args[0].status == "cancelled" and not job.is_running()
    with qtbot.waitSignal(job.progressed, timeout=15000):
        job.start(PrepareRequest(("@synthetic",), str(tmp_path / "d")))
    job.shutdown()  # application exit: blocks until the engine is gone
    assert not job.is_running()


# ------------------------------------------------------------------ WorkspaceSession
@pytest.mark.parametrize("switch", [False, True])
def test_demo_workspace_prepares_its_data_once(qtbot, fake_engine, tmp_path, switch):
    """The demo's data is prepared once, in the background. Switched to a new workspace meanwhile (`switch`),
    the status bar said 'press Start (Ctrl+R) to train the demo run' over a workspace with no run."""
    ws = demo.ensure_demo_workspace()
    session = WorkspaceSession()
    messages = []
    session.status_message.connect(lambda text, _ms: messages.append(text))
    session.open(ws.root)
    with qtbot.waitSignal(session.data_changed, timeout=15000):
        assert session.prepare_demo_data()
        if switch:
            session.open(Workspace.create(str(tmp_path / "other")).root)
    assert demo.demo_data_ready(ws)
    if switch:
        assert messages[-1] == "Demo data ready (File > Open Demo Workspace)"
        return
    assert messages[0] == "Preparing the demo data…" and any(m.endswith("100%") for m in messages)
    assert messages[-1] == "Demo data ready: press Start (Ctrl+R) to train the demo run"
    assert not session.prepare_demo_data()  # ready: nothing to do
    assert session.controller(ws.run(demo.DEMO_RUN).dir).start_problems() == []


def test_other_workspaces_are_not_prepared(workspace):
    session = WorkspaceSession()
    session.open(workspace.root)
    assert not session.prepare_demo_data() and not session.demo_job.is_running()


def test_the_run_shown_first_and_overlays(qtbot, workspace):
    parent = workspace.run("tiny")
    write_finished_run(parent.dir, steps=100)
    other = workspace.create_run("other", parent.read_config_text())
    write_finished_run(other.dir, steps=20, status="stopped")
    session = WorkspaceSession()
    session.open(workspace.root)
    assert session.initial_run() == other.dir  # nothing running, nothing remembered: the newest
    session.select(parent.dir)
    session.open(workspace.root)
    assert session.initial_run() == parent.dir  # remembered in workspace.json
    child = session.fork_run(parent.dir, write_checkpoint(parent.dir, 60), {"train.lr": 1e-4}, "child")
    ctl, train, name, rates = session.fork_defaults(parent.dir)
    assert sorted(rates) == [ck.step for ck in parent.checkpoints()] and 0 < rates[60][0] <= train["lr"]
    assert ctl.run == parent and train["lr"] == parent.config().train.lr and name == f"tiny-from-{parent.checkpoints()[-1].step}"
    assert other.checkpoints() == [] and session.fork_defaults(other.dir) is None  # forks need one
    overlays = session.overlays(child.dir, [other.dir, child.dir])
    assert [(label, kind) for label, _h, kind in overlays] == [("tiny (parent)", "parent"),
                                                                ("other", "compare")]
    assert overlays[0][1] is session.controller(parent.dir).history


def test_close_leaves_runs_running_or_stops_them(qtbot, workspace, fake_engine):
    fake_engine("normal", hold_at="2,4")
    session = WorkspaceSession()
    session.open(workspace.root)
    ctl = session.controller(workspace.run("tiny").dir)
    assert ctl.request_start() == []
    qtbot.waitUntil(lambda: ctl.history.step >= 2, timeout=15000)
    session.shutdown(stop_running=False)  # "leave it running"
    assert not ctl.is_running() and session.controllers == {}
    session.open(workspace.root)
    again = session.controller(workspace.run("tiny").dir)
    assert [c.run.name for c in session.running()] == ["tiny"] and session.initial_run() == again.run.dir
    open(release_path(again.run.dir, 2), "w").close()
    qtbot.waitUntil(lambda: again.history.step >= 4, timeout=15000)
    with qtbot.waitSignal(session.run_finished, timeout=15000, raising=False) as sig:
        session.stop_all()
    assert sig.signal_triggered, f"no run_finished after stop_all: {_job_state(again)}"
    assert sig.args == [again.run.dir, "stopped", ""] and again.history.step == 4


def _job_state(ctl) -> str:
    """What a followed engine's job knows, for a stop that never ended (seen once in a full suite run)."""
    from studio.workspace.proc import fingerprint

    job, run = ctl.job, ctl.run
    launcher = run.launcher()
    tail = open(run.metrics_path, encoding="utf-8").read()[-400:] if os.path.exists(run.metrics_path) else ""
    return (f"running={job.is_running()} stopping={job.is_stopping()} engine_pid={job._engine_pid} "
            f"engine_fp={job._engine_fp} launcher_pid={job._launcher_pid} pid()={job.pid()} "
            f"live_pids={run.live_pids()} launcher.json={launcher} "
            f"now_fp={fingerprint(launcher.get('pid'))} exit.json={os.path.exists(run.path(layout.EXIT_JSON))} "
            f"metrics tail={tail!r}")
