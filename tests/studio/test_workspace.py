"""The pure-Python workspace, run and metrics models (no Qt)."""

from __future__ import annotations

import math
import os

from core import layout
from core.protocol import encode, make_event
from studio.workspace.datasets import data_sets, detail_rows, read_preview
from studio.workspace.metrics import RunHistory, Smoother, ema
from studio.workspace.proc import fingerprint
from studio.workspace.run import Run, format_duration
from studio.workspace.tail import EventTail, FileTail, read_last_lines
from studio.workspace.workspace import Workspace, launch_problems, with_changes
from tests.studio.helpers import write_checkpoint, write_data_dir


def _step(step, loss=1.0, elapsed=None, **kw):
    return make_event("step", **{"step": step, "tokens": step * 10, "loss": loss, "lr": 1e-3, "grad_norm": 0.5,
                                 "tokens_per_s": 100.0, "elapsed_s": step * 0.1 if elapsed is None else elapsed, **kw})


def test_history_folds_events_and_tracks_best_val():
    h = RunHistory()
    h.apply(make_event("start", max_steps=100, start_step=0, config={"train": {"grad_clip": 1.0}}))
    for s in range(1, 11):
        h.apply(_step(s, loss=5.0 - s * 0.1))
    h.apply(make_event("eval", step=5, val_loss=3.0))
    h.apply(make_event("eval", step=10, val_loss=2.5))
    h.apply(make_event("mystery"))
    assert len(h.steps) == 10 and h.step == 10 and h.max_steps == 100
    assert h.best_val_loss == 2.5 and h.best_val_step == 10
    assert h.grad_clip == 1.0 and h.unknown == 1
    assert h.eta_s() == __import__("pytest").approx(9.0)
    assert math.isnan(RunHistory().tokens_per_s)
    for s in range(11, 31):  # the speed is the recent steps' median: one slow last step does not stand for it
        h.apply(_step(s, tokens_per_s=900.0 if s == 30 else 1000.0 + s))
    assert h.tokens_per_s == 1019.5  # 900 and 1011..1029: the middle of twenty
    ended = RunHistory()  # a slow end (beside another job): the speed now, but not the ended run's
    ended.apply(make_event("start", max_steps=100, start_step=0))
    for s in range(1, 101):
        ended.apply(_step(s, tokens_per_s=1000.0 if s <= 70 else 500.0))
    assert ended.tokens_per_s == 500.0
    ended.apply(make_event("done", step=100, checkpoint="", best_val_loss=2.5))
    assert ended.tokens_per_s == 1000.0  # the median of all its steps


def test_history_nan_strings_and_resume_truncates_abandoned_steps():
    h = RunHistory()
    h.apply(make_event("start", max_steps=20, start_step=0))
    for s in range(1, 8):
        h.apply(_step(s, loss="nan" if s == 3 else 1.0))
    assert math.isnan(h.steps["loss"][2])
    h.apply(make_event("error", kind="runtime", message="boom"))
    assert h.close["event"] == "error"
    # resumed from the step-5 checkpoint: steps 6, 7 of the dead attempt go away; the clock continues
    h.apply(make_event("start", max_steps=20, start_step=5, resumed=True))
    assert h.close is None and len(h.steps) == 5
    h.apply(_step(6, elapsed=0.1))
    assert h.steps["step"].tolist() == [1, 2, 3, 4, 5, 6]
    assert h.steps["elapsed"][-1] > h.steps["elapsed"][-2]


def test_smoother_matches_ema_and_resets_on_weight_change():
    import numpy as np

    values = np.array([1.0, 2.0, math.nan, 4.0, 3.0])
    sm = Smoother(0.6)
    out = sm.update(values[:2])
    out = sm.update(values)
    assert np.allclose(out, ema(values, 0.6), equal_nan=True)
    sm.set_weight(0.0)
    assert np.allclose(sm.update(values)[[0, 1, 3]], [1.0, 2.0, 4.0])


def test_tails_handle_partial_lines_and_rewrites(tmp_path):
    path = tmp_path / "m.jsonl"
    tail = EventTail(str(path))
    assert tail.read_events() == []
    line = encode(make_event("step", step=1))
    path.write_text(line + line[:10])
    assert [e["step"] for e in tail.read_events()] == [1]
    with open(path, "a") as fh:
        fh.write(line[10:] + "garbage\n")
    assert [e["step"] for e in tail.read_events()] == [1]
    path.write_text("x\n")  # shrunk: start over
    ft = FileTail(str(path), offset=100)
    assert ft.read_lines() == ["x"]


def test_workspace_runs_copy_and_fork(workspace):
    ws: Workspace = workspace
    assert [r.name for r in ws.runs()] == ["tiny"]
    assert ws.datasets() == [os.path.join(ws.data_dir, "demo")]
    tiny = ws.run("tiny")
    assert launch_problems(tiny) == []
    copy = ws.new_run_from(tiny)
    assert copy.name == "tiny-copy" and copy.parent_dir() == tiny.dir
    ck = write_checkpoint(tiny.dir, 50)
    fork = ws.fork_run(tiny, ck, {"train.lr": 1e-3, "train.min_lr": 1e-4})
    cfg = fork.config()
    assert cfg.train.init_from == ck and cfg.train.lr == 1e-3 and cfg.run.dir == fork.dir
    assert fork.lineage()["kind"] == "fork" and fork.parent_dir() == tiny.dir
    assert launch_problems(fork) == []
    assert ws.unique_run_name("tiny") == "tiny-2"
    assert [r.name for r in ws.runs()] == ["tiny", "tiny-copy", "tiny-fork"]


def test_launch_problems_name_the_field(workspace):
    run = workspace.run("tiny")
    bad = with_changes(run.read_config_text(), {"model.n_embd": 33})
    assert any("model.n_embd" in p for p in launch_problems(run, bad))
    gone = with_changes(run.read_config_text(), {"data.dir": "../../data/missing"})
    assert any(p.startswith("data.dir") for p in launch_problems(run, gone))


def test_run_status_from_files(workspace):
    run: Run = workspace.run("tiny")
    assert run.status() == "new"
    with open(run.metrics_path, "w") as fh:
        fh.write(encode(make_event("start", max_steps=10)) + encode(_step(1)))
    assert run.status() == "failed"  # started, no close event, no process
    with open(run.metrics_path, "a") as fh:
        fh.write(encode(make_event("stopped", step=1, reason="requested")))
    assert run.status() == "stopped"
    layout.atomic_write_json(run.path(layout.LAUNCHER_JSON),
                             {"pid": os.getpid(), "launcher_pid": os.getpid(), "started": 1.0})
    assert run.status() == "stopped"  # a live pid alone proves nothing (issue 14: it may be reused)
    me = fingerprint(os.getpid())
    layout.atomic_write_json(run.path(layout.LAUNCHER_JSON), {"pid": os.getpid(), "launcher_pid": os.getpid(),
                                                              "started": 1.0, "pid_fingerprint": me,
                                                              "launcher_fingerprint": me})
    assert run.status() == "running" and run.engine_pid() == os.getpid()
    assert format_duration(75) == "1m 15s" and format_duration(math.nan) == "–"
    assert format_duration(3 * 3600 + 125) == "3h 02m" and format_duration(47 * 3600) == "47h 00m"
    assert format_duration(15510 * 3600 + 600) == "646d 06h"  # not "15510h 10m"


def test_checkpoints_follow_the_engines_rule(workspace):
    run = workspace.run("tiny")
    good = write_checkpoint(run.dir, 50)
    root = os.path.join(run.dir, layout.CHECKPOINTS)
    os.makedirs(os.path.join(root, "step-7"))                                  # too few digits
    os.makedirs(os.path.join(root, layout.step_dir_name(80)))                   # no meta.json: half-written
    os.makedirs(os.path.join(root, f".tmp-{layout.step_dir_name(90)}-1"))      # the engine's temp folder
    assert [(c.step, c.path) for c in run.checkpoints()] == [(50, good)]


def test_a_folder_the_engine_refuses_is_refused_with_its_message(workspace):
    """A fork whose init_from is not a complete checkpoint cannot start; the reason is core.layout's."""
    tiny = workspace.run("tiny")
    bare = os.path.join(tiny.dir, layout.CHECKPOINTS, layout.step_dir_name(40))
    os.makedirs(bare)  # a folder with the right name but no meta.json
    for folder in (bare, tiny.dir):  # ... and a whole run folder, not a checkpoint
        fork = workspace.fork_run(tiny, folder)
        problems = launch_problems(fork)
        assert problems == [f"train.init_from: {layout.checkpoint_problem(folder)}"]
        assert folder in problems[0]


def test_data_sets_are_the_folders_the_engine_accepts(tmp_path):
    root = tmp_path / "data"
    write_data_dir(str(root / "b"), train_tokens=1234, sources=[{"input": "@synthetic", "kind": "builtin",
                                                                  "files": 2, "bytes": 2048}])
    write_data_dir(str(root / "a"))
    (root / "junk").mkdir()                                       # no meta.json
    (root / "old").mkdir()
    (root / "old" / "meta.json").write_text('{"vocab_size": 10}')  # meta.json without a format
    assert data_sets(str(root)) == ["a", "b"]
    assert data_sets(str(tmp_path / "missing")) == []
    rows = detail_rows(str(root / "b"))
    assert rows["train"] == "1,234" and rows["tokenizer"] == "char" and rows["bpt"] == "—"
    assert rows["sources"] == "@synthetic  (builtin, 2 files, 2.0 KiB)"
    assert detail_rows(None) == dict.fromkeys(rows, "—")
    assert read_preview(str(root / "b")) is None
    layout.atomic_write_json(str(root / "b" / layout.PREVIEW), {"ids": [1, 2], "pieces": ["a", "b"]})
    assert read_preview(str(root / "b")) == ([1, 2], ["a", "b"], None)
    layout.atomic_write_json(str(root / "b" / layout.PREVIEW), {"ids": [1, 2], "pieces": ["a", "b"], "trained": [0, 1]})
    assert read_preview(str(root / "b")) == ([1, 2], ["a", "b"], [0, 1])
    layout.atomic_write_json(str(root / "b" / layout.PREVIEW), {"ids": [1, 2], "pieces": ["a", "b"], "trained": [0]})
    assert read_preview(str(root / "b")) == ([1, 2], ["a", "b"], None)  # a damaged mask: plain colours


def test_last_lines_of_a_log(tmp_path):
    path = tmp_path / "engine.log"
    path.write_text("".join(f"line {i}\n" for i in range(1000)))
    lines = read_last_lines(str(path), 64)
    assert lines[-1] == "line 999" and len(lines) < 20
    assert read_last_lines(str(tmp_path / "missing.log"), 64) == []


def test_a_fine_tunes_sample_prompt_is_its_first_held_out_prompt(tmp_path):
    from core import layout
    from studio.workspace.datasets import sft_sample_prompt

    sft, text = tmp_path / "sft", tmp_path / "text"
    for folder, trained in ((sft, [0, 0, 0, 1, 1, 0, 1]), (text, None)):
        folder.mkdir()
        preview = {"ids": list(range(7)), "pieces": ["user:\n", "hi", "\nassistant:\n", "yo", "\n", "user:\n", "x"]}
        layout.atomic_write_json(str(folder / layout.PREVIEW), {**preview, "trained": trained} if trained else preview)
    assert sft_sample_prompt(str(sft)) == "user:\nhi\nassistant:\n"  # the masked prefix of the first example
    assert sft_sample_prompt(str(text)) == "" and sft_sample_prompt(str(tmp_path / "none")) == ""
