"""The generation panel against a real inference worker on a tiny trained checkpoint: streaming, Stop,
side by side, continuing from an alternative, history, "Inspect attention", a killed worker."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys

import pytest
from PySide6.QtCore import Qt

from studio.views.generate.output import prob_color
from studio.views.generate.panel import GenerationPanel

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WAIT_MS = 90_000  # a worker's first start imports torch; CI machines are slow and shared

RUN_CONFIG = """\
model: {n_layer: 2, n_head: 2, n_embd: 32, block_size: 64}
data: {dir: ../../data/demo}
train: {batch_size: 8, max_steps: 40, eval_interval: 10, eval_steps: 2, checkpoint_interval: 20,
        warmup_steps: 5, device: cpu, lr: 3.0e-3, min_lr: 3.0e-4}
run: {dir: .}
"""


def tiny_workspace(tmp_path_factory) -> str:
    """A workspace with one tiny trained run (checkpoints at steps 20 and 40, attention snapshots every
    10 steps), built once per session (the attention panel's tests share the same folder)."""
    root = tmp_path_factory.getbasetemp() / "tiny-inference-workspace"
    if (root / ".built").exists():
        return str(root)
    run = root / "runs" / "tiny"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(RUN_CONFIG)
    env = {**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1"}
    for args in (["prepare", "--input", "@synthetic:100K", "--out", str(root / "data" / "demo"), "--tokenizer",
                  "char"], ["train", "--config", str(run / "config.yaml")]):
        done = subprocess.run([sys.executable, "-m", "core", *args], env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
    (root / ".built").write_text("ok")
    return str(root)


def tiny_run_copy(tmp_path, tmp_path_factory):
    """A workspace of the test's own holding a copy of the tiny trained run (its checkpoints at steps 20 and
    40) and the shared data, so that what a test saves (evaluations, configs) stays its own."""
    from studio.workspace.workspace import Workspace

    src = tiny_workspace(tmp_path_factory)
    ws = Workspace.create(str(tmp_path / "ws"))
    shutil.copytree(os.path.join(src, "runs", "tiny"), os.path.join(ws.runs_dir, "tiny"))
    os.symlink(os.path.join(src, "data", "demo"), os.path.join(ws.data_dir, "demo"))
    return ws


@pytest.fixture(scope="session")
def tiny_ws(tmp_path_factory) -> str:
    return tiny_workspace(tmp_path_factory)


@pytest.fixture
def panel(qtbot, tiny_ws, tmp_path):
    ws = tmp_path / "ws"  # a copy of the run's location per test, so history files do not leak across tests
    os.makedirs(ws)
    os.symlink(os.path.join(tiny_ws, "runs"), ws / "runs")
    p = GenerationPanel()
    qtbot.addWidget(p)
    p.resize(1100, 700)
    p.set_workspace(str(ws))
    yield p
    p.shutdown_workers(wait_ms=5000)
    p.pool.shutdown(wait_ms=5000)


def ckpt(tiny_ws: str, step: int) -> str:
    return os.path.realpath(os.path.join(tiny_ws, "runs", "tiny", "checkpoints", f"step-{step:06d}"))


def generate(qtbot, p: GenerationPanel, prompt: str = "add: 1", **params) -> dict:
    p.prompt.setPlainText(prompt)
    p.params.set_values({"temperature": 0.0, "max_new_tokens": 20, **params})
    with qtbot.waitSignal(p.generation_finished, timeout=WAIT_MS) as blocker:
        p.generate_button.click()
    return blocker.args[0]


def test_picker_lists_the_runs_checkpoints(panel, tiny_ws):
    picker = panel.sides["A"].picker
    assert [os.path.realpath(c) for c in picker.checkpoints()] == [ckpt(tiny_ws, 40), ckpt(tiny_ws, 20)]
    assert os.path.realpath(picker.checkpoint()) == ckpt(tiny_ws, 40)  # the newest by default


def test_tokens_stream_in_and_stop_cancels(qtbot, panel):
    a = panel.sides["A"]
    panel.prompt.setPlainText("the ")
    panel.params.set_values({"temperature": 1.0, "max_new_tokens": 100_000, "seed": 1})
    panel.generate_button.click()
    assert panel.stop_button.isEnabled() and not panel.generate_button.isEnabled()
    qtbot.waitUntil(lambda: len(a.output.tokens) >= 10, timeout=WAIT_MS)
    assert panel.is_busy()  # text arrives while the generation is still running
    assert a.output.toPlainText().startswith("the ")
    with qtbot.waitSignal(panel.generation_finished, timeout=20_000) as blocker:
        panel.stop_button.click()
    (out,) = blocker.args[0]["outputs"]
    assert out["stopped_by"] == "cancel" and 10 <= out["n_tokens"] < 100_000
    assert out["text"] == a.output.output_text() and a.output.toPlainText() == "the " + out["text"]
    assert not panel.stop_button.isEnabled() and panel.generate_button.isEnabled()
    assert "stopped by cancel" in a.header.text()


def test_finished_tokens_are_coloured_offer_alternatives_and_inspect_attention(qtbot, panel, tiny_ws):
    generate(qtbot, panel, prompt="add: 2")
    out = panel.sides["A"].output
    assert len(out.tokens) == 20
    tok = out.tokens[3]
    assert len(tok["top"]) == 5 and tok["top"][0][1] == tok["token_id"]  # greedy: the top one
    cursor = out.textCursor()
    cursor.setPosition(out._starts[3] + 1)
    assert cursor.charFormat().background().color() == prob_color(tok["prob"])
    assert cursor.charFormat().anchorHref() == "tok:3"
    tip = out.tooltip_html(3)
    assert tip.count("<tr") == 5 and f"{100 * tok['top'][1][2]:.1f}%" in tip
    panel.colour.setChecked(False)
    cursor.setPosition(out._starts[3] + 1)
    assert cursor.charFormat().background().style() == Qt.BrushStyle.NoBrush

    # "Inspect attention" hands prompt + output to the attention panel.
    assert panel.inspect_button.isEnabled()
    with qtbot.waitSignal(panel.inspect_attention_requested, timeout=5000) as blocker:
        panel.inspect_button.click()
    checkpoint, text = blocker.args
    assert os.path.realpath(checkpoint) == ckpt(tiny_ws, 40)
    assert text == "add: 2" + out.output_text() and len(text) > len("add: 2")

    # Picking an alternative keeps the text before it and generates on from the new token.
    before = [t["token_id"] for t in out.tokens]
    alt = out.tokens[5]["top"][1]
    with qtbot.waitSignal(panel.generation_finished, timeout=WAIT_MS):
        panel.pick_alternative("A", 5, alt[1])
    after = [t["token_id"] for t in out.tokens]
    assert after[:5] == before[:5] and after[5] == alt[1] and len(after) == 20
    assert [t["index"] for t in out.tokens[6:]] == list(range(6, 20))
    assert out.tokens[5].get("picked") is True


def test_side_by_side_runs_two_checkpoints_and_records_history(qtbot, panel, tiny_ws, tmp_path):
    panel.compare.setChecked(True)  # B starts on another checkpoint than A: here the run's oldest
    assert os.path.realpath(panel.sides["B"].picker.checkpoint()) == ckpt(tiny_ws, 20)
    entry = generate(qtbot, panel, max_new_tokens=25, temperature=1.0, seed=5)
    a, b = entry["outputs"]
    assert (os.path.realpath(a["checkpoint"]), os.path.realpath(b["checkpoint"])) == (ckpt(tiny_ws, 40),
                                                                                       ckpt(tiny_ws, 20))
    assert a["n_tokens"] == b["n_tokens"] == 25 and a["text"] != b["text"]
    assert len(panel.pool.workers()) == 2  # one worker per loaded checkpoint
    with open(tmp_path / "ws" / "generation_history.json") as fh:
        saved = json.load(fh)["entries"]
    assert saved[0]["prompt"] == "add: 1" and len(saved[0]["outputs"]) == 2
    again = GenerationPanel()
    qtbot.addWidget(again)
    again.set_workspace(str(tmp_path / "ws"))
    assert again.history_list.count() == 1
    again.restore_entry(again.history.entries[0])
    assert again.prompt.toPlainText() == "add: 1" and again.params.values()["max_new_tokens"] == 25
    assert again.sides["B"].output.output_text() == b["text"]


def test_the_header_names_the_checkpoint_that_wrote_the_output(qtbot, panel, tiny_ws):
    """A training run's newest checkpoint is offered as it is written: the output keeps its own label."""
    a = panel.sides["A"]
    generate(qtbot, panel, max_new_tokens=5)
    assert "tiny · step 40</b>" in a.header.text() and "Generate uses" not in a.header.text()
    a.picker.set_checkpoint(ckpt(tiny_ws, 20))
    assert "tiny · step 40</b>" in a.header.text(), a.header.text()
    assert "5 tokens" in a.header.text() and "Generate uses tiny · step 20" in a.header.text()
    entry = generate(qtbot, panel, max_new_tokens=5)
    assert os.path.realpath(entry["outputs"][0]["checkpoint"]) == ckpt(tiny_ws, 20)
    assert "tiny · step 20</b>" in a.header.text() and "Generate uses" not in a.header.text()


def test_a_killed_worker_is_reported_and_restarted(qtbot, panel):
    generate(qtbot, panel)
    worker = panel.session.side("A").worker
    old_pid = worker.pid()
    with qtbot.waitSignal(worker.died, timeout=20_000) as blocker:
        os.kill(old_pid, signal.SIGKILL)
    assert "was killed" in blocker.args[0], blocker.args[0]
    assert "was killed" in panel.status.text() and "restarted" in panel.status.text()
    qtbot.waitUntil(lambda: worker.is_ready() and worker.pid() != old_pid, timeout=WAIT_MS)
    entry = generate(qtbot, panel, max_new_tokens=5)
    assert entry["outputs"][0]["n_tokens"] == 5


def test_another_workspace_clears_the_outputs_of_the_last_ones_models(qtbot, panel, tmp_path):
    """File -> New / Open Workspace: the text a model of the old workspace wrote, its header and the status
    line go (they named a run the new workspace does not list), also when it is still generating; the new
    workspace's history is shown and Generate starts from its own checkpoints."""
    a = panel.sides["A"]
    generate(qtbot, panel, max_new_tokens=5)
    assert a.output.output_text() and "tiny · step 40" in a.header.text() and panel.status.text()
    panel.params.set_values({"temperature": 1.0, "max_new_tokens": 100_000, "seed": 1})
    panel.generate_button.click()  # still running when the workspace changes
    qtbot.waitUntil(lambda: len(a.output.tokens) >= 3, timeout=WAIT_MS)
    (tmp_path / "other").mkdir()
    panel.set_workspace(str(tmp_path / "other"))
    assert not panel.is_busy() and panel.generate_button.isEnabled() and not panel.stop_button.isEnabled()
    assert a.output.toPlainText() == "" and a.output.tokens == []
    assert "tiny" not in a.header.text() and "no checkpoint" in a.header.text() and panel.status.text() == ""
    assert panel.history_list.count() == 0
    qtbot.wait(500)  # the cancelled request's last tokens and result arrive: they are not shown
    assert a.output.toPlainText() == "" and "idle" in a.header.text()
