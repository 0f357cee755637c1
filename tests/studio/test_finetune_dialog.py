"""Fine-tune… in the studio against the real engine, on the session's tiny trained run as the base: the
preview colours exactly the answer tokens as trained; the trainable count shown is the model's own; a
bad line is named before anything is written; "Prepare data and create run" prepares an instruction
data set with the base's tokenizer, creates a LoRA run from the base and trains it with live curves."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from core import layout
from studio.controllers.finetune import DEFAULT_LR, sizes
from studio.views.finetune.dialog import open_finetune
from studio.workspace.workspace import Workspace
from tests.studio.helpers import open_window, select_run
from tests.studio.test_generation_panel import ROOT, tiny_run_copy

WAIT_MS = 180_000  # the engine imports torch first; the machine is shared
WORDS = ["abc", "bad", "cab", "dab", "ace", "bed", "fed", "deb", "cede", "face", "bead", "dace"]


@pytest.fixture
def ws(tmp_path, tmp_path_factory) -> Workspace:
    return tiny_run_copy(tmp_path, tmp_path_factory)


def _sft(tmp_path, bad_line: int | None = None) -> str:
    lines = [json.dumps({"prompt": f"reverse: {w}", "completion": w[::-1]}) for w in WORDS * 3]
    if bad_line is not None:
        lines[bad_line - 1] = '{"prompt": "reverse: abc", "completion": ""}'
    path = tmp_path / "reverse.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def _open(qtbot, ws: Workspace):
    w = open_window(qtbot, ws.root)
    select_run(w, "tiny")
    return w, open_finetune(w, os.path.join(ws.runs_dir, "tiny"))  # a child of the window, closed with it


def _preview(qtbot, dialog, path: str):
    with qtbot.waitSignal(dialog.preview_job.finished, timeout=WAIT_MS) as blocker:
        dialog.data_file.setText(path)
    return blocker.args[0]


def test_preview_colours_the_answers_and_the_estimate_is_the_models_own(qtbot, ws, tmp_path):
    import torch

    from core.config import loads
    from core.lora import apply_lora
    from core.model import GPT

    w, dialog = _open(qtbot, ws)
    room = dialog.screen().availableGeometry()  # it opened 860 px high: a 768 px laptop lost its buttons
    assert dialog.height() <= room.height() and dialog.minimumSizeHint().height() <= 640
    latest = layout.latest_checkpoint(os.path.join(ws.runs_dir, "tiny"))
    assert dialog.picker.checkpoint() == latest and "2 layers × 32 wide" in dialog.base_label.text()
    preview = _preview(qtbot, dialog, _sft(tmp_path))
    assert preview.ok and len(preview.examples) == 6
    # the trained tokens of each example are its answer and the end of the turn, nothing else
    for ex, word in zip(preview.examples, WORDS, strict=False):
        trained = "".join(p for p, t in zip(ex["pieces"], ex["trained"], strict=True) if t)
        masked = "".join(p for p, t in zip(ex["pieces"], ex["trained"], strict=True) if not t)
        assert trained == word[::-1] + "\n"
        # the demo-like char vocabulary has no '<', '>': the built-in template's markers are spelled plainly
        assert masked == f"user:\nreverse: {word}\nassistant:\n"
    assert dialog.sample.trained == [bool(t) for t in preview.tokens()[2]]
    assert preview.unknown == 0 and "unk" not in dialog.preview_status.text()
    assert "trained" in dialog.preview_status.text()
    assert dialog.data_name.text() == "reverse-sft" and dialog.run_name.text() == "tiny-ft-reverse"
    # capitals are not in that vocabulary: 7 per example become <unk>, and the dialog says so
    shouty = tmp_path / "shouty.jsonl"
    shouty.write_text("".join(json.dumps({"prompt": f"REVERSE: {w}", "completion": w[::-1]}) + "\n"
                              for w in WORDS), encoding="utf-8")
    assert _preview(qtbot, dialog, str(shouty)).unknown == 7 * 6
    assert "42 of the " in dialog.preview_status.text() and "tokens are &lt;unk&gt;" in dialog.preview_status.text()
    _preview(qtbot, dialog, _sft(tmp_path))
    # the trainable count the dialog shows is what the engine's LoRA model trains
    dialog.rank.setValue(4)
    dialog.targets["mlp_out"].setChecked(True)
    choices = dialog.choices()
    cfg = loads(choices.config_text(dialog.base, "data", "run"))
    torch.manual_seed(0)
    model = apply_lora(GPT(cfg.model), 4, choices.lora_alpha, 0.0, list(choices.lora_targets))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert sizes(choices, dialog.base)["trainable_params"] == trainable
    assert "Trainable" in dialog.estimate.text() and dialog.create_button.isEnabled()
    # full fine-tuning trains every weight, and the learning rate follows the method until edited
    dialog.full.setChecked(True)
    assert dialog.lr.value() == DEFAULT_LR["full"] and not dialog.rank.isEnabled()
    est = sizes(dialog.choices(), dialog.base)
    assert est["trainable_params"] == est["params"] == sum(p.numel() for p in GPT(cfg.model).parameters())
    assert "parameters (100%)" in dialog.estimate.text()  # not "(1e+02%)"


def test_a_bad_line_is_named_before_anything_is_written(qtbot, ws, tmp_path):
    w, dialog = _open(qtbot, ws)
    path = _sft(tmp_path, bad_line=3)
    preview = _preview(qtbot, dialog, path)
    assert preview.status == "failed"
    assert f"{path}:3: empty completion" in dialog.preview_status.text()
    assert not dialog.create_button.isEnabled()
    assert not dialog.create_run()  # a forced click is refused with the engine's words too
    assert "empty completion" in dialog.problem.text()
    assert sorted(os.listdir(ws.data_dir)) == ["demo"] and sorted(os.listdir(ws.runs_dir)) == ["tiny"]


def test_taken_names_are_refused(qtbot, ws, tmp_path):
    w, dialog = _open(qtbot, ws)
    _preview(qtbot, dialog, _sft(tmp_path))
    dialog.data_name.setText("demo")
    dialog.run_name.setText("tiny")
    assert not dialog.create_button.isEnabled()
    dialog.create_run()
    assert "a data set named demo exists already" in dialog.problem.text()
    assert "a run named tiny exists already" in dialog.problem.text()


def test_text_file_previews_every_token_as_trained(qtbot, ws, tmp_path):
    w, dialog = _open(qtbot, ws)
    path = tmp_path / "notes.txt"
    path.write_text("the cat sat on the mat\n" * 20, encoding="utf-8")  # characters the vocabulary has
    preview = _preview(qtbot, dialog, str(path))
    assert preview.ok and set(preview.tokens()[2]) == {1} and preview.unknown == 0
    assert "continued pre-training" in dialog.data_kind.text() and dialog.data_name.text() == "notes-text"


def test_a_file_prepared_with_this_base_already_is_used_not_copied(qtbot, ws, tmp_path):
    """A second fine-tune on the same file from the same model offered the data set made the first time
    instead of preparing reverse-sft-2 (then -3, ...): the same bytes, tokenizer and template, one copy."""
    w, dialog = _open(qtbot, ws)
    path = _sft(tmp_path)
    _preview(qtbot, dialog, path)
    assert dialog.reuse.isHidden() and dialog.create_button.text() == "Prepare data and create run"
    dialog.start_now.setChecked(False)
    with qtbot.waitSignal(dialog.created, timeout=WAIT_MS):
        dialog.create_button.click()
    again = open_finetune(w, os.path.join(ws.runs_dir, "tiny"))
    _preview(qtbot, again, path)
    assert not again.reuse.isHidden() and again.reuse.isChecked(), "the prepared data set is not offered"
    assert "Use reverse-sft:" in again.reuse.text() and "training examples" in again.reuse.text()
    assert again.data_name.text() == "reverse-sft" and again.data_name.isReadOnly()
    assert again.create_button.text() == "Create run" and again.create_button.isEnabled(), again.problems()
    again.reuse.setChecked(False)  # a copy after all: a free name again
    assert again.data_name.text() == "reverse-sft-2" and not again.data_name.isReadOnly()
    assert again.create_button.text() == "Prepare data and create run"
    again.reuse.setChecked(True)
    again.start_now.setChecked(False)
    with qtbot.waitSignal(again.created, timeout=5000) as blocker:  # no engine: nothing to prepare
        again.create_button.click()
    assert sorted(os.listdir(ws.data_dir)) == ["demo", "reverse-sft"]
    cfg = w.session.controller(blocker.args[0]).run.config()
    assert os.path.realpath(cfg.data.dir) == os.path.realpath(os.path.join(ws.data_dir, "reverse-sft"))
    third = open_finetune(w, os.path.join(ws.runs_dir, "tiny"))
    with open(path, "a", encoding="utf-8") as fh:  # an edited file is prepared anew
        fh.write(json.dumps({"prompt": "reverse: fab", "completion": "baf"}) + "\n")
    _preview(qtbot, third, path)
    assert third.reuse.isHidden() and third.data_name.text() == "reverse-sft-2"


def test_create_prepares_the_data_creates_the_lora_run_and_trains_it(qtbot, ws, tmp_path):
    w, dialog = _open(qtbot, ws)
    base = dialog.picker.checkpoint()
    _preview(qtbot, dialog, _sft(tmp_path))
    dialog.steps.setValue(12)
    dialog.batch.setValue(4)
    with qtbot.waitSignal(dialog.created, timeout=WAIT_MS) as blocker:
        dialog.create_button.click()
    run_dir, start = blocker.args
    assert start and os.path.basename(run_dir) == "tiny-ft-reverse"
    data_meta = json.load(open(os.path.join(ws.data_dir, "reverse-sft", layout.DATA_META)))
    assert data_meta["kind"] == "sft" and data_meta["base"] == base
    assert data_meta["train_examples"] + data_meta["val_examples"] == 36
    from studio.workspace.datasets import detail_rows

    rows = detail_rows(os.path.join(ws.data_dir, "reverse-sft"))  # what the Data tab shows of it
    assert rows["files"].startswith("36 examples (") and f"{data_meta['trained_tokens']:,} trained tokens" in rows["files"]
    assert rows["created"] != "—"
    ctl = w.session.controller(run_dir)
    cfg = ctl.run.config()
    assert cfg.train.finetune == "lora" and os.path.realpath(cfg.train.init_from) == os.path.realpath(base)
    assert os.path.realpath(cfg.data.dir) == os.path.realpath(os.path.join(ws.data_dir, "reverse-sft"))
    assert ctl.run.lineage()["kind"] == "finetune" and ctl.run.parent_dir() == os.path.join(ws.runs_dir, "tiny")
    assert w.current_dir == run_dir
    with qtbot.waitSignal(ctl.run_finished, timeout=WAIT_MS):
        pass
    assert ctl.history.step == 12 and len(ctl.history.evals) >= 1 and len(ctl.history.steps) == 12
    # its samples answer the first held-out prompt in the template: the Samples tab shows the answer forming
    assert cfg.train.sample_tokens == 48 and ctl.history.samples
    prompt = ctl.history.samples[-1]["prompt"]
    assert prompt == cfg.train.sample_prompt and prompt.startswith("user:\nreverse: ") and prompt.endswith(
        "\nassistant:\n"), prompt
    assert w.training.plots.isVisible()  # the usual live curves: the Training tab is showing
    meta = layout.read_checkpoint_meta(layout.latest_checkpoint(run_dir))
    assert meta["lora"]["rank"] == 8 and os.path.realpath(meta["lora"]["base"]) == os.path.realpath(base)
    # renaming the base re-points the adapters' base, so the fine-tune keeps loading (review finding 7)
    from studio.workspace.annotations import lora_children

    tiny = os.path.join(ws.runs_dir, "tiny")
    assert lora_children([c.run for c in w.session.controllers.values()], tiny) == ["tiny-ft-reverse"]
    new_dir, why = w.session.rename_run(tiny, "tiny-base")
    assert new_dir and not why
    ckpt = layout.latest_checkpoint(os.path.join(ws.runs_dir, "tiny-ft-reverse"))
    base = layout.read_checkpoint_meta(ckpt)["lora"]["base"]
    assert base.startswith(os.path.join(ws.runs_dir, "tiny-base") + os.sep) and os.path.isdir(base)
    r = subprocess.run([sys.executable, "-m", "core", "generate", "--checkpoint", ckpt, "--prompt", "reverse: abc",
                        "--max-new-tokens", "3"], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PYTHONPATH": ROOT})
    assert r.returncode == 0, r.stderr[-2000:]


def test_the_runs_list_and_the_run_menu_open_it_on_that_run(qtbot, ws):
    from studio.views.finetune.dialog import FinetuneDialog

    w = open_window(qtbot, ws.root)
    select_run(w, "tiny")
    run_dir = os.path.join(ws.runs_dir, "tiny")
    action = next(a for a in w.runs_panel.context_menu(run_dir).actions() if a.text() == "Fine-tune on my data…")
    assert action.isEnabled()
    action.trigger()
    dialogs = [d for d in w.findChildren(FinetuneDialog) if d.isVisible()]
    assert len(dialogs) == 1 and dialogs[0].picker.checkpoint() == layout.latest_checkpoint(run_dir)
    menu_action = next(a for m in w.menuBar().actions() for a in m.menu().actions()
                       if a.text().replace("&", "") == "Fine-tune on My Data…")
    assert menu_action.shortcut().toString() == "Ctrl+Shift+U"


def test_at_its_minimum_size_no_text_is_cut_off(qtbot, ws):
    """Resized to its minimum, the dialog cut the memory estimate and the training note at the bottom of
    their boxes, and the base model and data notes mid-word at the right edge. The wrapped texts keep the
    height they need; a note too long for the width ends with '…' and is whole in its tooltip."""
    from PySide6.QtWidgets import QApplication

    notes = os.path.join(ws.root, "notes.txt")
    with open(notes, "w", encoding="utf-8") as f:
        f.write("plain text\n")
    w, dialog = _open(qtbot, ws)
    assert _preview(qtbot, dialog, notes).ok  # its note is the longer one (continued pre-training); the
    # preview's engine process is done before the test ends
    dialog.resize(dialog.minimumSizeHint())
    QApplication.processEvents()
    estimate = dialog.estimate
    assert "Memory" in estimate.text()
    wrapped = [estimate, *(label for label in dialog.findChildren(type(estimate))
                           if label.wordWrap() and "fresh optimizer" in label.text())]
    assert len(wrapped) == 2
    for label in wrapped:
        assert label.height() >= label.heightForWidth(label.width()), (label.text(), label.size())
    for note in (dialog.base_label, dialog.data_kind):
        assert note.toolTip() == note.text() and note.text()
        shown = note.shown_text()
        assert shown == note.text() or (shown.endswith("…") and note.text().startswith(shown[:-1]))
        assert note.fontMetrics().horizontalAdvance(shown) <= note.width()
    assert dialog.data_kind.shown_text().endswith("…")  # too long for 669 px: shortened, not cut
