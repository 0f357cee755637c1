"""`llm-train train/serve --threads N`: torch uses N CPU threads (the studio shares the cores with it)."""

from __future__ import annotations

import sys

import pytest
import torch

from core.cli import _set_threads, build_parser
from core.errors import EXIT_BAD_INPUT


@pytest.mark.parametrize("command", [["train", "--config", "x.yaml"], ["serve", "--checkpoint", "ck"]])
def test_threads_sets_torch_threads(command):
    before = torch.get_num_threads()
    args = build_parser().parse_args([*command, "--threads", "1"])
    try:
        _set_threads(args)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    assert build_parser().parse_args(command).threads == 0  # default: torch's own choice


def test_negative_threads_is_bad_input(capsys):
    from core.cli import main

    assert main(["train", "--config", "x.yaml", "--threads", "-2"]) == EXIT_BAD_INPUT
    assert "--threads: -2" in capsys.readouterr().err


def test_thread_share_applies_a_changed_control_file_only(tmp_path):
    """control.json asks a running run for a thread count; one left from before the run is not applied."""
    import json
    import os

    from core.runinfo import ThreadShare

    before = torch.get_num_threads()
    path = tmp_path / "control.json"
    path.write_text(json.dumps({"threads": 1}))
    share = ThreadShare(str(tmp_path), enabled=True)
    try:
        assert share.poll() is None and torch.get_num_threads() == before  # stale: written before the start
        target = 2 if before == 1 else 1
        path.write_text(json.dumps({"threads": target}))
        os.utime(path, ns=(1, os.stat(path).st_mtime_ns + 1_000_000))
        assert share.poll() == target and torch.get_num_threads() == target
        assert share.poll() is None  # unchanged since
        for bad in ({"threads": 0}, {"threads": True}, {"threads": "2"}, {"other": 1}, "not json"):
            path.write_text(bad if isinstance(bad, str) else json.dumps(bad))
            os.utime(path, ns=(1, os.stat(path).st_mtime_ns + 1_000_000))
            assert share.poll() is None and torch.get_num_threads() == target, bad
        assert ThreadShare(str(tmp_path), enabled=False).poll() is None
    finally:
        torch.set_num_threads(before)


def test_a_training_run_takes_the_thread_count_the_control_file_asks_for(tmp_path, char_data):
    """The real engine: launched with 2 threads, asked for 1 while it trains, says so and trains on."""
    import json
    import os
    import subprocess
    import sys

    from tests.core.engine_helpers import ROOT, write_config

    cfg = write_config(tmp_path, char_data, train={"max_steps": 4000, "log_interval": 1})
    proc = subprocess.Popen([sys.executable, "-m", "core", "train", "--config", cfg, "--events", "--threads", "2"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": ROOT})
    seen, asked_at = [], None
    try:
        for line in proc.stdout:
            ev = json.loads(line)
            seen.append(ev)
            if ev["event"] == "step" and asked_at is None and ev["step"] >= 3:
                (tmp_path / "runs" / "r" / "control.json").write_text(json.dumps({"threads": 1}))
                asked_at = ev["step"]
            if ev["event"] == "log" and "CPU threads" in ev["message"]:
                proc.stdin.write("stop\n")
                proc.stdin.flush()
            if ev["event"] in ("done", "stopped", "error"):
                break
    finally:
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    logs = [e for e in seen if e["event"] == "log"]
    assert asked_at is not None and logs and logs[0]["message"] == "CPU threads: 1 (the studio's share)"
    assert seen[-1]["event"] == "stopped" and seen[-1]["step"] > asked_at


@pytest.mark.parametrize("platform", ["linux", "darwin", "win32"])
def test_share_cores_bounds_the_spinning_of_waiting_threads_unless_the_user_chose(monkeypatch, platform):
    import os

    from core.cli import SHARE_SPINCOUNT

    monkeypatch.setattr(sys, "platform", platform)
    for name in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT"):
        monkeypatch.delenv(name, raising=False)
    args = build_parser().parse_args(["train", "--config", "x.yaml", "--share-cores"])
    _set_threads(args)
    if platform == "linux":  # torch's GNU OpenMP: a short spin, then sleep
        assert os.environ["GOMP_SPINCOUNT"] == str(SHARE_SPINCOUNT) and "OMP_WAIT_POLICY" not in os.environ
        assert 0 < SHARE_SPINCOUNT < 10_000
        monkeypatch.delenv("GOMP_SPINCOUNT")
    else:  # another OpenMP runtime: sleep at once
        assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE" and "GOMP_SPINCOUNT" not in os.environ
        monkeypatch.delenv("OMP_WAIT_POLICY")
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")  # the user's own choice stays
    _set_threads(args)
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE" and "GOMP_SPINCOUNT" not in os.environ
    monkeypatch.delenv("OMP_WAIT_POLICY")
    monkeypatch.setenv("GOMP_SPINCOUNT", "1000")
    _set_threads(args)
    assert "OMP_WAIT_POLICY" not in os.environ and os.environ["GOMP_SPINCOUNT"] == "1000"
    assert not build_parser().parse_args(["train", "--config", "x.yaml"]).share_cores
