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
    monkeypatch.setenv("FAKE_ENGINE_STEP_S", "0.005")

    def configure(mode: str = "normal", **env: str) -> None:
        monkeypatch.setenv("FAKE_ENGINE_MODE", mode)
        for key, value in env.items():
            monkeypatch.setenv(key, str(value))

    return configure


@pytest.fixture
def workspace(tmp_path):
    """A workspace with (fake) prepared data in data/demo and one new run 'tiny' using it."""
    from studio.workspace.workspace import Workspace

    ws = Workspace.create(str(tmp_path / "ws"))
    data = os.path.join(ws.data_dir, "demo")
    os.makedirs(data)
    with open(os.path.join(data, "meta.json"), "w") as fh:
        fh.write('{"vocab_size": 65, "tokenizer": "char"}')
    ws.create_run("tiny", TINY_CONFIG)
    return ws
