"""Issue 14, item 4: one bad file in a run folder must not crash the studio.

Each repro of the issue is written into a finished run 'demo' next to a healthy new run 'tiny'. The main
window opens the workspace without an exception, lists both runs, shows 'demo' as damaged with what is
wrong (runs list tooltip, banner) and 'tiny' works as before.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from core import layout
from studio.workspace.metrics import RunHistory
from studio.workspace.run import Run
from tests.studio.helpers import open_window, write_finished_run


def _append(path: str, text: str) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(text)


def _checkpoint_event(step_json: str):
    def damage(run: Run) -> None:
        _append(run.metrics_path, '{"event": "checkpoint", "step": ' + step_json + ', "path": "x", "time": 5}\n')
    return damage


def _json_file(name: str, text: str):
    def damage(run: Run) -> None:
        with open(run.path(name), "w", encoding="utf-8") as fh:
            fh.write(text)
    return damage


def _metrics_is_a_folder(run: Run) -> None:
    os.remove(run.metrics_path)
    os.makedirs(os.path.join(run.metrics_path, "x"))


def _config_not_utf8(run: Run) -> None:
    with open(run.config_path, "wb") as fh:
        fh.write(b"model: {n_layer: 2}\n# caf\xe9 \xff\xfe\n")


DAMAGE = {
    "checkpoint step 1e999": (_checkpoint_event("1e999"), "metrics.jsonl"),
    "checkpoint step nan": (_checkpoint_event('"nan"'), "metrics.jsonl"),
    "checkpoint step [1]": (_checkpoint_event("[1]"), "metrics.jsonl"),
    "eval step 1e999": (lambda run: _append(run.metrics_path, '{"event": "eval", "step": 1e999, "val_loss": 1}\n'),
                        "metrics.jsonl"),
    "start step abc": (lambda run: _append(run.metrics_path, '{"event": "start", "start_step": "abc"}\n'),
                       "metrics.jsonl"),
    "launcher pid abc": (_json_file(layout.LAUNCHER_JSON, '{"pid": "abc"}'), "launcher.json"),
    "launcher huge pid": (_json_file(layout.LAUNCHER_JSON, f'{{"pid": {2 ** 80}, "launcher_pid": 1e999}}'),
                          "launcher.json"),
    "run.json pid 1234x": (_json_file(layout.RUN_JSON, '{"pid": "1234x", "status": "running"}'), "run.json"),
    "metrics.jsonl is a folder": (_metrics_is_a_folder, "metrics.jsonl"),
    "config.yaml not UTF-8": (_config_not_utf8, "config.yaml"),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_a_bad_file_shows_the_run_as_damaged(qtbot, workspace, case):
    damage, culprit = DAMAGE[case]
    run = workspace.create_run("demo", workspace.run("tiny").read_config_text())
    write_finished_run(run.dir, status="done")
    damage(run)
    w = open_window(qtbot, workspace.root, close_policy="leave")
    tree = w.runs_panel.tree
    rows = {tree.topLevelItem(i).text(0): tree.topLevelItem(i) for i in range(tree.topLevelItemCount())}
    assert set(rows) == {"tiny", "demo"}
    assert rows["demo"].text(1) == "damaged" and culprit in rows["demo"].toolTip(1)
    assert rows["tiny"].text(1) == "new" and rows["tiny"].toolTip(1) == ""
    w.select_run(run.dir)
    assert "demo" in w.training.status_label.text() and "damaged" in w.training.status_label.text()
    assert w.training.error_banner.isVisible() and culprit in w.training.error_banner.text()
    w.select_run(workspace.run("tiny").dir)  # the rest of the workspace works
    assert w.config_editor.text() == workspace.run("tiny").read_config_text()
    assert w.training.start_button.isEnabled()


@pytest.mark.parametrize("step", [1e999, float("nan"), "nan", [1], True, -3, "12"])
def test_history_skips_events_with_a_bad_step(step):
    h = RunHistory()
    for kind in ("checkpoint", "step", "eval"):
        assert h.apply({"event": kind, "step": step, "val_loss": 1.0, "path": "p"}) == ""
    assert not h.checkpoints and len(h.steps) == 0 and len(h.evals) == 0 and h.step == 0
    assert h.bad_events == 3 and all("metrics.jsonl" in p for p in h.problems)
    assert h.apply({"event": "checkpoint", "step": 5.0, "path": "p"}) == "checkpoint" and h.checkpoints[0].step == 5


def test_a_healthy_run_has_no_problems(workspace):
    run = workspace.create_run("demo", workspace.run("tiny").read_config_text())
    write_finished_run(run.dir, status="done")
    layout.atomic_write_json(run.path(layout.EXIT_JSON), {"code": 0, "ended": 2.0, "started": 1.0})
    assert run.problems(run.load_history()) == [] and run.status() == "done"
    with open(run.metrics_path, "ab") as fh:
        fh.write(b'{"event": "step", "step": 10')  # torn by a kill: not damage
    assert run.problems(run.load_history()) == [] and run.status() == "done"


def test_screenshot_of_a_workspace_with_a_non_utf8_config(tmp_path):
    """`llm-studio --screenshot` on a workspace whose finished run has a non-UTF-8 config.yaml."""
    root = _demo_workspace(tmp_path, _config_not_utf8)
    out = tmp_path / "shot.png"
    done = _screenshot(root, out, "config")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and out.stat().st_size > 1000


def _demo_workspace(tmp_path, damage) -> str:
    """A workspace --screenshot accepts without training: prepared (fake) data and a finished 'demo'."""
    from studio import demo
    from studio.workspace.workspace import Workspace
    from tests.studio.helpers import write_data_dir

    ws = Workspace.create(str(tmp_path / "shot-ws"))
    write_data_dir(demo.demo_data_dir(ws))
    run = ws.create_run(demo.DEMO_RUN, demo.tiny_config_text(max_steps=100))
    write_finished_run(run.dir, status="done")
    damage(run)
    ok = ws.create_run("ok", demo.tiny_config_text(max_steps=100))  # what --screenshot shows (done)
    write_finished_run(ok.dir, status="done")
    ws.update_settings(current_run=run.dir)  # the damaged run is selected first when the window opens
    return ws.root


def _screenshot(root: str, out, panel: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen",
               PYTHONPATH=os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")]))
    env.pop("LLM_STUDIO_ENGINE", None)
    return subprocess.run([sys.executable, "-m", "studio", "--screenshot", str(out), "--panel", panel, root], env=env, capture_output=True, text=True, timeout=240)


def test_damage_messages_quote_values_briefly(workspace):
    run = workspace.run("tiny")
    layout.atomic_write(run.path(layout.LAUNCHER_JSON), json.dumps({"pid": "x" * 100000}))
    problems = run.problems()
    assert len(problems) == 1 and len(problems[0]) < 200 and "launcher.json" in problems[0]
