"""The engine's structure: one usage-error type, no import circle, one device resolver, libraries free of the
command line, one all-reduce per DDP step, and module/function size limits."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
import torch.distributed as dist
from engine_helpers import ROOT, engine, events_of

from core import errors
from core.device import resolve_device


def test_every_bad_input_error_is_the_one_usage_error():
    from core import checkpoint
    from core.config import ConfigError, Problem
    from core.data import PrepareError

    assert checkpoint.CheckpointError is errors.CheckpointError
    assert issubclass(PrepareError, errors.DataError) and issubclass(errors.DataError, errors.UsageError)
    exc = ConfigError([Problem("model.n_head", "model.n_head: bad"), Problem("train.lr", "train.lr: bad")])
    assert isinstance(exc, errors.UsageError) and isinstance(exc, ValueError)
    assert exc.field == "model.n_head" and exc.exit_code == errors.EXIT_BAD_INPUT == 2


def test_libraries_never_import_the_command_line():
    """core.generate / core.train / core.serve are libraries: importing them loads no CLI module (the
    circle core.cli -> core.train -> core.generate -> core.cli is gone)."""
    code = ("import sys, core.generate, core.train, core.serve, core.evaluation; "
            "print(sorted(m for m in sys.modules if m == 'core.cli' or m.startswith('core.commands')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"
    for name in ("generate.py", "train.py", "trainer_setup.py", "evaluation.py", "serve.py"):
        source = open(os.path.join(ROOT, "core", name), encoding="utf-8").read()
        assert "argparse" not in source and "args." not in source, name


# ----------------------------------------------------------------------------------------- device
def test_resolve_device_accepts_real_devices_and_names_bad_ones():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("CPU ") == "cpu"
    assert resolve_device("auto") in ("cuda", "mps", "cpu")
    assert resolve_device(None) == resolve_device("auto")
    for bad in ("banana", "cpu:0", "cuda:x", "tpu"):
        with pytest.raises(errors.UsageError, match=rf"--device: unknown device '{bad}'"):
            resolve_device(bad)
    with pytest.raises(errors.UsageError) as info:
        resolve_device("banana", "train.device", "train.device")
    assert info.value.field == "train.device" and str(info.value).startswith("train.device: unknown")
    if not torch.cuda.is_available():
        with pytest.raises(errors.UsageError, match="no CUDA GPU is available"):
            resolve_device("cuda:0")
    else:
        with pytest.raises(errors.UsageError, match="CUDA GPU"):
            resolve_device(f"cuda:{torch.cuda.device_count()}")


def test_commands_refuse_an_unknown_device_with_exit_code_2(tmp_path):
    out = engine("serve", "--checkpoint", str(tmp_path), "--device", "banana")
    assert out.returncode == 2
    assert "unknown device 'banana'" in out.stderr and "Traceback" not in out.stderr
    assert events_of(out.stdout)[0]["event"] == "error"  # the studio reads the worker's stdout


# ----------------------------------------------------------------------------------------- DDP
@pytest.fixture
def one_rank_group():
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def test_ddp_step_sends_loss_and_stop_flag_in_one_all_reduce(one_rank_group, monkeypatch):
    from core import train as train_mod
    from core.runinfo import StopFlag

    sent = []
    real = dist.all_reduce

    def counting(tensor, *a, **k):
        sent.append(tensor.clone())
        return real(tensor, *a, **k)

    monkeypatch.setattr(dist, "all_reduce", counting)
    tr = SimpleNamespace(ddp=True, world=2)  # as if a second rank had contributed 0 loss and no stop
    stop = StopFlag(listen_stdin=False)
    try:
        loss, any_stop = train_mod.reduce_step(tr, torch.tensor(3.0), stop)
        assert len(sent) == 1 and sent[0].tolist() == [3.0, 0.0]
        assert float(loss) == 1.5 and any_stop is False and stop.agreed(any_stop) is False
        stop.set("signal SIGTERM")
        loss, any_stop = train_mod.reduce_step(tr, torch.tensor(1.0), stop)
        assert len(sent) == 2 and sent[1].tolist() == [1.0, 1.0]
        assert any_stop is True and stop.agreed(any_stop) is True and stop.reason == "signal SIGTERM"
    finally:
        stop.close()
    other = StopFlag(listen_stdin=False)  # a rank that was not asked itself learns why it stops
    try:
        assert other.agreed(True) is True and other.reason == "stop requested on another rank"
        assert other.agreed(None) is False
    finally:
        other.close()


# ----------------------------------------------------------------------------------------- size limits
def _python_files(folder: str):
    for root, _, names in os.walk(folder):
        yield from (os.path.join(root, n) for n in names if n.endswith(".py"))


@pytest.mark.parametrize("package", ["core", "studio"])
def test_modules_and_functions_stay_small(package):
    """No module over 500 lines and no function over 80 in core/ and studio/ (issue 8's limits)."""
    too_long = []
    for path in _python_files(os.path.join(ROOT, package)):
        source = open(path, encoding="utf-8").read()
        name = os.path.relpath(path, ROOT)
        if source.count("\n") > 500:
            too_long.append(f"{name}: {source.count(chr(10))} lines")
        tree = ast.parse(source)
        assert ast.get_docstring(tree), f"{name} does not start with a docstring"
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > 80:
                    too_long.append(f"{name}:{node.name}: {length} lines")
    assert too_long == []
