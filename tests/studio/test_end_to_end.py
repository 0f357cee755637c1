"""End to end with the real engine, and the studio process staying torch-free."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from PySide6.QtCore import Qt

from studio import demo
from studio.main_window import MainWindow
from studio.settings import Settings
from studio.workspace.workspace import with_changes
from tests.studio.helpers import open_window

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


GUI_PROBE = """
import sys
from studio.app import create_application
from studio.main_window import MainWindow

app = create_application()
w = MainWindow()
w.show()
w.open_workspace(sys.argv[1])
w.ensure_panels()
w.show_tab("attention")
app.processEvents()
tabs = [type(w.tabs.widget(i)).__name__ for i in range(w.tabs.count())]
print("TABS", *tabs)
print("CORE", *sorted(m for m in sys.modules if m == "core" or m.startswith("core.")))
print("TORCH" if "torch" in sys.modules else "NO-TORCH")
w.close()
"""
TORCH_FREE_CORE = {"core", "core.config", "core.protocol", "core.layout", "core.errors", "core.config_text",
                   "core.import_config",  # an HF folder's config.json as ours (the Import dialog's summary)
                   "core.estimate", "core.precision", "core.shape", "core.schedule",  # sizes, precision, shape rules, LR
                   "core.corpora",  # schedule; the built-in corpora's generator (the demo's examples);
                   "core.export_families",  # which configs HF / GGUF can carry (estimates, Export dialog)
                   "core.recipe"}  # what a data set was prepared from (the Fine-tune dialog's reuse)


def _studio_env(tmp_path) -> dict:
    return dict(os.environ, QT_QPA_PLATFORM="offscreen", LLM_STUDIO_SETTINGS=str(tmp_path / "s.ini"),
                LLM_STUDIO_HOME=str(tmp_path / "home"), PYTHONPATH=ROOT)


def test_gui_process_never_imports_torch(tmp_path):
    code = ("import sys; from studio.__main__ import main; rc = main(['--quit-after-show', sys.argv[1]]); "
            "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH'); sys.exit(rc)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "ws")], env=_studio_env(tmp_path),
                         capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "first window shown" in out.stdout and "NO-TORCH" in out.stdout


def test_gui_with_every_panel_built_stays_torch_free(tmp_path):
    """The heavy panels really exist (no placeholder left in a tab) and still no torch is loaded."""
    out = subprocess.run([sys.executable, "-c", GUI_PROBE, str(tmp_path / "ws")], env=_studio_env(tmp_path),
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    lines = {line.split(" ", 1)[0]: line.split()[1:] for line in out.stdout.splitlines() if line.strip()}
    assert lines["TABS"] == ["DataPanel", "ConfigEditor", "TrainingPanel", "GenerationPanel",
                             "AttentionPanel"]
    assert set(lines["CORE"]) <= TORCH_FREE_CORE, lines["CORE"]
    assert "NO-TORCH" in lines


# The demo's own model trains for a minute or two on a laptop; these tests only need a few steps quickly.
SMALL_MODEL = {"model.n_layer": 2, "model.n_head": 2, "model.n_embd": 32, "model.block_size": 32,
               "train.batch_size": 8}


@pytest.mark.slow
def test_real_engine_prepare_train_stop_resume(qtbot, monkeypatch):
    monkeypatch.delenv("LLM_STUDIO_ENGINE", raising=False)
    w = MainWindow(Settings())
    w.close_policy = "stop"
    qtbot.addWidget(w)
    w.show()
    w.ensure_panels()
    ws = demo.ensure_demo_workspace()
    w.open_workspace(ws.root)  # first start: prepares the demo data in the background
    qtbot.waitUntil(lambda: demo.demo_data_ready(ws) and w.training.start_button.isEnabled(), timeout=60000)
    ctl = w.controller()
    assert ctl.run.name == "demo"
    w.config_editor.set_text(with_changes(ctl.run.read_config_text(), {"train.max_steps": 3000, **SMALL_MODEL}))
    qtbot.waitUntil(lambda: w.training.start_button.isEnabled(), timeout=5000)
    qtbot.mouseClick(w.training.start_button, Qt.MouseButton.LeftButton)

    def points() -> int:
        x, _ = w.training.plots.curves["raw"].getData()
        return 0 if x is None else len(x)

    qtbot.waitUntil(lambda: points() >= 20, timeout=60000)
    editor = w.config_editor  # the config in use is read-only while the run trains, and says why
    assert editor.yaml_edit.isReadOnly() and not editor.form.isEnabled() and not editor.lock_label.isHidden()
    assert "demo is training" in editor.lock_label.text()
    with qtbot.waitSignal(ctl.run_finished, timeout=60000) as blocker:
        qtbot.mouseClick(w.training.stop_button, Qt.MouseButton.LeftButton)
    assert blocker.args[0] == "stopped", blocker.args[1]
    stopped_at = ctl.history.step
    assert ctl.run.checkpoints()[-1].step == stopped_at and w.training.resume_button.isEnabled()
    assert not editor.yaml_edit.isReadOnly() and editor.form.isEnabled() and editor.lock_label.isHidden()
    # A shape edit to a trained run is flagged in the editor and blocks Resume before any launch.
    trained_text = ctl.run.read_config_text()
    editor.set_text(with_changes(trained_text, {"model.n_layer": 3}))
    qtbot.waitUntil(lambda: not w.training.resume_button.isEnabled(), timeout=5000)
    assert [p.path for p in editor.problems()] == ["model.n_layer"]
    assert f"step-{stopped_at:06d}" in editor.problems()[0].message
    assert "model.n_layer: 3 differs from 2" in w.training.blocker_label.text()
    w.save_config()
    assert not w.start_training(resume=True) and ctl.history.starts == 1  # refused here, not by the engine
    # A schedule edit does not block Resume, but what it does to the rate is said before the launch
    editor.set_text(with_changes(trained_text, {"train.lr": 1.0e-3}))
    qtbot.waitUntil(lambda: w.training.resume_button.isEnabled(), timeout=5000)
    note = w.training.blocker_label.text()
    assert note.startswith(f"Resume: train.lr 0.002 -> 0.001 since the checkpoint at step {stopped_at}: "
                           "the learning rate jumps from "), note
    assert w.training.blocker_label.isVisibleTo(w.training)
    editor.set_text(with_changes(trained_text, {"train.max_steps": 2000}))  # the bar ends where Resume will
    qtbot.waitUntil(lambda: w.training.progress.maximum() == 2000, timeout=5000)
    assert w.training.progress.value() == stopped_at
    # max_steps lowered to the checkpoint's step: the engine would refuse it; Resume says so and waits
    editor.set_text(with_changes(trained_text, {"train.max_steps": stopped_at}))
    qtbot.waitUntil(lambda: not w.training.resume_button.isEnabled(), timeout=5000)
    assert (f"Cannot resume — train.max_steps: {stopped_at} is not beyond the checkpoint's step {stopped_at}"
            in w.training.blocker_label.text())
    editor.set_text(trained_text)
    qtbot.waitUntil(lambda: w.training.resume_button.isEnabled(), timeout=5000)
    assert not w.training.blocker_label.isVisibleTo(w.training)
    qtbot.mouseClick(w.training.resume_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: ctl.history.step >= stopped_at + 10, timeout=60000)
    assert ctl.history.starts == 2 and ctl.history.start.get("resumed")
    steps = ctl.history.steps["step"].tolist()
    assert steps == list(range(1, len(steps) + 1))  # one continuous curve across the resume
    with qtbot.waitSignal(ctl.run_finished, timeout=60000) as blocker:
        w.stop_training()
    assert blocker.args[0] == "stopped"



@pytest.mark.slow
def test_two_processes_from_the_gui_train_through_torchrun_and_stop(qtbot, monkeypatch, tmp_path):
    """Processes = 2 launches torchrun (gloo on CPU); rank 0's events reach the plots; Stop is graceful."""
    monkeypatch.delenv("LLM_STUDIO_ENGINE", raising=False)
    ws = demo.ensure_demo_workspace(str(tmp_path / "ws"))
    subprocess.run([sys.executable, "-m", "core", "prepare", *demo.prepare_args(ws)], check=True, cwd=ROOT,
                   capture_output=True, env=dict(os.environ, PYTHONPATH=ROOT))
    w = open_window(qtbot, ws.root, close_policy="stop")
    qtbot.waitUntil(lambda: w.training.start_button.isEnabled(), timeout=30000)
    ctl = w.controller()
    w.config_editor.set_text(with_changes(ctl.run.read_config_text(), {"train.max_steps": 5000, **SMALL_MODEL}))
    qtbot.waitUntil(lambda: w.training.start_button.isEnabled(), timeout=5000)
    w.training.nproc_spin.setValue(2)
    qtbot.mouseClick(w.training.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: ctl.history.step >= 5, timeout=90000)
    assert ctl.history.start["world_size"] == 2
    assert ctl.history.start["tokens_per_step"] == 2 * 8 * 32  # two ranks x batch 8 x block 32
    with qtbot.waitSignal(ctl.run_finished, timeout=90000) as blocker:
        qtbot.mouseClick(w.training.stop_button, Qt.MouseButton.LeftButton)
    assert blocker.args[0] == "stopped", blocker.args[1]
    assert ctl.run.checkpoints()[-1].step == ctl.history.step


def test_sigterm_closes_the_studio_as_its_close_button_would(tmp_path):
    """A session logging out sends SIGTERM: the window closes (runs left to train), its state is saved."""
    import signal
    import time

    ws = tmp_path / "ws"
    proc = subprocess.Popen([sys.executable, "-m", "studio", "--theme", "dark", str(ws)], env=_studio_env(tmp_path),
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (ws / "workspace.json").exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)  # the event loop runs
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    settings = (tmp_path / "s.ini").read_text(encoding="utf-8")
    assert "theme=dark" in settings and "geometry" in settings, settings
