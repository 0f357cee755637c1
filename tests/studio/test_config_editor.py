"""ConfigEditor: form and YAML stay in sync, validation names and flags fields, estimates, presets."""

from __future__ import annotations

import json
import os

import pytest
import yaml
from PySide6.QtCore import Qt

from core import config_text
from core.config import Config, loads
from studio.views.config.editor import ConfigEditor
from studio.views.config.yaml_tab import list_presets
from studio.workspace.workspace import Workspace

COMMENTED = """\
# my run
model:
  n_layer: 2   # blocks
  n_head: 2
  n_embd: 32
train:
  lr: 1.0e-05
  min_lr: 1.0e-06
  betas:
  - 0.9
  - 0.95
run:
  dir: .
"""


@pytest.fixture
def editor(qtbot, tmp_path):
    ed = ConfigEditor()
    qtbot.addWidget(ed)
    ed.set_base_dir(str(tmp_path))
    return ed


def _invalid(valid: bool, _message: str) -> bool:
    return not valid


def test_form_edit_changes_yaml_and_keeps_comments(qtbot, editor):
    editor.set_text(COMMENTED)
    spin = editor.form.editors["model.n_layer"].input
    with qtbot.waitSignal(editor.changed, timeout=2000):
        spin.setValue(4)
    assert yaml.safe_load(editor.text())["model"]["n_layer"] == 4
    assert "n_layer: 4   # blocks" in editor.text() and editor.text().startswith("# my run")
    assert editor.config().model.n_layer == 4

    lr = editor.form.editors["train.lr"].input
    assert lr.text() == "1e-5"  # a small value shows as it is, not as 0.00
    lr.clear()
    with qtbot.waitSignal(editor.changed, timeout=2000):
        qtbot.keyClicks(lr, "3e-4")
    assert yaml.safe_load(editor.text())["train"]["lr"] == pytest.approx(3e-4)
    assert editor.config().train.lr == pytest.approx(3e-4)

    beta2 = editor.form.editors["train.betas"].edits[1]
    beta2.clear()
    qtbot.keyClicks(beta2, "0.99")
    assert yaml.safe_load(editor.text())["train"]["betas"] == [0.9, 0.99]

    combo = editor.form.editors["model.pos_encoding"].input
    combo.setCurrentText("rope")
    assert yaml.safe_load(editor.text())["model"]["pos_encoding"] == "rope"

    vocab = editor.form.editors["model.vocab_size"].input
    qtbot.keyClicks(vocab, "512")
    assert editor.config().model.vocab_size == 512
    vocab.selectAll()
    qtbot.keyClick(vocab, Qt.Key.Key_Backspace)  # empty = None
    assert editor.config().model.vocab_size is None


def test_yaml_edit_changes_form_after_a_pause(qtbot, editor):
    editor.set_text(COMMENTED)
    spin = editor.form.editors["model.n_layer"].input
    editor.tabs.setCurrentWidget(editor.yaml_edit)
    editor.yaml_edit.setPlainText(COMMENTED.replace("n_layer: 2", "n_layer: 7"))
    assert spin.value() == 2  # debounced: nothing yet
    with qtbot.waitSignal(editor.changed, timeout=2000):
        pass
    assert spin.value() == 7
    assert editor.form.editors["train.lr"].input.text() == "1e-5"


def test_invalid_yaml_shows_parse_error_and_leaves_form(qtbot, editor):
    editor.set_text(COMMENTED)
    with qtbot.waitSignal(editor.validity_changed, timeout=2000, check_params_cb=_invalid) as sig:
        editor.yaml_edit.setPlainText("model:\n  n_layer: [3\n")
    assert "invalid YAML" in sig.args[1]
    assert editor.form.editors["model.n_layer"].input.value() == 2
    assert not editor.form.isEnabled()
    assert editor.config() is None and editor.problems()[0].path == ""
    assert not editor.problems_label.isHidden() and "invalid YAML" in editor.problems_label.text()


def test_indivisible_width_names_and_flags_the_field(qtbot, editor):
    editor.set_text(COMMENTED)
    editor.form.editors["model.n_head"].input.setValue(3)
    assert editor.config() is None  # 32 % 3
    with qtbot.waitSignal(editor.validity_changed, timeout=2000, check_params_cb=_invalid) as sig:
        editor.form.editors["model.n_embd"].input.setValue(100)
    assert "model.n_embd: 100 is not divisible by model.n_head=3" in sig.args[1]
    field = editor.form.editors["model.n_embd"]
    assert field.input.property("problem") is True
    assert "not divisible" in field.error.text() and not field.error.isHidden()
    assert editor.form.flagged_paths() == ["model.n_embd"]
    assert editor.yaml_edit.extraSelections()  # its YAML line is marked too
    with qtbot.waitSignal(editor.validity_changed, timeout=2000) as sig:
        editor.form.editors["model.n_embd"].input.setValue(96)
    assert sig.args == [True, "valid"]
    assert not field.input.property("problem") and field.error.isHidden()


def test_unknown_key_is_named_and_its_section_and_line_flagged(qtbot, editor):
    with qtbot.waitSignal(editor.validity_changed, timeout=2000, check_params_cb=_invalid) as sig:
        editor.set_text("model:\n  n_layer: 2\n  n_layr: 3\n")
    assert "model.n_layr: unknown key (did you mean model.n_layer?)" in sig.args[1]
    assert editor.form.groups["model"].property("problem") is True
    marked = [s.cursor.blockNumber() for s in editor.yaml_edit.extraSelections()]
    assert marked == [2]


def test_out_of_range_value_from_yaml_is_shown_not_clamped(qtbot, editor):
    with qtbot.waitSignal(editor.validity_changed, timeout=2000, check_params_cb=_invalid) as sig:
        editor.set_text("train:\n  grad_accum_steps: 0\n")
    assert "train.grad_accum_steps" in sig.args[1]
    field = editor.form.editors["train.grad_accum_steps"]
    assert field.input.value() == 0 and field.input.property("problem") is True


def test_text_that_is_not_a_number_is_a_problem(qtbot, editor):
    lr = editor.form.editors["train.lr"].input
    lr.clear()
    with qtbot.waitSignal(editor.validity_changed, timeout=2000, check_params_cb=_invalid) as sig:
        qtbot.keyClicks(lr, "fast")
    assert "train.lr" in sig.args[1]
    with qtbot.waitSignal(editor.validity_changed, timeout=2000) as sig:
        lr.clear()
        qtbot.keyClicks(lr, "0.002")
    assert sig.args[0] is True


def test_yaml_exponent_without_dot_is_a_number(qtbot, editor):
    # YAML 1.1 reads `3e-4` as a string; the config loader takes it as the number people mean
    with qtbot.waitSignal(editor.validity_changed, timeout=2000) as sig:
        editor.set_text("train:\n  lr: 3e-4\n")
    assert sig.args[0] is True
    assert editor.config().train.lr == 3e-4


def test_estimates_follow_n_layer(qtbot, editor):
    editor.set_text(COMMENTED)
    before = editor.last_estimate()["params"]
    label_before = editor.estimates.values["params"].toolTip()
    with qtbot.waitSignal(editor.validity_changed, timeout=2000):
        editor.form.editors["model.n_layer"].input.setValue(6)
    after = editor.last_estimate()
    assert after["params"] > before
    assert editor.estimates.values["params"].toolTip() != label_before
    assert after["memory"]["total"] > 0 and after["flops_per_token"] > 0


def test_an_invalid_config_loaded_after_another_shows_no_figures_of_the_other(qtbot, editor):
    # switching from a valid run to one whose config.yaml is invalid showed the first run's parameters and
    # memory as "the last valid config" of the second
    editor.set_text(COMMENTED)
    assert editor.estimates.values["params"].text() != "—"
    editor.set_text(COMMENTED.replace("n_embd: 32", "n_embd: 32z"))
    assert editor.last_estimate() is None
    assert {label.text() for label in editor.estimates.values.values()} == {"—"}
    assert editor.estimates.note.text().startswith("No estimates until the config is valid: 1 problem")
    assert not editor.estimates.isEnabled()

    # made valid, then broken by an edit: this text's own last figures stay, greyed
    with qtbot.waitSignal(editor.validity_changed, timeout=2000):
        editor.set_text(COMMENTED)
    params = editor.estimates.values["params"].text()
    editor.tabs.setCurrentWidget(editor.yaml_edit)
    with qtbot.waitSignal(editor.validity_changed, check_params_cb=_invalid, timeout=3000):
        editor.yaml_edit.setPlainText(COMMENTED.replace("n_embd: 32", "n_embd: 32z"))
    assert editor.estimates.values["params"].text() == params != "—"
    assert editor.estimates.note.text().startswith("Showing the last valid config")


def test_vocab_comes_from_the_data_folder(qtbot, editor, tmp_path):
    data = tmp_path / "ws" / "data" / "demo"
    data.mkdir(parents=True)
    (data / "meta.json").write_text(json.dumps({"vocab_size": 65}))
    editor.set_base_dir(str(tmp_path / "ws" / "runs" / "r"))
    editor.set_text("data:\n  dir: ../../data/demo\n")
    assert editor.config().data.dir == str(data)
    assert editor.last_estimate()["vocab_size"] == 65
    assert "65" in editor.form.editors["model.vocab_size"].input.placeholderText()


@pytest.mark.parametrize("name", ["tiny-cpu", "small-gpu", "gpt2-small"])
def test_presets_load_and_validate(qtbot, editor, name):
    assert name in list_presets()
    with qtbot.waitSignal(editor.validity_changed, timeout=2000) as sig:
        editor.load_preset(name)
    assert sig.args == [True, "valid"], editor.problems()
    cfg = editor.config()
    if name == "tiny-cpu":
        assert (cfg.model.n_layer, cfg.model.n_head, cfg.model.n_embd) == (2, 2, 32)
        assert cfg.data.dir.endswith(os.path.join("data", "demo"))
    if name == "gpt2-small":
        assert (cfg.model.n_layer, cfg.model.n_head, cfg.model.n_embd, cfg.model.block_size) == (12, 12, 768, 1024)
        assert cfg.train.compile and cfg.train.precision == "bf16" and cfg.model.vocab_size is None
        assert 400_000 <= editor.last_estimate()["tokens_per_step"] <= 600_000


def test_preset_combo_loads_a_preset(qtbot, editor):
    combo = editor.preset_combo
    index = combo.findText("gpt2-small")
    combo.setFocus()
    with qtbot.waitSignal(editor.changed, timeout=2000):
        for _ in range(index):
            qtbot.keyClick(combo, Qt.Key.Key_Down)
    assert combo.currentText() == "gpt2-small"
    assert editor.form.editors["model.n_layer"].input.value() == 12
    assert editor.text().startswith("# gpt2-small")


def test_a_preset_keeps_the_runs_data_unless_its_own_is_prepared_here(qtbot, editor, tmp_path):
    """Loading the speedrun preset onto a run of another data set used to point data.dir at
    ../../data/shakespeare-char, which this workspace never prepared: Start was refused."""
    run = tmp_path / "ws" / "runs" / "r"
    run.mkdir(parents=True)
    mine = tmp_path / "ws" / "data" / "mine"
    mine.mkdir(parents=True)
    (mine / "meta.json").write_text(json.dumps({"format": 1, "vocab_size": 70}))
    editor.set_base_dir(str(run))
    editor.set_text("data:\n  dir: ../../data/mine\n")
    assert "not prepared" not in editor.status.text()
    editor.set_text("data:\n  dir: ../../data/nothing-here\n")  # valid, but Start will wait for the data
    assert editor.config() is not None and "data.dir not prepared yet" in editor.status.text()
    editor.set_text("data:\n  dir: ../../data/mine\n")
    editor.load_preset("speedrun-shakespeare-char")
    assert editor.config().data.dir == str(mine)
    assert editor.config().train.optimizer == "muon"  # the rest is the preset's
    notice = editor.notice_label.text()
    assert editor.notice_label.isVisibleTo(editor)
    assert "../../data/mine" in notice and "../../data/shakespeare-char" in notice and "speedrun" in notice
    # its target loss is a character-level figure: a BPE run trained its 250 steps without a word why
    assert "train.target_val_loss (1.89) was chosen for ../../data/shakespeare-char" in notice
    editor.set_text("data:\n  dir: ../../data/mine\n")  # another text (another run): the notice goes
    assert not editor.notice_label.isVisibleTo(editor)

    theirs = tmp_path / "ws" / "data" / "shakespeare-char"  # prepared here: the preset's data is taken
    theirs.mkdir()
    (theirs / "meta.json").write_text(json.dumps({"format": 1, "vocab_size": 65}))
    editor.load_preset("speedrun-shakespeare-char")
    assert editor.config().data.dir == str(theirs)
    assert not editor.notice_label.isVisibleTo(editor)


def test_set_value_round_trips_any_value():
    text = config_text.dump_new(Config())
    for path, value in [("train.eps", 1e-12), ("run.attention_probe", "a\nb: c"), ("train.betas", [0.8, 0.9]),
                        ("model.vocab_size", None), ("data.dir", "yes"), ("train.sample_prompt", "")]:
        patched = config_text.set_value(text, path, value)
        section, key = path.split(".")
        assert yaml.safe_load(patched)[section][key] == value
        assert len(patched.splitlines()) == len(text.splitlines())  # one line changed, none added


def _comment_lines(text: str) -> list[str]:
    return [line.split("#", 1)[1] for line in text.splitlines() if "#" in line]


def test_form_edits_that_add_keys_keep_every_comment_and_the_order(qtbot, editor):
    editor.set_text(COMMENTED)
    dropout = editor.form.editors["model.dropout"].input  # not in the text: the edit adds it
    dropout.clear()  # it shows the default; clear() emits no edit
    with qtbot.waitSignal(editor.changed, timeout=2000):
        qtbot.keyClicks(dropout, "0.2")
    text = editor.text()
    assert _comment_lines(text) == _comment_lines(COMMENTED)
    assert text.index("n_embd: 32") < text.index("dropout: 0.2") < text.index("train:")
    editor.form.editors["train.compile"].input.setChecked(True)
    editor.form.editors["data.dir"].line_edit().clear()
    qtbot.keyClicks(editor.form.editors["data.dir"].line_edit(), "elsewhere")
    text = editor.text()
    assert [line for line in text.splitlines() if not line.startswith(" ")] == \
        ["# my run", "model:", "data:", "train:", "run:"]  # a new section where the dataclasses put it
    assert _comment_lines(text) == _comment_lines(COMMENTED)
    cfg = loads(text)
    assert (cfg.model.dropout, cfg.train.compile, cfg.data.dir, cfg.model.n_layer) == (0.2, True, "elsewhere", 2)


def test_a_comment_typed_in_the_yaml_tab_survives_a_form_edit(qtbot, editor):
    editor.set_text(COMMENTED)
    editor.tabs.setCurrentWidget(editor.yaml_edit)
    typed = COMMENTED.replace("train:\n", "# my note about training\ntrain:\n")
    editor.yaml_edit.setPlainText(typed)
    with qtbot.waitSignal(editor.changed, timeout=2000):
        pass
    editor.tabs.setCurrentIndex(0)
    with qtbot.waitSignal(editor.changed, timeout=2000):
        editor.form.editors["model.n_head"].input.setValue(4)
    assert editor.text() == typed.replace("n_head: 2", "n_head: 4")


TINY_CPU = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "resources", "presets",
                        "tiny-cpu.yaml")


def test_new_run_new_from_and_fork_keep_the_source_comments(tmp_path):
    ws = Workspace.create(str(tmp_path / "ws"))
    preset = open(TINY_CPU, encoding="utf-8").read()
    assert len(_comment_lines(preset)) > 10
    src = ws.create_run("src", preset.replace("  dir: .        ", "  dir: runs/x   "))  # run.dir is forced to "."
    assert _comment_lines(src.read_config_text()) == _comment_lines(preset)
    assert src.read_config_text() == preset  # run.dir back to ".", comment in its column: the preset again
    copy = ws.new_run_from(src)
    assert copy.read_config_text() == preset
    ck = os.path.join(src.dir, "checkpoints", "step-000200")
    os.makedirs(ck)
    fork = ws.fork_run(src, ck, {"train.lr": 1e-3, "train.max_steps": 900})
    text = fork.read_config_text()
    assert _comment_lines(text) == _comment_lines(preset)
    cfg = fork.config()
    assert (cfg.train.lr, cfg.train.max_steps, cfg.train.init_from, cfg.run.dir) == (1e-3, 900, ck, fork.dir)
    changed = set(text.splitlines()) - set(preset.splitlines())
    assert {line.split(":")[0].strip() for line in changed} == {"lr", "max_steps", "init_from"}


def test_yaml_aliases_are_refused_before_they_expand(qtbot, editor, tmp_path):
    """A "billion laughs" config (aliases nesting aliases) is refused by the editor like by the engine,
    before anything is expanded or shown in the form; the preset matcher ignores it too."""
    from studio.workspace.presets import matching_preset

    bomb = 'a: &a ["x", "x"]\nb: &b [*a, *a]\nmodel: {n_layer: 2}\ntrain: {betas: *b}\n'
    with qtbot.waitSignal(editor.validity_changed, timeout=2000, check_params_cb=_invalid) as sig:
        editor.set_text(bomb)
    assert "anchors and aliases" in sig.args[1]
    assert any("aliases" in p.message for p in editor.problems())
    assert not editor.form.isEnabled()
    assert editor.text() == bomb  # the text stays for the user to fix
    preset = tmp_path / "p.yaml"
    preset.write_text("model: {n_layer: 2}\n", encoding="utf-8")
    assert matching_preset("model: {n_layer: 2}\n", {"p": str(preset)}) == "p"
    assert matching_preset("model: &m {n_layer: 2}\n", {"p": str(preset)}) is None


def test_estimates_show_the_trainable_share_of_a_lora_fine_tune(qtbot, editor, tmp_path):
    """Choosing LoRA in the form shows how few parameters train (and sizes gradients and AdamW state by
    them); full fine-tuning trains them all."""
    from tests.studio.helpers import write_checkpoint

    base = write_checkpoint(str(tmp_path / "base"), 100)
    editor.set_text(COMMENTED.replace("train:\n", f"train:\n  init_from: {base}\n  finetune: full\n"))
    assert not editor.problems(), editor.problems()
    row = editor.estimates.values["trainable_params"]
    assert row.text() == editor.estimates.values["params"].text()  # from scratch: everything trains
    optimizer_full = editor.estimates.values["optimizer"].text()
    combo = editor.form.editors["train.finetune"].input
    with qtbot.waitSignal(editor.changed, timeout=2000):
        combo.setCurrentIndex(combo.findText("lora"))
    assert "finetune: lora" in editor.text()
    qtbot.waitUntil(lambda: "%" in row.text(), timeout=3000)
    share = float(row.text().split("(")[1].rstrip("%)"))
    assert 0 < share < 100 and editor.estimates.values["optimizer"].text() != optimizer_full


def test_empty_fields_say_what_empty_means(editor):
    """Every optional field read "empty = none", whatever leaving it empty does."""
    placeholder = {path: e.input.placeholderText() for path, e in editor.form.editors.items()
                   if hasattr(e.input, "placeholderText")}
    assert placeholder["model.n_kv_head"] == "empty = n_head"
    assert placeholder["train.warmup_steps"] == "empty = a tenth of max_steps"
    assert placeholder["train.target_val_loss"] == "empty = train to max_steps"
    assert placeholder["run.attention_probe"] == "empty = the start of the validation data"


def _wheel(widget, notches: int = -3) -> None:
    from PySide6.QtCore import QPoint, QPointF
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    at = QPointF(widget.rect().center())
    event = QWheelEvent(at, QPointF(widget.mapToGlobal(at.toPoint())), QPoint(0, 0), QPoint(0, 120 * notches),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(widget, event)


def test_a_narrow_form_stacks_its_columns_and_the_wheel_scrolls_it_not_a_field(qtbot, editor):
    """At a 1024 px window the Training column was cut to its labels' first letters behind a sideways scroll
    bar; and the wheel over the form turned model.activation from gelu to swiglu (saved as edited)."""
    from PySide6.QtWidgets import QApplication, QScrollArea

    editor.resize(640, 600)
    editor.show()
    qtbot.waitExposed(editor)
    form = editor.form
    scroll = next(a for a in editor.findChildren(QScrollArea) if a.widget() is form)
    assert form.columns.wrapped and scroll.horizontalScrollBar().maximum() == 0  # one column, all of it in view
    editor.resize(1400, 600)
    QApplication.processEvents()
    assert not form.columns.wrapped  # room for both: side by side again
    editor.resize(640, 600)
    QApplication.processEvents()
    combo = form.editors["model.activation"].input
    before, edits = combo.currentText(), []
    form.value_edited.connect(lambda path, value: edits.append(path))
    _wheel(combo)
    assert combo.currentText() == before and not edits  # not the value under the pointer...
    assert scroll.verticalScrollBar().value() > 0  # ...the form scrolled
    combo.setFocus()
    qtbot.waitUntil(combo.hasFocus, timeout=2000)
    _wheel(combo, -1)
    assert combo.currentText() != before and edits == ["model.activation"]  # focused: the wheel is the field's
    # a low window: the estimates scroll; their two notes were drawn over each other
    editor.set_text(COMMENTED)  # every estimate shown, and the two notes
    editor.estimates.show_timing(None)
    QApplication.processEvents()
    est_height = editor.estimates.minimumSizeHint().height()
    assert editor.minimumSizeHint().height() < est_height / 2  # they scroll rather than need that height


def test_the_estimates_say_which_export_formats_the_model_will_have(qtbot, editor):
    """A RoPE model with GELU (the speedrun preset's once) has no Hugging Face or GGUF architecture: that
    was said only by Export's failure after training. The estimates say it as the model is edited, and why."""
    row = editor.estimates.values["exports"]
    editor.set_text(COMMENTED)  # learned positions, LayerNorm, GELU: GPT-2
    assert row.text() == "HF, GGUF, ONNX" and "No Hugging Face" not in editor.estimates.note.text()
    editor.set_text(COMMENTED.replace("  n_embd: 32\n", "  n_embd: 32\n  pos_encoding: rope\n  qk_norm: true\n"))
    assert row.text() == "ONNX only"
    for reason in ("model.norm: layernorm with rope", "model.activation: gelu with rope"):
        assert reason in row.toolTip() and reason in editor.estimates.note.text(), reason
    assert "model.qk_norm" not in row.toolTip()  # with rope, RMSNorm and SwiGLU it goes as Qwen3
    editor.set_text(COMMENTED.replace("  n_embd: 32\n", "  n_embd: 32\n  pos_encoding: rope\n  qk_norm: true\n"
                                      "  norm: rmsnorm\n  activation: swiglu\n"))
    assert row.text() == "HF, GGUF, ONNX" and "No Hugging Face" not in editor.estimates.note.text()
