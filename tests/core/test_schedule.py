"""The learning-rate schedule (core.schedule) and its restart: a fork or a continued run goes on from the
rate its parent had reached instead of the parent's schedule stretched to the new length."""

from __future__ import annotations

import dataclasses
import os

import pytest
import yaml
from engine_helpers import write_config
from test_train import run_dir_of, train_inproc

from core.config import ConfigError, TrainConfig, loads
from core.protocol import read_events
from core.schedule import lr_at


def _lrs(t: TrainConfig, steps: range) -> list[float]:
    return [lr_at(s, t) for s in steps]


@pytest.mark.parametrize("schedule", ["cosine", "linear", "wsd", "constant"])
def test_no_restart_is_the_schedule_from_step_0(schedule):
    t = TrainConfig(max_steps=100, lr=1.0, min_lr=0.1, warmup_steps=10, schedule=schedule)
    moved = dataclasses.replace(t, restart_step=0, restart_lr=None)
    assert _lrs(t, range(120)) == _lrs(moved, range(120))
    assert lr_at(0, t) == pytest.approx(0.1) and lr_at(9, t) == pytest.approx(1.0)
    assert lr_at(99, t) == pytest.approx(1.0 if schedule == "constant" else 0.1, abs=0.02)


@pytest.mark.parametrize("schedule", ["cosine", "linear", "wsd"])
def test_a_continued_run_goes_on_at_the_rate_it_had_reached(schedule):
    """Finished at 100 of 100 (rate min_lr), continued to 200: without the restart the stretched schedule sends
    the rate back up towards the peak; with it the rate stays at min_lr."""
    old = TrainConfig(max_steps=100, lr=1.0, min_lr=0.1, warmup_steps=10, schedule=schedule)
    stretched = dataclasses.replace(old, max_steps=200)
    assert lr_at(100, stretched) > 0.5  # the defect the restart is for
    went_on = dataclasses.replace(stretched, restart_step=100, restart_lr=lr_at(100, old))
    assert lr_at(100, old) == pytest.approx(0.1)
    assert _lrs(went_on, range(100, 200)) == pytest.approx([0.1] * 100)
    assert _lrs(went_on, range(100)) == _lrs(stretched, range(100))  # before the restart: as it was


def test_a_fork_from_the_middle_decays_from_the_checkpoints_rate_to_min_lr():
    parent = TrainConfig(max_steps=100, lr=1.0, min_lr=0.1, warmup_steps=10)
    rate = lr_at(50, parent)
    fork = dataclasses.replace(parent, max_steps=150, restart_step=50, restart_lr=rate)
    lrs = _lrs(fork, range(50, 150))
    assert lrs[0] == pytest.approx(rate) and 0.2 < rate < 0.9  # no jump at the checkpoint, no warm-up
    assert all(a >= b for a, b in zip(lrs, lrs[1:], strict=False))  # decays smoothly
    assert lrs[-1] == pytest.approx(0.1, abs=1e-3)
    again = dataclasses.replace(parent, max_steps=150, restart_step=50, restart_lr=None)
    assert lr_at(50, again) == pytest.approx(0.1) and lr_at(59, again) == pytest.approx(1.0)  # warm-up again
    assert lr_at(149, again) == pytest.approx(0.1, abs=1e-3)


def test_a_restart_at_or_beyond_max_steps_is_refused_with_the_field_named():
    with pytest.raises(ConfigError) as err:
        loads(yaml.safe_dump({"train": {"max_steps": 100, "restart_step": 100, "restart_lr": 1e-4}}))
    assert "train.restart_step: 100 is not before train.max_steps=100" in str(err.value)
    with pytest.raises(ConfigError, match="train.restart_lr"):
        loads(yaml.safe_dump({"train": {"restart_lr": -1.0}}))


def test_the_engine_trains_on_at_the_rate_the_run_had_reached(tmp_path, char_data, capsys):
    """A real run of 12 steps, continued to 20 with --resume after max_steps was raised: the step events of
    the continuation carry min_lr (the rate step 12 had reached), and the first 12 steps are unchanged."""
    train = {"max_steps": 12, "warmup_steps": 2, "lr": 3.0e-3, "min_lr": 3.0e-4, "checkpoint_interval": 0}
    cfg = write_config(tmp_path, char_data, train=train)
    assert train_inproc(cfg) == 0
    old = loads(open(cfg, encoding="utf-8").read()).train
    with open(cfg, encoding="utf-8") as fh:
        raw = yaml.safe_load(fh)
    raw["train"].update(max_steps=20, restart_step=12, restart_lr=lr_at(12, old))
    with open(cfg, "w", encoding="utf-8") as fh:
        yaml.safe_dump(raw, fh)
    assert train_inproc(cfg, "--resume") == 0
    steps = {e["step"]: e["lr"] for e in read_events(os.path.join(run_dir_of(cfg), "metrics.jsonl"))
             if e["event"] == "step"}
    assert sorted(steps) == list(range(1, 21))
    assert [steps[s] for s in range(13, 21)] == pytest.approx([3.0e-4] * 8)
    assert steps[12] == pytest.approx(lr_at(11, old)) and steps[2] == pytest.approx(3.0e-3)
    warnings = [e for e in read_events(os.path.join(run_dir_of(cfg), "metrics.jsonl"))
                if e["event"] == "log" and e.get("level") == "warning"]
    assert warnings == []  # a restart at the checkpoint's step is what it is made for: nothing to warn of

    # resumed again with max_steps raised and no restart: the rate jumps back up, and the run says so
    raw["train"].update(max_steps=40, restart_step=0, restart_lr=None)
    with open(cfg, "w", encoding="utf-8") as fh:
        yaml.safe_dump(raw, fh)
    capsys.readouterr()
    assert train_inproc(cfg, "--resume") == 0
    assert "\nwarning: train.max_steps 20 -> 40, " in capsys.readouterr().err  # said in a terminal too
    events = list(read_events(os.path.join(run_dir_of(cfg), "metrics.jsonl")))
    warnings = [e["message"] for e in events if e["event"] == "log" and e.get("level") == "warning"]
    rate = [e["lr"] for e in events if e["event"] == "step" and e["step"] == 21][0]
    assert rate > 5e-4 and len(warnings) == 1, (rate, warnings)
    assert warnings[0].startswith("train.max_steps 20 -> 40, train.restart_step 12 -> 0, train.restart_lr")
    assert f"the learning rate jumps from 0.0003 to {rate:.3g} there" in warnings[0]


def test_a_resume_names_a_schedule_change_that_moves_the_rate():
    from core.schedule import resume_jump

    t = TrainConfig(max_steps=600, lr=2e-3, min_lr=2e-4, warmup_steps=50)
    saved = {**dataclasses.asdict(t), "max_steps": 1000}
    message = resume_jump(450, saved, t)
    assert message is not None and message.startswith("train.max_steps 1000 -> 600 since the checkpoint at step 450")
    assert f"jumps from {lr_at(450, dataclasses.replace(t, max_steps=1000)):.3g} to {lr_at(450, t):.3g}" in message
    assert resume_jump(450, dataclasses.asdict(t), t) is None  # nothing changed
    assert resume_jump(450, {**saved, "max_steps": 600, "weight_decay": 0.0}, t) is None  # not the schedule
    assert resume_jump(450, {**dataclasses.asdict(t), "max_steps": 601}, t) is None  # within 1%
    wsd = dataclasses.replace(t, schedule="wsd", decay_fraction=0.2)
    assert resume_jump(100, {**dataclasses.asdict(wsd), "max_steps": 1000}, wsd) is None  # stable either way
    assert resume_jump(450, {}, t) is None  # a checkpoint without its config


def test_going_on_is_for_a_checkpoint_still_at_its_peak_rate():
    from core.schedule import goes_on

    t = TrainConfig(max_steps=1000, lr=2e-3, min_lr=2e-4, warmup_steps=50)
    assert [goes_on(s, t) for s in (10, 50, 500, 1000)] == [False, True, False, False]  # cosine: decaying
    assert goes_on(1000, dataclasses.replace(t, schedule="constant"))  # never decays: go on at lr
    wsd = dataclasses.replace(t, schedule="wsd", decay_fraction=0.2)
    assert [goes_on(s, wsd) for s in (10, 700, 900, 1000)] == [False, True, False, False]  # stable: go on
