"""InferenceWorker.load while the worker is still starting: the old process is killed and the new one
started when it has ended, never waited on in the GUI thread (review finding 20); requests made meanwhile
are answered by the new checkpoint's worker."""

from __future__ import annotations

import os

import pytest

from studio.engine.process import EngineProcess
from studio.engine.worker import InferenceWorker
from tests.studio.test_generation_panel import ckpt, tiny_workspace

WAIT_MS = 180_000


@pytest.fixture
def checkpoints(tmp_path_factory) -> tuple[str, str]:
    root = tiny_workspace(tmp_path_factory)
    return ckpt(root, 20), ckpt(root, 40)


def test_switching_checkpoints_while_starting_never_blocks_and_serves_the_new_one(qtbot, checkpoints, monkeypatch):
    first, second = checkpoints
    worker = InferenceWorker(first, auto_restart=False)
    try:
        worker.start()
        old_pid = worker.pid()
        assert worker.state == "starting" and old_pid

        def refuse(*_a, **_k):
            raise AssertionError("load() waited for a process in the GUI thread")

        monkeypatch.setattr(EngineProcess, "wait_for_finished", refuse)
        assert worker.load(second) == ""
        assert worker.load(second) == ""  # a second switch before the old process ended: still one restart
        rid = worker.request("generate", prompt="ab", max_new_tokens=3, temperature=0.0)
        monkeypatch.undo()
        with qtbot.waitSignal(worker.result_received, timeout=WAIT_MS,
                              check_params_cb=lambda ev: ev.get("id") == rid) as blocker:
            pass
        assert worker.state == "ready" and worker.pid() != old_pid
        assert os.path.realpath(worker.info["checkpoint"]) == os.path.realpath(second)
        assert blocker.args[0]["op"] == "generate"
    finally:
        worker.shutdown(wait_ms=5000)
