"""ImportJob and ExportJob with the real engine: a tiny Llama (GQA) built offline with transformers is
imported into the workspace as a run folder every picker lists, then exported; a refused export fails with
the engine's message and writes nothing."""

from __future__ import annotations

import os

import pytest

from studio.controllers.export_job import ExportJob, ExportRequest, default_out
from studio.controllers.import_job import ImportJob, import_name
from studio.workspace.workspace import Workspace


@pytest.fixture
def hf_folder(tmp_path):
    from tests.core.interop_models import tiny_hf_model

    tiny_hf_model("llama", str(tmp_path / "tiny-llama"))
    return str(tmp_path / "tiny-llama")


def _text(failure) -> str:
    return " ".join([failure.headline, *failure.details, *failure.log])


def _run(qtbot, job, *args):
    with qtbot.waitSignal(job.finished, timeout=120_000) as blocker:
        assert job.start(*args)
    return blocker.args[0]


def test_import_makes_a_listed_base_model_and_export_writes_its_files(qtbot, tmp_path, hf_folder):
    ws = Workspace.create(str(tmp_path / "ws"))
    assert import_name(hf_folder) == "tiny-llama" and import_name("/x/Qwen.Q8_0.gguf") == "Qwen.Q8_0"
    job = ImportJob()
    result = _run(qtbot, job, hf_folder, os.path.join(ws.runs_dir, ws.unique_run_name("tiny-llama")))
    assert result.ok, result.failure
    runs = {r.name: r for r in ws.runs()}
    assert "tiny-llama" in runs
    run = runs["tiny-llama"]
    cfg = run.config()  # the copied config validates, so Fork and fine-tuning can start from it
    assert cfg.model.n_kv_head == 2 and cfg.model.n_head == 4
    assert os.path.isfile(os.path.join(result.checkpoint, "meta.json"))
    assert run.status() == "imported"  # a base model, not a new run waiting for data

    export = ExportJob()
    out = default_out(result.checkpoint, "gguf", "f32")
    done = _run(qtbot, export, ExportRequest(result.checkpoint, "gguf", out, "f32"))
    assert done.ok and os.path.isfile(out) and os.path.getsize(out) > 1000
    assert done.folder == os.path.dirname(out)
    # the engine's word on how to run it, for the dialog: llama.cpp with the context it was trained on (RoPE)
    assert done.hint == f"llama.cpp: llama-cli -m {out} -c {cfg.model.block_size} (the context it was trained on)"

    bad = ExportRequest(result.checkpoint, "hf", str(tmp_path / "hf-q8"), "q8_0")
    failed = _run(qtbot, ExportJob(), bad)
    assert failed.status == "failed" and "q8_0" in _text(failed.failure) and failed.hint == ""
    assert not os.path.exists(tmp_path / "hf-q8")


def test_import_of_a_missing_source_fails_and_lists_nothing(qtbot, tmp_path):
    ws = Workspace.create(str(tmp_path / "ws"))
    result = _run(qtbot, ImportJob(), str(tmp_path / "nope"), os.path.join(ws.runs_dir, "nope"))
    assert result.status == "failed" and "not found" in _text(result.failure)
    assert [r.name for r in ws.runs()] == []


def test_import_and_export_dialogs_drive_the_jobs(qtbot, tmp_path, hf_folder, monkeypatch):
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QDesktopServices

    from studio.views.models.export_dialog import ExportDialog
    from studio.views.models.import_dialog import ImportDialog

    ws = Workspace.create(str(tmp_path / "ws"))
    dialog = ImportDialog(ImportJob(), ws.runs_dir, ws.unique_run_name)
    qtbot.addWidget(dialog)
    dialog.source.setText(hf_folder)
    assert dialog.name.text() == "tiny-llama"
    dialog.name.setText("base")
    dialog.name.setModified(True)
    dialog.show()
    assert not dialog.progress.isVisible()  # no empty bar before anything runs
    with qtbot.waitSignal(dialog.job.finished, timeout=120_000):
        qtbot.mouseClick(dialog.import_button, Qt.MouseButton.LeftButton)
        assert dialog.progress.isVisible() and dialog.progress.maximum() == 0  # busy
    assert dialog.result.ok and "base" in dialog.status.text()
    assert dialog.progress.isVisible() and dialog.progress.value() == dialog.progress.maximum() == 1
    assert [r.name for r in ws.runs()] == ["base"]

    export = ExportDialog(ExportJob(), dialog.result.checkpoint)
    qtbot.addWidget(export)
    export.show()
    export.format.setCurrentIndex(export.format.findData("hf"))
    assert [export.dtype.itemText(i) for i in range(export.dtype.count())] == ["f32", "f16", "bf16"]
    assert export.out.text().endswith(os.path.join("base", "exports", "base-step0-hf-f32"))
    with qtbot.waitSignal(export.job.finished, timeout=120_000):
        qtbot.mouseClick(export.export_button, Qt.MouseButton.LeftButton)
    assert export.result.ok and os.path.isfile(os.path.join(export.result.out, "config.json"))
    assert export.open_button.isVisibleTo(export) and export.result.out in export.status.text()
    assert "Run it with transformers: AutoModelForCausalLM" in export.status.text()
    assert not export.export_button.isEnabled()  # that name exists now
    # the dialog grew to show the outcome, the run hint and the Open Folder button (it cut the hint)
    assert export.layout().totalHeightForWidth(export.width()) <= export.height()
    opened = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile()))
    qtbot.mouseClick(export.open_button, Qt.MouseButton.LeftButton)
    assert opened == [export.result.out]


def test_an_imported_model_reads_as_a_base_model_not_a_run_to_start(qtbot, tmp_path, hf_folder, window):
    """The window shows an imported model as "imported" with what it is for, not a "new" run whose Start is
    refused for want of prepared data (a new user's first sight of an import)."""
    from studio.theme import STATUS_COLORS
    from tests.studio.helpers import select_run

    ws = Workspace.create(str(tmp_path / "ws"))
    assert _run(qtbot, ImportJob(), hf_folder, os.path.join(ws.runs_dir, "tiny-llama")).ok
    w = window(ws.root)
    select_run(w, "tiny-llama")
    qtbot.waitUntil(lambda: w.controller() is not None and w.controller().status == "imported")
    panel = w.training
    assert not panel.start_button.isEnabled() and not w.start_action.isEnabled()
    assert panel.blocker_label.isVisibleTo(panel) and not panel.progress.isVisibleTo(panel)
    assert not panel.plots.isVisibleTo(panel) and not panel.rule.isVisibleTo(panel)  # no empty curves
    assert "The model: 2 layers × 32 wide, 4 heads (2 key/value), vocabulary" in panel.blocker_label.text()
    w.show_tab("training")
    w.resize(1200, 800)
    qtbot.waitUntil(lambda: panel.height() > 500)
    assert panel.blocker_label.height() < panel.height() / 4  # the note at the top, not stretched to fill
    note = panel.blocker_label.text()
    assert "Cannot start" not in note and "imported from" in note and hf_folder in note and "Fine-tune" in note
    # its links lead where it says: a tab, and the fine-tune dialog with this model as the base
    panel.blocker_label.linkActivated.emit("generate")
    assert w.tabs.currentWidget() is w.generation
    from studio.views.finetune.dialog import FinetuneDialog

    panel.blocker_label.linkActivated.emit("finetune")
    qtbot.waitUntil(lambda: bool(w.findChildren(FinetuneDialog)))
    dialog = w.findChildren(FinetuneDialog)[0]
    assert dialog.picker.checkpoint().startswith(os.path.join(ws.runs_dir, "tiny-llama"))
    dialog.close()
    w.show_tab("training")
    assert panel.status_label.text() == "tiny-llama — imported"
    item = w.runs_panel.tree.topLevelItem(0)
    assert item.text(1) == "imported"
    assert "imported" in STATUS_COLORS["light"] and "imported" in STATUS_COLORS["dark"]
    statuses = [w.runs_panel.status_filter.itemData(i) for i in range(w.runs_panel.status_filter.count())]
    assert "imported" in statuses
    # switching to a run of its own: the note goes, the progress bar and the start reasons come back
    ws.create_run("mine", ws.run("tiny-llama").read_config_text())
    w.session.refresh()
    select_run(w, "mine")
    qtbot.waitUntil(lambda: w.controller() is not None and w.controller().status == "new")
    assert panel.progress.isVisibleTo(panel) and "imported from" not in panel.blocker_label.text()
    assert panel.plots.isVisibleTo(panel)


def test_an_imported_models_config_is_read_only_and_says_what_trains_it(qtbot, tmp_path, hf_folder, window,
                                                                      monkeypatch):
    """An imported model's Config tab offered an editable form, "data.dir not prepared yet (Data tab)" and a
    time to train 1,000 steps; Run > Continue for More Steps asked for a number of steps, then said it "has no
    checkpoint to continue from"; the Attention tab opened on the demo's copy/reverse text. Now: read-only
    with where training happens instead, no time, Continue disabled (and said why, asking nothing), an
    English probe sentence."""
    from studio.views.runs import dialogs
    from studio.workspace.run import IMPORTED_PROBE
    from tests.studio.helpers import select_run

    ws = Workspace.create(str(tmp_path / "ws"))
    assert _run(qtbot, ImportJob(), hf_folder, os.path.join(ws.runs_dir, "tiny-llama")).ok
    ws.create_run("mine", ws.run("tiny-llama").read_config_text())
    w = window(ws.root)
    select_run(w, "tiny-llama")
    qtbot.waitUntil(lambda: w.controller() is not None and w.controller().status == "imported")
    w.show_tab("config")
    editor, est = w.config_editor, w.config_editor.estimates
    qtbot.waitUntil(lambda: editor.lock_label.isVisibleTo(editor))
    assert "imported" in editor.lock_label.text() and "Fine-tune on My Data" in editor.lock_label.text()
    assert editor.yaml_edit.isReadOnly() and not editor.form.isEnabled()
    assert "valid" in editor.status.text() and "not prepared" not in editor.status.text()
    qtbot.waitUntil(lambda: "Fine-tune" in est.timing_note.text())
    assert not est.timing["total"].isVisibleTo(est) and not est.timing_head.isVisibleTo(est)
    assert not w.continue_action.isEnabled()
    more = next(a for a in w.runs_panel.context_menu(w.current_dir).actions() if a.text().startswith("Continue"))
    assert not more.isEnabled() and "imported model" in more.toolTip()  # the runs list's menu says it too
    monkeypatch.setattr(dialogs, "ask_more_steps", lambda *a: pytest.fail("asked for steps it would refuse"))
    assert not w.run_actions.continue_run(w.current_dir)
    assert "imported model" in w.statusBar().currentMessage()
    assert w.attention.text.toPlainText() == IMPORTED_PROBE
    qtbot.waitUntil(lambda: bool(w.attention.picker.checkpoint()))
    assert w.attention.picker.combo.currentText() == "tiny-llama · imported"  # not "step 0": untrained
    # New from this, as the note offers: its shape, on the data a new run takes, a vocabulary from that data
    base = ws.run("tiny-llama").config_or_none()
    copy = w.session.copy_run(w.current_dir).config_or_none()
    assert copy.data.dir == os.path.join(ws.root, "data", "demo") and copy.model.vocab_size is None
    assert (copy.model.n_layer, copy.model.n_kv_head) == (base.model.n_layer, base.model.n_kv_head)
    assert (copy.train.eval_interval, copy.train.sample_tokens) == (50, 120)  # not the importer's 250 and none
    # a run of its own: editable again, a time estimate, its data warned about
    select_run(w, "mine")
    qtbot.waitUntil(lambda: w.controller() is not None and w.controller().status == "new")
    qtbot.waitUntil(lambda: not editor.lock_label.isVisibleTo(editor))
    assert not editor.yaml_edit.isReadOnly() and "not prepared" in editor.status.text()
    qtbot.waitUntil(lambda: est.timing["total"].isVisibleTo(est))
    assert "Fine-tune" not in est.timing_note.text() and not w.continue_action.isEnabled()
    assert w.attention.text.toPlainText() != IMPORTED_PROBE


def test_export_dialog_says_before_export_when_a_formats_package_is_missing(qtbot, tmp_path, monkeypatch):
    """A plain install has no onnx / gguf: choosing such a format says which package and extra at once and
    leaves Export disabled, instead of failing after the click; the bundle gets its own wording."""
    import importlib.util
    import sys

    from studio.controllers import export_job
    from studio.views.models.export_dialog import ExportDialog

    real = importlib.util.find_spec
    monkeypatch.setattr(export_job.importlib.util, "find_spec",
                        lambda name, *a: None if name in ("onnx", "gguf") else real(name, *a))
    dialog = ExportDialog(ExportJob(), str(tmp_path / "ckpt"))
    qtbot.addWidget(dialog)
    assert dialog.format.currentData() == "hf" and dialog.export_button.isEnabled() and not dialog.status.text()
    dialog.format.setCurrentIndex(dialog.format.findData("onnx"))
    assert not dialog.export_button.isEnabled()
    assert "'onnx'" in dialog.status.text() and "pip install -e '.[interop]'" in dialog.status.text()
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    dialog.format.setCurrentIndex(dialog.format.findData("gguf"))
    assert "'gguf'" in dialog.status.text() and "desktop build does not include it" in dialog.status.text()
    dialog.format.setCurrentIndex(dialog.format.findData("hf"))
    assert dialog.export_button.isEnabled() and not dialog.status.text()
    assert export_job.missing_text("gguf-lora", ["gguf"]).startswith("GGUF LoRA adapter export needs")  # "GGUF-LORA"


def test_a_model_only_onnx_can_carry_is_offered_onnx_and_says_why_not_the_others(qtbot, tmp_path):
    """A RoPE model with GELU (the speedrun preset's once) failed after Export was clicked ("gelu with
    rope has no equivalent"): the dialog opens on ONNX, and choosing HF or GGUF says why at once."""
    from studio.views.models.export_dialog import ExportDialog
    from tests.studio.helpers import write_checkpoint_with_model

    speedrun = write_checkpoint_with_model(str(tmp_path / "speedrun"), 175, {
        "n_layer": 2, "n_head": 2, "n_embd": 32, "pos_encoding": "rope", "norm": "rmsnorm", "activation": "gelu",
        "qk_norm": True})
    dialog = ExportDialog(ExportJob(), speedrun)
    qtbot.addWidget(dialog)
    assert dialog.format.currentData() == "onnx" and not dialog.status.text()
    for fmt in ("hf", "gguf"):
        dialog.format.setCurrentIndex(dialog.format.findData(fmt))
        assert not dialog.export_button.isEnabled(), fmt
        assert "cannot carry this model" in dialog.status.text()
        assert "model.activation: gelu with rope" in dialog.status.text()
    plain = write_checkpoint_with_model(str(tmp_path / "plain"), 100, {"n_layer": 2, "n_head": 2, "n_embd": 32})
    dialog = ExportDialog(ExportJob(), plain)  # GPT-2's shape: Hugging Face first, as before
    qtbot.addWidget(dialog)
    assert dialog.format.currentData() == "hf" and dialog.export_button.isEnabled()


def test_a_lora_fine_tune_exports_its_adapters_alone_for_peft(qtbot, tmp_path, hf_folder):
    """A LoRA fine-tune of an imported model offers "LoRA adapter only (PEFT)" besides the merged formats, says
    which one gives what, and writes the adapter folder with how to load it on the model it came from; a
    checkpoint without adapters does not offer it."""
    from PySide6.QtCore import Qt

    from core.cli import main
    from studio.views.models.export_dialog import ExportDialog
    from tests.core.interop_models import lora_finetune

    assert main(["import", hf_folder, "--out", str(tmp_path / "base")]) == 0
    base = os.path.join(str(tmp_path / "base"), "checkpoints", "step-000000")
    ckpt = lora_finetune(tmp_path, base, steps=2)
    plain = ExportDialog(ExportJob(), base)
    qtbot.addWidget(plain)
    assert plain.format.findData("peft") == plain.format.findData("gguf-lora") == -1 and not plain.status.text()
    dialog = ExportDialog(ExportJob(), ckpt)
    qtbot.addWidget(dialog)
    assert "merged into the base" in dialog.status.text()
    dialog.format.setCurrentIndex(dialog.format.findData("peft"))
    assert [dialog.dtype.itemText(i) for i in range(dialog.dtype.count())] == ["f32", "f16", "bf16"]
    assert dialog.out.text().endswith(os.path.join("exports", "lora-run-step2-peft-f32"))
    assert "adapters alone" in dialog.status.text() and dialog.export_button.isEnabled()
    with qtbot.waitSignal(dialog.job.finished, timeout=120_000):
        qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    assert dialog.result.ok, dialog.result.failure
    assert os.path.isfile(os.path.join(dialog.result.out, "adapter_config.json"))
    assert f"PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained({hf_folder!r})" in dialog.status.text()
    dialog.format.setCurrentIndex(dialog.format.findData("gguf-lora"))  # the same adapters for llama.cpp
    assert dialog.out.text().endswith("lora-run-step2-gguf-lora-f32.gguf") and "GGUF export" in dialog.status.text()
    with qtbot.waitSignal(dialog.job.finished, timeout=120_000):
        qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    assert dialog.result.ok and os.path.isfile(dialog.result.out), dialog.result.failure
    assert "--lora" in dialog.status.text() and "exported with --format gguf" in dialog.status.text()


def test_export_never_offers_or_starts_on_an_existing_destination(qtbot, tmp_path):
    """Exporting again with the defaults failed after the click (the engine refused the name the first export
    had written): the default name is a free one, and a name that exists is said at once, Export disabled."""
    from studio.views.models.export_dialog import ExportDialog

    ckpt = tmp_path / "run" / "checkpoints" / "step-000300"
    ckpt.mkdir(parents=True)
    first = default_out(str(ckpt), "hf", "f32")
    assert first == str(tmp_path / "run" / "exports" / "run-step300-hf-f32")
    os.makedirs(first)
    assert default_out(str(ckpt), "hf", "f32") == first + "-2"
    gguf = default_out(str(ckpt), "gguf", "q8_0")
    open(gguf, "w").close()
    assert default_out(str(ckpt), "gguf", "q8_0") == gguf.replace(".gguf", "-2.gguf")
    dialog = ExportDialog(ExportJob(), str(ckpt))
    qtbot.addWidget(dialog)
    assert dialog.out.text() == first + "-2" and dialog.export_button.isEnabled() and not dialog.status.text()
    dialog.out.setText(first)
    assert not dialog.export_button.isEnabled() and f"{first} already exists" in dialog.status.text()
    dialog.out.setText(first + "-3")
    assert dialog.export_button.isEnabled() and not dialog.status.text()


def test_import_dialog_says_before_import_when_gguf_is_missing_and_grows_for_a_failure(qtbot, tmp_path,
                                                                                          monkeypatch):
    """A plain install has no 'gguf': a .gguf source says which package and extra at once and leaves Import
    disabled (it used to start the engine and fail); a failure's lines make the dialog taller instead of
    squeezing its buttons."""
    import importlib.util

    from PySide6.QtCore import Qt

    from studio.views.models.import_dialog import ImportDialog

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gguf" else real(name, *a))
    ws = Workspace.create(str(tmp_path / "ws"))
    dialog = ImportDialog(ImportJob(), ws.runs_dir, ws.unique_run_name)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.source.setText(str(tmp_path / "model.Q8_0.gguf"))
    assert not dialog.import_button.isEnabled()
    assert "'gguf'" in dialog.status.text() and "pip install -e '.[interop]'" in dialog.status.text()
    dialog.source.setText(str(tmp_path / "no-such-folder"))  # a folder needs no extra: the note goes
    assert dialog.import_button.isEnabled() and not dialog.status.text()
    height = dialog.height()
    with qtbot.waitSignal(dialog.job.finished, timeout=120_000):
        qtbot.mouseClick(dialog.import_button, Qt.MouseButton.LeftButton)
    assert dialog.result.status == "failed" and "not found" in dialog.status.text()
    assert not dialog.progress.isVisible()  # the status line says it failed; no bar at 0 %
    assert dialog.height() > height
    assert dialog.height() >= dialog.layout().totalHeightForWidth(dialog.width())


def test_file_import_model_lists_the_model_while_its_dialog_says_so(qtbot, tmp_path, hf_folder, window):
    """File -> Import Model… with the real dialog and import job: once the dialog says "a base model in the runs
    list", it is (listed, selected and shown, the status bar saying what to do with it), before the dialog is
    closed; closing it keeps that."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QDialogButtonBox

    from studio.views.models import menu_actions
    from studio.views.models.import_dialog import ImportDialog

    ws = Workspace.create(str(tmp_path / "ws"))
    w = window(ws.root)
    out = os.path.join(ws.runs_dir, "tiny-llama")
    seen = {}

    def drive() -> None:
        dialog = next(d for d in QApplication.topLevelWidgets() if isinstance(d, ImportDialog) and d.isVisible())
        dialog.source.setText(hf_folder)
        dialog.import_button.click()
        qtbot.waitUntil(lambda: dialog.result is not None, timeout=120_000)
        seen.update(said=dialog.status.text(), current=w.current_dir, message=w.statusBar().currentMessage())
        dialog.buttons.button(QDialogButtonBox.StandardButton.Cancel).click()  # reads "Close" now

    QTimer.singleShot(0, drive)
    menu_actions.import_model(w)
    assert "a base model in the runs list" in seen["said"]
    assert seen["current"] == out and "Imported tiny-llama" in seen["message"]
    assert w.current_dir == out and w.controller().run.name == "tiny-llama"


def test_the_file_pickers_open_beside_the_source_or_at_home_not_where_the_studio_started(qtbot, tmp_path,
                                                                                        monkeypatch):
    """Import's GGUF file... and Folder... opened in the studio's working directory (/tmp in the trial, with
    the export just written deep in the workspace): they open beside the source typed or picked last,
    else in the home folder."""
    from PySide6.QtWidgets import QFileDialog

    from studio.views.models.import_dialog import ImportDialog

    asked = []
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a: (asked.append(a[2]), ("", ""))[1])
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a: asked.append(a[2]) or "")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    ws = Workspace.create(str(tmp_path / "ws"))
    dialog = ImportDialog(ImportJob(), ws.runs_dir, ws.unique_run_name)
    qtbot.addWidget(dialog)
    dialog.file_button.click()
    exports = tmp_path / "ws" / "runs" / "demo" / "exports"
    exports.mkdir(parents=True)
    dialog.source.setText(str(exports / "demo-step1000-gguf-f32.gguf"))
    dialog.file_button.click()
    dialog.folder_button.click()
    assert asked == [str(tmp_path / "home"), str(exports), str(exports)]


def test_import_dialog_says_what_a_folder_holds_and_refuses_what_cannot_come_in(qtbot, tmp_path):
    """The dialog said nothing about the folder until Import had started an engine: an unsupported
    architecture failed then. It reads config.json as the engine does (torch-free) and says at once what the
    folder holds, with its parameter count, or why it cannot be imported (Import disabled)."""
    import json

    from studio.views.models.import_dialog import ImportDialog
    from tests.core.interop_models import tiny_hf_model

    hf = tiny_hf_model("qwen3", str(tmp_path / "qwen3"))
    ws = Workspace.create(str(tmp_path / "ws"))
    dialog = ImportDialog(ImportJob(), ws.runs_dir, ws.unique_run_name)
    qtbot.addWidget(dialog)
    dialog.source.setText(str(tmp_path / "qwen3"))
    text = dialog.status.text()
    params = sum(p.numel() for p in hf.parameters())
    assert text.startswith("Qwen3ForCausalLM: 2 layers, 4 heads of 128 (2 key/value) with QK-norm, width 32")
    assert f"{params / 1000:.1f}K parameters" in text and dialog.import_button.isEnabled()
    other = tmp_path / "gemma"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "gemma2", "architectures": ["Gemma2ForCausalLM"]}))
    dialog.source.setText(str(other))
    assert "Cannot import this folder" in dialog.status.text() and "gemma2" in dialog.status.text()
    assert "supported: gpt2, llama, mistral, qwen2, qwen3" in dialog.status.text()
    assert not dialog.import_button.isEnabled()
    dialog.source.setText(str(tmp_path))  # a folder without config.json
    assert "not a Hugging Face model folder" in dialog.status.text() and not dialog.import_button.isEnabled()
    dialog.source.setText(str(tmp_path / "qwen3"))
    assert dialog.import_button.isEnabled() and dialog.status.text() == text
    assert dialog.name.text() == "qwen3"
    ws.create_run("qwen3", "model: {}\n")  # the name is taken: the field shows the one the import will use
    dialog.source.setText(str(tmp_path / "qwen3") + "/")
    assert dialog.name.text() == "qwen3-2"


def test_import_dialog_describes_a_gguf_file_from_its_header(qtbot, tmp_path):
    """A .gguf file is described too, from its header read with the standard library (the GUI process does
    not load the gguf package): architecture, number format, shape and parameters, or why it cannot come in."""
    import gguf
    import numpy as np

    from studio.views.models.import_dialog import ImportDialog

    def write(path, arch: str) -> None:
        w = gguf.GGUFWriter(str(path), arch)
        w.add_block_count(2)
        w.add_embedding_length(64)
        w.add_head_count(4)
        w.add_head_count_kv(2)
        w.add_key_length(24)
        w.add_context_length(128)
        w.add_file_type(7)
        w.add_token_list([f"t{i}" for i in range(300)])  # a long array of strings, skipped item by item
        w.add_array("x.long", list(range(1000)))  # and one of numbers, skipped at once
        w.add_tensor("token_embd.weight", np.zeros((300, 64), dtype=np.float32))
        w.add_tensor("blk.0.attn_q_norm.weight", np.zeros(24, dtype=np.float32))
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()

    write(tmp_path / "m.gguf", "qwen3")
    ws = Workspace.create(str(tmp_path / "ws"))
    dialog = ImportDialog(ImportJob(), ws.runs_dir, ws.unique_run_name)
    qtbot.addWidget(dialog)
    dialog.source.setText(str(tmp_path / "m.gguf"))
    assert dialog.status.text() == ("qwen3 (GGUF, Q8_0): 2 layers, 4 heads of 24 (2 key/value) with QK-norm, "
                                    "width 64, vocabulary 300, context 128: 19.2K parameters.")
    assert dialog.import_button.isEnabled()
    write(tmp_path / "phi.gguf", "phi3")
    dialog.source.setText(str(tmp_path / "phi.gguf"))
    assert "architecture 'phi3' is not supported" in dialog.status.text() and not dialog.import_button.isEnabled()
    (tmp_path / "bad.gguf").write_bytes(b"not a model")
    dialog.source.setText(str(tmp_path / "bad.gguf"))
    assert "not a GGUF file" in dialog.status.text() and not dialog.import_button.isEnabled()


def test_export_on_a_run_without_a_checkpoint_says_why_instead_of_nothing(qtbot, workspace, window, monkeypatch):
    """Run → Export Checkpoint… on a new run opened no dialog and said nothing; with a checkpoint it opens,
    from the runs list's right-click menu too (disabled before)."""
    from studio.views.models import menu_actions
    from studio.views.runs import actions
    from tests.studio.helpers import select_run, write_checkpoint

    w = window(workspace.root)
    select_run(w, "tiny")
    run_dir = os.path.join(workspace.runs_dir, "tiny")
    action = next(a for m in w.menuBar().actions() for a in m.menu().actions() if a.text() == "E&xport Checkpoint…")
    opened = []
    monkeypatch.setattr(menu_actions, "run_export_dialog", lambda run_dir, parent: opened.append(run_dir))
    monkeypatch.setattr(actions, "run_export_dialog", lambda run_dir, parent: opened.append(("menu", run_dir)))
    context = next(a for a in w.runs_panel.context_menu(run_dir).actions() if a.text() == "Export…")
    assert not context.isEnabled()
    action.trigger()
    assert opened == [] and "tiny has no checkpoint to export yet" in w.statusBar().currentMessage()
    write_checkpoint(run_dir, 10)
    action.trigger()
    assert opened == [run_dir]
    w.session.refresh()
    context = next(a for a in w.runs_panel.context_menu(run_dir).actions() if a.text() == "Export…")
    assert context.isEnabled()
    context.trigger()
    assert opened == [run_dir, ("menu", run_dir)]


def test_a_peft_adapter_imports_onto_the_workspace_import_of_its_base(qtbot, tmp_path, hf_folder, window):
    """File → Import Model… on a PEFT adapter folder: the dialog says what it is, shows a Base model row
    preselected with the workspace's import of the model the adapter names, and imports it as a LoRA
    fine-tune nested under that base; a model folder has no Base model row."""
    import json

    import peft
    import transformers
    from PySide6.QtCore import Qt

    from studio.views.models.import_dialog import ImportDialog

    ws = Workspace.create(str(tmp_path / "ws"))
    assert _run(qtbot, ImportJob(), hf_folder, os.path.join(ws.runs_dir, "tiny-llama")).ok
    hf = transformers.AutoModelForCausalLM.from_pretrained(hf_folder)
    config = peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    peft.get_peft_model(hf, config).save_pretrained(str(tmp_path / "my-adapter"))
    stranger = peft.LoraConfig(r=2, target_modules=["q_proj"])
    peft.get_peft_model(transformers.AutoModelForCausalLM.from_pretrained(hf_folder), stranger).save_pretrained(
        str(tmp_path / "for-another"))
    with open(tmp_path / "for-another" / "adapter_config.json", encoding="utf-8") as fh:
        named = {**json.load(fh), "base_model_name_or_path": "org/another-model"}
    with open(tmp_path / "for-another" / "adapter_config.json", "w", encoding="utf-8") as fh:
        json.dump(named, fh)
    dialog = ImportDialog(ImportJob(), ws.runs_dir, ws.unique_run_name)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.source.setText(hf_folder)
    assert not dialog.form.isRowVisible(dialog.base)
    dialog.source.setText(str(tmp_path / "for-another"))  # for a model this workspace does not have
    assert dialog.form.isRowVisible(dialog.base) and "trained on org/another-model" in dialog.status.text()
    assert dialog.base.checkpoint() == "" and not dialog.import_button.isEnabled()  # the user picks
    dialog.source.setText(str(tmp_path / "my-adapter"))
    assert "A LoRA adapter (PEFT): rank 4, alpha 8, on q_proj, v_proj; trained on " in dialog.status.text()
    base = os.path.join(ws.runs_dir, "tiny-llama", "checkpoints", "step-000000")
    assert os.path.realpath(dialog.base.checkpoint()) == os.path.realpath(base)
    assert dialog.import_button.isEnabled() and dialog.name.text() == "my-adapter"
    with qtbot.waitSignal(dialog.job.finished, timeout=120_000):
        qtbot.mouseClick(dialog.import_button, Qt.MouseButton.LeftButton)
    assert dialog.result.ok, dialog.result.failure
    assert "a LoRA fine-tune under its base model" in dialog.status.text()
    runs = {r.name: r for r in ws.runs()}
    run = runs["my-adapter"]
    assert os.path.realpath(run.parent_dir()) == os.path.realpath(os.path.join(ws.runs_dir, "tiny-llama"))
    assert run.status() == "imported" and run.config().train.finetune == "lora"
    from tests.studio.helpers import select_run

    w = window(ws.root)
    select_run(w, "my-adapter")
    qtbot.waitUntil(lambda: "A LoRA adapter on tiny-llama, imported from" in w.training.blocker_label.text())
