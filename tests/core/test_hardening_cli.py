"""Issue 14, items 13 and 14 (commands): unwritable run.dir / --out / --scratch and out-of-range sampling
options are bad input (exit 2, a message naming the option or file, an error event with --events), never a
traceback; init_from naming a run folder is explained; killed workers' scratch folders are cleaned up."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from engine_helpers import ROOT, write_config

from core.cli import main


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, char_data) -> str:
    folder = tmp_path_factory.mktemp("cli")
    assert main(["train", "--config", write_config(folder, char_data, train={"max_steps": 2})]) == 0
    return os.path.join(folder, "runs", "r")


@pytest.mark.parametrize("option, value", [("--top-k", "-1"), ("--temperature", "nan"),
                                           ("--repetition-penalty", "0"), ("--seed", str(2**80)),
                                           ("--device", "banana"), ("--temperature", "inf")])
def test_generate_refuses_bad_sampling_options(run_dir, capsys, option, value):
    code = main(["generate", "--run", run_dir, "--max-new-tokens", "2", option, value])
    err = capsys.readouterr().err
    assert code == 2 and option in err and "Traceback" not in err, err


def _a_file(tmp_path) -> str:
    """A path under a regular file: no folder can be made there, whoever we run as (root too)."""
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    return str(blocker / "sub")


def test_unwritable_run_dir_is_bad_input_with_an_event(tmp_path, char_data, capsys):
    cfg = write_config(tmp_path, char_data, train={"max_steps": 2}, run={"dir": _a_file(tmp_path)})
    code = main(["train", "--config", cfg, "--events"])
    out, err = capsys.readouterr()
    assert code == 2 and "run.dir" in err and "Traceback" not in err, err
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert events and events[-1]["event"] == "error" and events[-1]["field"] == "run.dir"


def test_unwritable_attention_out(run_dir, tmp_path, capsys):
    code = main(["attention", "--run", run_dir, "--text", "ab", "--out", _a_file(tmp_path) + "/a.npz"])
    err = capsys.readouterr().err
    assert code == 2 and "--out" in err, err


def test_unwritable_serve_scratch_says_so_on_the_protocol(run_dir, tmp_path, capsys):
    code = main(["serve", "--run", run_dir, "--scratch", _a_file(tmp_path), "--device", "cpu"])
    out, err = capsys.readouterr()
    assert code == 2 and "--scratch" in err
    assert json.loads(out.splitlines()[-1])["event"] == "error"


def test_init_from_a_run_folder_is_explained(run_dir, tmp_path, char_data, capsys):
    cfg = write_config(tmp_path, char_data, train={"max_steps": 4, "init_from": run_dir})
    assert main(["train", "--config", cfg]) == 2
    assert "run folder, not a checkpoint" in capsys.readouterr().err


def test_scratch_of_a_killed_worker_is_removed(run_dir, tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    import tempfile

    stale = os.path.join(tempfile.gettempdir(), f"llm-serve-{dead.pid}-stale")
    os.makedirs(stale, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "core", "serve", "--run", run_dir, "--device", "cpu"],
                          input="", capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not os.path.exists(stale)


def test_help_names_every_command_and_the_exit_codes(capsys):
    """`llm-train --help` cut its description mid-sentence ('... serve, estimate,')."""
    with pytest.raises(SystemExit) as ended:
        main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert ended.value.code == 0
    named = out.split("the engine's command line (", 1)[1].split(").", 1)[0].split(", ")
    choices = out.split("{", 1)[1].split("}", 1)[0].split(",")  # argparse's list of the subcommands
    assert named == choices, (named, choices)  # all, in the parser's order (lr-find, version were missing)
    assert "Exit codes: 0 success" in out and "2 bad input" in out
