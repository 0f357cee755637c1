"""Issue 14's corruption sweep (engine commands) and items 8, 9, 10: every file of a checkpoint, a data
folder and a run folder emptied, zeroed, truncated and garbled in turn, and each command that reads it run:
no traceback, exit code 2 with a message naming the file (or success where the damage leaves usable input,
e.g. resume falling back to the previous checkpoint)."""

from __future__ import annotations

import os
import random
import shutil

import pytest
from engine_helpers import write_config

from core.cli import main

MODES = ("empty", "zeroed", "truncated", "garbled")
CKPT_FILES = ("meta.json", "model.safetensors", "state.pt", "tokenizer.json")
DATA_FILES = ("meta.json", "tokenizer.json", "train.bin", "val.bin")


def damage(path: str, mode: str) -> None:
    with open(path, "rb") as fh:
        data = fh.read()
    if mode == "empty":
        data = b""
    elif mode == "zeroed":
        data = bytes(len(data))
    elif mode == "truncated":
        data = data[: len(data) // 2]
    else:  # 64 random bytes in the middle: silent corruption unless something checks
        rng = random.Random(len(data))
        mid = len(data) // 2
        data = data[:mid] + bytes(rng.randrange(256) for _ in range(64)) + data[mid + 64:]
    with open(path, "wb") as fh:
        fh.write(data)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, char_data) -> str:
    """A finished run with checkpoints at steps 2 and 4 (the folder holding run.yaml and runs/r)."""
    folder = tmp_path_factory.mktemp("sweep")
    cfg = write_config(folder, char_data, train={"max_steps": 4, "checkpoint_interval": 2})
    assert main(["train", "--config", cfg]) == 0
    return str(folder)


def _copy(trained: str, tmp_path) -> tuple[str, str, str]:
    """(config, run folder, newest checkpoint) of a private copy of the trained run."""
    dest = str(tmp_path / "w")
    shutil.copytree(trained, dest)
    run_dir = os.path.join(dest, "runs", "r")
    return os.path.join(dest, "run.yaml"), run_dir, os.path.join(run_dir, "checkpoints", "step-000004")


def _bad_input(code: int, err: str, names: tuple[str, ...]) -> None:
    assert code == 2, err[-2000:]
    assert "Traceback" not in err, err[-2000:]
    assert any(name in err for name in names), err[-2000:]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", CKPT_FILES)
def test_damaged_checkpoint_file(trained, char_data, tmp_path, capsys, name, mode):
    cfg, run_dir, step4 = _copy(trained, tmp_path)
    damage(os.path.join(step4, name), mode)
    names = (name, "meta.json")  # a damaged meta.json may also misreport another file's checksum
    capsys.readouterr()
    if name != "state.pt":  # generate, attention and serve read everything but the training state
        code = main(["generate", "--checkpoint", step4, "--max-new-tokens", "2", "--device", "cpu"])
        _bad_input(code, capsys.readouterr().err, names)
        if mode == "garbled":
            code = main(["attention", "--checkpoint", step4, "--text", "ab", "--out",
                         str(tmp_path / "a.npz"), "--device", "cpu"])
            _bad_input(code, capsys.readouterr().err, names)
            code = main(["serve", "--checkpoint", step4, "--device", "cpu", "--scratch", str(tmp_path / "s")])
            _bad_input(code, capsys.readouterr().err, names)
    if mode == "garbled":  # fork from it: refused, naming the file
        child = write_config(os.path.dirname(cfg), char_data, name="c.yaml", run={"dir": "runs/c"},
                             train={"max_steps": 6, "init_from": step4})
        _bad_input(main(["train", "--config", child]), capsys.readouterr().err, names)
    # resume: the damaged newest checkpoint is skipped, saying so, and step 2 continues
    code = main(["train", "--config", cfg, "--resume", "--set", "train.max_steps=6"])
    err = capsys.readouterr().err
    assert code == 0 and "Traceback" not in err, err[-2000:]
    assert "damaged" in err and "step-000002" in err, err[-2000:]
    assert os.path.isdir(os.path.join(run_dir, "checkpoints", "step-000006"))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", DATA_FILES)
def test_damaged_data_file(char_data, tmp_path, capsys, name, mode):
    data = str(tmp_path / "data")
    shutil.copytree(char_data, data)
    damage(os.path.join(data, name), mode)
    cfg = write_config(tmp_path, data, train={"max_steps": 2})
    capsys.readouterr()
    code = main(["train", "--config", cfg])
    err = capsys.readouterr().err
    if mode == "zeroed" and name.endswith(".bin"):  # all ids 0: still valid data
        assert code == 0, err[-2000:]
        return
    _bad_input(code, err, (name,))
    assert not os.path.exists(tmp_path / "runs" / "r" / "checkpoints"), "nothing written for bad input"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", ("run.json", "metrics.jsonl", "config.yaml", "config.resolved.yaml"))
def test_damaged_run_folder_file_does_not_stop_a_resume(trained, tmp_path, capsys, name, mode):
    cfg, run_dir, _ = _copy(trained, tmp_path)
    damage(os.path.join(run_dir, name), mode)
    capsys.readouterr()
    code = main(["train", "--config", cfg, "--resume", "--set", "train.max_steps=6"])
    err = capsys.readouterr().err
    assert code == 0 and "Traceback" not in err, err[-2000:]
    assert os.path.isdir(os.path.join(run_dir, "checkpoints", "step-000006"))
