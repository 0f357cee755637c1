"""Review finding 9: system metrics never block the GUI thread on nvidia-smi, and the process tree is
walked from the engine down instead of reading every process of the machine."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest
from PySide6.QtCore import QTimer

from studio.controllers.system import GpuQuery
from studio.workspace import sysmetrics
from studio.workspace.sysmetrics import process_tree

SMI = "87, 10240, 81559, 64\n12, 300, 81559, 41\n"


def _script(tmp_path, body: str) -> str:
    path = tmp_path / "fake-nvidia-smi"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def test_a_slow_nvidia_smi_does_not_block_and_its_answer_is_kept(qtbot, tmp_path):
    smi = _script(tmp_path, f"sleep 1\nprintf '{SMI}'")
    query = GpuQuery(command=[smi, "--query-gpu=x"])
    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(10)
    query.request()
    assert query.latest is None  # returned at once: the answer comes later
    query.request()              # one query at a time: this one is dropped, not queued
    with qtbot.waitSignal(query.answered, timeout=10000):
        pass
    timer.stop()
    assert len(ticks) >= 10, "the event loop stalled while nvidia-smi ran"
    assert [g["util_percent"] for g in query.latest] == [87.0, 12.0] and query.available


@pytest.mark.parametrize("body", ["exit 9", "echo 'NVIDIA-SMI has failed'; exit 0"])
def test_a_failing_nvidia_smi_is_asked_no_more(qtbot, tmp_path, body):
    query = GpuQuery(command=[_script(tmp_path, body)])
    with qtbot.waitSignal(query.answered, timeout=10000):
        query.request()
    assert not query.latest and not query.available
    query.request()
    assert not query.busy()


def test_a_missing_program_means_no_gpu(qtbot, tmp_path):
    query = GpuQuery(command=[str(tmp_path / "no-such-nvidia-smi")])
    with qtbot.waitSignal(query.answered, timeout=10000):
        query.request()
    assert query.latest is None and not query.available


def test_process_tree_from_children_files_equals_the_full_scan():
    """(On a kernel without /proc/PID/task/TID/children process_tree falls back to the scan: equal too.)"""
    code = "import subprocess, time; subprocess.Popen(['sleep', '30']); subprocess.Popen(['sleep', '30']); time.sleep(30)"
    parent = subprocess.Popen(["sh", "-c", f"{sys.executable} -c \"{code}\" & sleep 30"])
    try:
        want = []
        for _ in range(100):  # until the grandchildren exist
            want = sysmetrics._process_tree_by_scan(parent.pid, "/proc")
            if len(want) >= 5:
                break
            subprocess.run(["sleep", "0.05"])
        assert len(want) >= 5
        assert sorted(process_tree(parent.pid)) == sorted(want)
    finally:
        for pid in process_tree(parent.pid)[1:]:
            try:
                os.kill(pid, 9)
            except OSError:
                pass
        parent.kill()
        parent.wait()
    assert process_tree(2**22 + 12345) == []
