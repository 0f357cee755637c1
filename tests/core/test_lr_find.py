"""`llm-train lr-find`: the learning-rate range test runs the trainer's own steps at geometrically rising
rates, writes nothing, repeats itself exactly, ends when the loss diverges, and suggests a rate where the
loss falls fastest."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
from engine_helpers import engine, events_of, write_config
from finetune_helpers import check


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lrfind")
    text = "".join(f"the cat sat on mat number {i % 17}; the dog ran to log {i % 11}.\n" for i in range(400))
    (folder / "corpus.txt").write_text(text, encoding="utf-8")
    check(engine("prepare", "--input", "corpus.txt", "--out", "data", "--tokenizer", "char", cwd=folder))
    write_config(folder, "data", train={"grad_clip": 0.0})
    return folder


def _find(folder, *extra: str) -> dict:
    r = check(engine("lr-find", "--config", "run.yaml", "--steps", "24", "--start", "1e-5", "--end", "10",
                     "--json", *extra, cwd=folder))
    return json.loads(r.stdout)


def test_the_range_test_rises_geometrically_writes_nothing_and_repeats_itself(corpus):
    before = sorted(os.listdir(corpus))
    a, b = _find(corpus), _find(corpus)
    assert sorted(os.listdir(corpus)) == before and not os.path.exists(corpus / "runs")  # no run folder
    assert a["losses"] == b["losses"] and a["suggested_lr"] == b["suggested_lr"]  # seeded: the same steps
    lrs = np.asarray(a["lrs"])
    assert lrs[0] == pytest.approx(1e-5) and np.allclose(lrs[1:] / lrs[:-1], (1e6) ** (1 / 23))
    # without clipping, rates up to 10 blow the loss up: the test stops there, and says where
    assert a["diverged_at"] is not None and a["steps"] < 24 and a["diverged_at"] >= lrs[-1]
    assert max(a["losses"][-1], a["smoothed"][-1]) > 4 * min(a["smoothed"])  # the rate where it blew up
    low = int(np.argmin(a["smoothed"]))
    assert a["smoothed"][low] < a["smoothed"][0] - 0.2  # the loss fell on the way up
    assert lrs[3] <= a["suggested_lr"] <= lrs[low]  # where it falls, before its lowest point
    assert a["cautious_lr"] == pytest.approx(lrs[low] / 10)  # fastai's former lr_min
    assert "steepest fall" in a["how"]


def test_events_carry_progress_and_the_result_and_bad_ranges_are_named(corpus):
    r = check(engine("lr-find", "--config", "run.yaml", "--steps", "10", "--events", cwd=corpus))
    events = events_of(r.stdout)
    assert events[0]["event"] == "start" and events[-1]["event"] == "done"
    progress = [e for e in events if e["event"] == "progress"]
    assert [e["done"] for e in progress] == list(range(1, len(progress) + 1)) and progress[0]["stage"] == "lr_find"
    assert all(math.isfinite(e["loss"]) and e["lr"] > 0 for e in progress)
    assert events[-1]["kind"] == "lr_find" and len(events[-1]["lrs"]) == len(progress)
    r = engine("lr-find", "--config", "run.yaml", "--start", "1", "--end", "0.1", cwd=corpus)
    assert r.returncode == 2 and "0 < start < end" in r.stderr


def test_the_suggestion_is_the_steepest_fall_before_the_lowest_point():
    from core.lr_find import suggest

    lrs = list(np.geomspace(1e-6, 1, 40))
    x = np.log10(lrs)
    smoothed = list(3 - 1.5 / (1 + np.exp(-3 * (x + 3))) + np.where(x > -1.5, (x + 1.5) ** 2 * 4, 0))
    lr, how = suggest(lrs, smoothed)
    assert lr == pytest.approx(1e-3, rel=0.5) and "steepest" in how  # the sigmoid's middle, at 10^-3
    assert suggest(lrs, [2.0] + [2.5] * 39)[0] is None  # it never fell
    sharp = [3.0, 3.0, 3.0, 3.0, 2.9, 2.7, 2.0, 2.5, 3.5, 5.0]  # steepest into its lowest point: not the point
    assert suggest(lrs[:10], sharp)[0] == lrs[5]


def test_a_lora_fine_tune_is_tested_from_its_base_and_the_base_records_no_child(tmp_path_factory):
    """The range test of a LoRA run trains the adapters on the base's weights, and writes nothing: neither
    the run's folder nor the base checkpoint's list of the LoRA runs that depend on it."""
    from finetune_helpers import finetune_config, reverse_task

    from core import layout

    folder = tmp_path_factory.mktemp("lrfind-lora")
    paths = reverse_task(folder)
    finetune_config(folder, paths, "ft", finetune="lora", lora_rank=4, batch_size=8)
    before = sorted(os.listdir(paths["base"]))
    r = check(engine("lr-find", "--config", "ft.yaml", "--steps", "12", "--json", cwd=folder))
    result = json.loads(r.stdout)
    assert result["steps"] >= 4 and all(math.isfinite(x) for x in result["losses"])
    assert result["params"] > 0 and not os.path.exists(folder / "ft")
    assert sorted(os.listdir(paths["base"])) == before and layout.LORA_CHILDREN not in before
