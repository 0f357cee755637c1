"""Studio test fixtures: isolated settings and workspaces, the fake engine, no engine left running."""

from __future__ import annotations

import gc
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE_ENGINE = os.path.join(HERE, "fake_engine.py")

TINY_CONFIG = """\
model: {n_layer: 2, n_head: 2, n_embd: 32, block_size: 32}
data: {dir: ../../data/demo}
train: {batch_size: 8, max_steps: 200, eval_interval: 20, eval_steps: 4, checkpoint_interval: 50,
        warmup_steps: 10, device: cpu, lr: 3.0e-3, min_lr: 3.0e-4}
run: {dir: .}
"""


@pytest.fixture(autouse=True)
def _isolated_studio(tmp_path, monkeypatch):
    """QSettings and the demo workspace location point into the test's temp folder."""
    monkeypatch.setenv("LLM_STUDIO_SETTINGS", str(tmp_path / "settings.ini"))
    monkeypatch.setenv("LLM_STUDIO_HOME", str(tmp_path / "home"))
    yield


@pytest.fixture(autouse=True)
def _no_engine_left_running():
    """Fail a test that leaves an engine process (QProcess or detached training job) running."""
    yield
    gc.collect()  # collect this test's Qt wrappers now, not in the middle of the next test
    from studio.engine.process import running_processes
    from studio.engine.training import running_jobs

    procs, jobs = running_processes(), running_jobs()
    for proc in procs:
        proc.kill()
        proc.wait_for_finished(5000)
    for job in jobs:
        job.kill()
        job.wait_until_finished(10)
    if procs or jobs:
        pytest.fail(f"test left {len(procs)} engine process(es) and {len(jobs)} training job(s) running")


@pytest.fixture
def fake_engine(monkeypatch):
    """Route every engine command to the scripted fake engine; returns a setter for its mode."""
    monkeypatch.setenv("LLM_STUDIO_ENGINE", f"{sys.executable} {FAKE_ENGINE}")
    monkeypatch.setenv("FAKE_ENGINE_MODE", "normal")
    monkeypatch.delenv("FAKE_ENGINE_HOLD_AT", raising=False)

    def configure(mode: str = "normal", hold_at: str | int | None = None, **env: str) -> None:
        """`hold_at`: step(s) where the engine waits until it is stopped or released (see fake_engine)."""
        monkeypatch.setenv("FAKE_ENGINE_MODE", mode)
        if hold_at is None:
            monkeypatch.delenv("FAKE_ENGINE_HOLD_AT", raising=False)
        else:
            monkeypatch.setenv("FAKE_ENGINE_HOLD_AT", str(hold_at))
        for key, value in env.items():
            monkeypatch.setenv(key, str(value))

    return configure


@pytest.fixture
def workspace(tmp_path):
    """A workspace with (fake) prepared data in data/demo and one new run 'tiny' using it."""
    from studio.workspace.workspace import Workspace
    from tests.studio.helpers import write_data_dir

    ws = Workspace.create(str(tmp_path / "ws"))
    write_data_dir(os.path.join(ws.data_dir, "demo"))
    ws.create_run("tiny", TINY_CONFIG)
    return ws


@pytest.fixture
def window(qtbot):
    """`window(root=None, size="default")`: a shown MainWindow with every panel built (tests.studio.helpers)."""
    from tests.studio.helpers import open_window

    def make(workspace_root: str | None = None, size: tuple[int, int] | str = "default"):
        return open_window(qtbot, workspace_root, size=size)

    return make
