"""Issue 14, engine side of training: non-finite checkpoints (3), the run-folder lock (6), and friends."""

from __future__ import annotations

import glob
import json
import os

import torch
from engine_helpers import write_config
from safetensors.torch import load_file

from core.cli import main


def _checkpoints(run_dir: str) -> list[str]:
    return sorted(glob.glob(os.path.join(run_dir, "checkpoints", "step-*")))


def test_no_checkpoint_with_non_finite_weights_is_written_or_named(tmp_path, char_data, capsys):
    # The repro: eps=0 makes Adam divide 0 by 0 (NaN weights) while the loss is logged only every 10 steps.
    cfg = write_config(tmp_path, char_data, train={"max_steps": 30, "log_interval": 10, "checkpoint_interval": 5})
    code = main(["train", "--config", cfg, "--events", "--set", "train.eps=0",
                 "--set", "model.tie_embeddings=false"])
    run_dir = os.path.join(tmp_path, "runs", "r")
    for folder in _checkpoints(run_dir):
        weights = load_file(os.path.join(folder, "model.safetensors"))
        assert all(torch.isfinite(t).all() for t in weights.values()), f"non-finite weights in {folder}"
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    errors = [e for e in events if e["event"] == "error"]
    assert code == 1 and errors and errors[-1]["kind"] == "nonfinite"
    named = errors[-1]["checkpoint"]
    assert named is None or named in _checkpoints(run_dir)
    with open(os.path.join(run_dir, "run.json"), encoding="utf-8") as fh:
        assert json.load(fh)["status"] == "failed"


def test_a_second_training_into_a_locked_run_folder_is_refused(tmp_path, char_data):
    # Another engine holds the folder (as a running training does): the second one is refused, exit 2,
    # naming the running one; nothing of the folder is touched.
    import fcntl
    import subprocess
    import sys

    from engine_helpers import ROOT, engine

    cfg = write_config(tmp_path, char_data, train={"max_steps": 3})
    run_dir = tmp_path / "runs" / "r"
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text(json.dumps({"status": "running", "pid": 4242, "host": "elsewhere"}))
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, os, sys, time\n"
                               f"fd = os.open({str(run_dir / '.lock')!r}, os.O_RDWR | os.O_CREAT)\n"
                               "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('held', flush=True)\ntime.sleep(120)"],
                              stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout.readline().strip() == "held"
        out = engine("train", "--config", cfg, "--events")
        assert out.returncode == 2, out.stderr[-2000:]
        assert "4242" in out.stderr and "elsewhere" in out.stderr and "Traceback" not in out.stderr
        assert not (run_dir / "metrics.jsonl").exists() and not (run_dir / "checkpoints").exists()
    finally:
        holder.kill()
        holder.wait()
    assert engine("train", "--config", cfg).returncode == 0  # the lock dies with its holder
    fd = os.open(str(run_dir / ".lock"), os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # and the finished engine released it
    os.close(fd)


def test_resume_of_a_run_killed_before_its_first_checkpoint_starts_afresh(tmp_path, char_data, capsys):
    cfg = write_config(tmp_path, char_data, train={"max_steps": 4})
    run_dir = tmp_path / "runs" / "r"
    run_dir.mkdir(parents=True)
    (run_dir / "metrics.jsonl").write_text('{"v":1,"event":"start","step":0}\n{"v":1,"event":"step","st')
    (run_dir / "run.json").write_text(json.dumps({"status": "running", "pid": 1}))
    assert main(["train", "--config", cfg, "--resume"]) == 0
    assert "afresh" in capsys.readouterr().err
    assert _checkpoints(str(run_dir))[-1].endswith("step-000004")


def test_a_torn_last_metrics_line_does_not_swallow_the_next_event(tmp_path, char_data):
    from core.sinks import FileSink

    path = tmp_path / "metrics.jsonl"
    path.write_text('{"v":1,"event":"step","step":1}\n{"v":1,"event":"st')
    sink = FileSink(str(path))
    sink.emit({"v": 1, "event": "start", "step": 1})
    sink.close()
    lines = path.read_text().splitlines()
    assert json.loads(lines[-1])["event"] == "start"


def _events(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_disk_full_while_writing_a_checkpoint_is_said_plainly(tmp_path, char_data, capsys, monkeypatch):
    import errno

    from core import checkpoint

    def full(*args, **kwargs):  # torch reports ENOSPC inside torch.save as "unexpected pos ..."
        raise RuntimeError("[enforce fail at inline_container.cc:783] . PytorchStreamWriter failed writing "
                           "file data/3: file write failed; unexpected pos 123 vs 64")

    monkeypatch.setattr(checkpoint.torch, "save", full)
    cfg = write_config(tmp_path, char_data, train={"max_steps": 4, "checkpoint_interval": 2})
    assert main(["train", "--config", cfg, "--events"]) == 1
    error = _events(capsys.readouterr().out)[-1]
    assert error["event"] == "error" and error["kind"] == "disk_full"
    assert "disk is full" in error["message"] and "step-000002" in error["message"] and "MB" in error["message"]
    run_dir = tmp_path / "runs" / "r"
    assert json.loads((run_dir / "run.json").read_text())["status"] == "failed"
    assert not [n for n in os.listdir(run_dir / "checkpoints") if n.startswith(".tmp")]
    assert errno.ENOSPC  # the same path is taken for a plain OSError(ENOSPC)


def test_disk_full_while_writing_metrics_ends_the_run_cleanly(tmp_path, char_data, capsys, monkeypatch):
    import errno

    from core import sinks

    real = sinks.encode
    calls = {"n": 0}

    def encode(event):
        import sys

        if isinstance(sys._getframe(1).f_locals.get("self"), sinks.FileSink):
            calls["n"] += 1
            if calls["n"] >= 4:  # from the fourth metrics line on, nothing fits
                raise OSError(errno.ENOSPC, "No space left on device")
        return real(event)

    monkeypatch.setattr(sinks, "encode", encode)
    cfg = write_config(tmp_path, char_data, train={"max_steps": 6})
    code = main(["train", "--config", cfg, "--events"])
    out, err = capsys.readouterr()
    assert code == 1
    assert "metrics.jsonl" in err and "disk is full" in err
    run_dir = tmp_path / "runs" / "r"
    assert json.loads((run_dir / "run.json").read_text())["status"] == "failed"


def test_cpu_out_of_memory_is_reported_as_oom(tmp_path, char_data, capsys, monkeypatch):
    from core import train as train_module

    def no_memory(*args, **kwargs):
        raise MemoryError()

    monkeypatch.setattr(train_module, "optimizer_step", no_memory)
    cfg = write_config(tmp_path, char_data, train={"max_steps": 2})
    assert main(["train", "--config", cfg, "--events"]) == 1
    assert _events(capsys.readouterr().out)[-1]["kind"] == "oom"


def test_sigterm_just_after_done_still_exits_0(tmp_path, char_data):
    import signal
    import subprocess
    import sys
    import time

    from engine_helpers import ROOT

    cfg = write_config(tmp_path, char_data, train={"max_steps": 2})
    # Keep the engine alive after `done` a moment (an atexit hook that sleeps), as a slow exit would be.
    code = ("import atexit, sys, time\natexit.register(time.sleep, 30)\nfrom runpy import run_module\n"
            f"sys.argv = ['llm-train', 'train', '--config', {cfg!r}, '--events']\n"
            "run_module('core', run_name='__main__', alter_sys=True)\n")
    env = {**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    for line in proc.stdout:
        if '"event":"done"' in line.replace(" ", ""):
            break
    time.sleep(1.0)  # past `done`, inside the slow exit
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0
    proc.stdout.close()


def test_a_validation_split_too_small_to_evaluate_is_refused_before_training(tmp_path, capsys):
    """37 validation tokens cannot fill one block of 64: the refusal comes at set-up, before a step is
    trained or a `start` event written (it came at the first evaluation, leaving the run "running")."""
    text = tmp_path / "small.txt"
    text.write_text("".join(f"line {i}: the quick brown fox jumps over the lazy dog.\n" for i in range(60)))
    assert main(["prepare", "--input", str(text), "--out", str(tmp_path / "d"), "--tokenizer", "char",
                 "--val-fraction", "0.013"]) == 0
    with open(tmp_path / "d" / "meta.json", encoding="utf-8") as fh:
        assert json.load(fh)["val_tokens"] < 64 + 2
    capsys.readouterr()
    cfg = write_config(tmp_path, str(tmp_path / "d"), model={"block_size": 64}, train={"eval_interval": 5})
    code = main(["train", "--config", cfg, "--events"])
    out = capsys.readouterr()
    events = [json.loads(line) for line in out.out.splitlines() if line.startswith("{")]
    assert code == 2 and "validation split is too small" in out.err + out.out
    assert not [e for e in events if e["event"] in ("start", "step")]
    run_json = os.path.join(tmp_path, "runs", "r", "run.json")
    assert not os.path.exists(run_json) or json.load(open(run_json, encoding="utf-8"))["status"] != "running"
