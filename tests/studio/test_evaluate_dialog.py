"""Evaluate… in the studio against the real engine on a tiny trained checkpoint: a text evaluation shows the
perplexity `llm-train eval --json` prints; a pairs evaluation shows BLEU / ROUGE-L / exact match and its
generations beside their references; results are kept in the checkpoint (they survive closing the window)
and reach the runs table and the comparison; a bad pairs line is named by file and line; Cancel."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QDialogButtonBox

from core import layout
from studio.workspace.compare import format_value
from studio.workspace.workspace import Workspace
from tests.studio.helpers import open_window, select_run
from tests.studio.test_generation_panel import ROOT, tiny_run_copy

WAIT_MS = 180_000  # the engine imports torch first; the machine is shared


@pytest.fixture
def ws(tmp_path, tmp_path_factory) -> Workspace:
    """A workspace holding a copy of the session's tiny trained run (checkpoints at steps 20 and 40), so
    each test's saved evaluations are its own."""
    return tiny_run_copy(tmp_path, tmp_path_factory)


def _run_dir(ws: Workspace) -> str:
    return os.path.join(ws.runs_dir, "tiny")


def _latest(ws: Workspace) -> str:
    return layout.latest_checkpoint(_run_dir(ws))


def _pairs(tmp_path, n: int = 5, bad_line: int | None = None) -> tuple[str, list[str]]:
    refs = ["abc", "cba", "dog", "xyz", "mnop", "tea", "cup", "one", "two", "red"] * 10
    lines = [json.dumps({"prompt": f"copy: {r}|", "reference": r}) for r in refs[:n]]
    if bad_line is not None:
        lines[bad_line - 1] = '{"prompt": "copy: abc|"}'
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path), refs[:n]


def _evaluate(qtbot, dialog, file: str, **options):
    dialog.file.setText(file)
    for name, value in options.items():
        widget = getattr(dialog, name)
        widget.setChecked(value) if isinstance(value, bool) else widget.setValue(value)
    with qtbot.waitSignal(dialog.job.finished, timeout=WAIT_MS) as blocker:
        qtbot.mouseClick(dialog.evaluate_button, Qt.MouseButton.LeftButton)
    return blocker.args[0]


def _open_dialog(qtbot, ws: Workspace):
    """The window on the tiny run, and Run → Evaluate Checkpoint… opened from its menu."""
    w = open_window(qtbot, ws.root)
    select_run(w, "tiny")
    run_menu = next(a.menu() for a in w.menuBar().actions() if a.text() == "&Run")
    next(a for a in run_menu.actions() if a.text() == "E&valuate Checkpoint…").trigger()
    return w, w.run_actions.evaluate.dialog


def _runs_row(w, run_dir: str) -> dict:
    item = w.runs_panel._items[run_dir]
    header = w.runs_panel.tree.headerItem()
    return {header.text(c): (item.text(c), w.runs_panel.tree.isColumnHidden(c))
            for c in range(w.runs_panel.tree.columnCount())}


def test_text_evaluation_shows_the_engines_perplexity_in_dialog_results_and_runs_table(qtbot, ws, tmp_path):
    text = tmp_path / "held-out.txt"
    text.write_text("".join(f"add: {i}+{2 * i}={3 * i}\ncopy: abc{i}|abc{i}\n" for i in range(60)), encoding="utf-8")
    from studio.workspace import annotations

    annotations.annotate(_run_dir(ws), tags=["baseline", "first-try"])  # a wide name column, as in use
    w = open_window(qtbot, ws.root, size=(1360, 860))
    select_run(w, "tiny")
    assert _runs_row(w, _run_dir(ws))["Eval ppl"][1]  # no evaluation yet: the column stays hidden
    menu = w.runs_panel.context_menu(_run_dir(ws))
    next(a for a in menu.actions() if a.text() == "Evaluate…").trigger()  # the runs list's right-click menu
    dialog = w.run_actions.evaluate.dialog
    assert dialog is not None and dialog.isVisible()
    assert dialog.picker.checkpoint() == _latest(ws) and dialog.kind.currentData() == "split"  # no example text
    assert dialog.file.text() == os.path.join(ws.data_dir, "demo") and dialog.file_label.text() == "Data set"
    assert not dialog.max_new.isEnabled()  # pairs-only options are off for a text file
    result = _evaluate(qtbot, dialog, str(text))
    assert result.ok, result.failure
    cli = subprocess.run([sys.executable, "-m", "core", "eval", "--checkpoint", _latest(ws), "--text", str(text),
                          "--json"], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1"})
    assert cli.returncode == 0, cli.stderr
    ppl = json.loads(cli.stdout)["perplexity"]
    assert result.evaluation.figures["perplexity"] == pytest.approx(ppl, rel=1e-6)
    assert f"perplexity {ppl:.4g}" in dialog.status.text() and "Saved as step-000040/eval/" in dialog.status.text()
    assert layout.list_evaluations(_latest(ws)) == [result.evaluation.path]
    assert dialog.picker.checkpoints()[:2] == [_latest(ws), layout.list_checkpoints(_run_dir(ws))[0][1]]

    view = w.run_actions.evaluate.open_results(_run_dir(ws))
    assert view.list.rowCount() == 1 and view.list.item(0, 1).text() == "text"
    assert view.list.item(0, 3).text() == f"{ppl:.4g}" and view.pages.currentIndex() == 1
    assert f"perplexity {ppl:.4g}" in view.headline.text()
    text_shown, hidden = _runs_row(w, _run_dir(ws))["Eval ppl"]
    assert text_shown == f"{ppl:.4g}" and not hidden
    QApplication.processEvents()  # and in view: the list widened for it (its header showed an 'E')
    tree = w.runs_panel.tree
    assert tree.header().length() <= tree.viewport().width(), (tree.header().length(), tree.viewport().width())
    w2 = open_window(qtbot, ws.root, size=(1360, 860))  # also when the workspace opens with it
    QApplication.processEvents()
    tree = w2.runs_panel.tree
    assert not tree.isColumnHidden(5) and tree.header().length() <= tree.viewport().width()

    # text outside the character vocabulary (capitals): counted, and the figures say so
    shouty = tmp_path / "shouty.txt"
    shouty.write_text("ADD: 1+2=3\ncopy: abc|abc\n" * 20, encoding="utf-8")
    result = _evaluate(qtbot, dialog, str(shouty))
    assert result.ok, result.failure
    figures = result.evaluation.figures
    share = 100 * figures["unknown_tokens"] / (figures["tokens"] + 1)
    assert figures["unknown_tokens"] == 3 * 20 and f"({share:.1f}% unknown to its vocabulary)" in dialog.status.text()
    view = w.run_actions.evaluate.open_results(_run_dir(ws))
    rows = {view.text_figures.itemAt(r, view.text_figures.ItemRole.LabelRole).widget().text():
            view.text_figures.itemAt(r, view.text_figures.ItemRole.FieldRole).widget().text()
            for r in range(view.text_figures.rowCount())}
    assert rows["Unknown tokens"].startswith("60 (") and "outside the model's vocabulary" in rows["Unknown tokens"]
    view.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Close).click()
    assert not view.isVisible()


def test_pairs_evaluation_generations_beside_references_kept_across_reopening(qtbot, ws, tmp_path):
    pairs, refs = _pairs(tmp_path, n=5)
    w, dialog = _open_dialog(qtbot, ws)
    assert dialog.picker.checkpoint() == _latest(ws)
    steps = []
    dialog.job.progressed.connect(lambda stage, done, total: steps.append((stage, done, total)))
    result = _evaluate(qtbot, dialog, pairs, raw=True, max_new=6)
    assert dialog.kind.currentData() == "pairs"  # picked from the .jsonl name
    assert result.ok, result.failure
    assert steps and steps[-1] == ("pairs", 5, 5)
    e = result.evaluation
    assert set(e.figures) == {"bleu", "rouge_l", "exact_match", "n"} and e.figures["n"] == 5
    assert e.options == {"max_new_tokens": 6, "raw": True, "temperature": 0.0, "seed": 0}
    assert f"BLEU {e.figures['bleu']:.1f}" in dialog.status.text() and "exact match" in dialog.status.text()

    qtbot.mouseClick(dialog.results_button, Qt.MouseButton.LeftButton)
    view = w.run_actions.evaluate.results
    assert view.isVisible() and view.pages.currentIndex() == 0
    room = view.screen().availableGeometry()  # 1000 x 680 ran off a 1280 x 720 screen (its Close button)
    assert view.width() <= room.width() - 40 and view.height() <= room.height() - 80, (view.size(), room)
    # exact match reads as a percentage in the list, as in the headline ("exact match 40%")
    assert float(view.list.item(0, 7).text()) == round(100 * e.figures["exact_match"], 1)
    assert view.list.horizontalHeaderItem(7).text() == "Exact %"
    assert view.generations.rowCount() == 5 and view.column_texts("Reference") == refs
    assert view.column_texts("Prompt") == [f"copy: {r}|" for r in refs]
    gens = [g.generation for g in e.generations]
    assert all(len(g) > 0 for g in gens)  # answers were generated (max 6 new tokens each)
    view.generations.sortItems(3, Qt.SortOrder.DescendingOrder)  # by generation, as a header click would
    assert view.column_texts("Generation") == sorted(view.column_texts("Generation"), reverse=True)
    view.generations.selectRow(2)
    shown = view.generation_at(2)
    assert view.column_texts("Reference")[2] == shown.reference
    assert shown.generation in view.detail.toPlainText() and f"Reference:\n{shown.reference}" in \
        view.detail.toPlainText()
    assert view.column_texts("Exact") == ["yes" if g.generation.strip() == g.reference.strip() else "no"
                                          for g in (view.generation_at(r) for r in range(5))]
    w.close()

    w2 = open_window(qtbot, ws.root)  # a fresh window reads what the engine kept in the checkpoint
    row = _runs_row(w2, _run_dir(ws))
    assert row["BLEU"] == (f"{e.figures['bleu']:.1f}", False) and row["Eval ppl"][0] == "–"
    again = w2.run_actions.evaluate.open_results(_run_dir(ws))
    assert [x.path for x in again.evaluations] == [e.path] and again.generations.rowCount() == 5
    table = w2.run_actions.compare([_run_dir(ws)])
    assert table.width() <= room.width() - 40  # 980 px wide on a screen of any width
    assert table.column_values("eval_bleu") == [format_value(e.figures["bleu"])]
    assert table.column_values("eval_exact_match") == [format_value(e.figures["exact_match"])]
    assert table.column_values("eval_step") == ["40"]


def test_a_bad_pairs_line_is_named_by_file_and_line_and_nothing_is_kept(qtbot, ws, tmp_path):
    pairs, _refs = _pairs(tmp_path, n=4, bad_line=3)
    w = open_window(qtbot, ws.root)
    dialog = w.run_actions.evaluate.open_dialog(_run_dir(ws))
    result = _evaluate(qtbot, dialog, pairs)
    assert result.status == "failed"
    assert f"{pairs}:3:" in result.failure.headline and f"{pairs}:3:" in dialog.status.text()
    assert "Traceback" not in dialog.status.text() and dialog.evaluate_button.isEnabled()
    assert layout.list_evaluations(_latest(ws)) == []


def test_cancel_stops_the_engine_and_keeps_nothing(qtbot, ws, tmp_path):
    pairs, _refs = _pairs(tmp_path, n=100)
    w = open_window(qtbot, ws.root)
    dialog = w.run_actions.evaluate.open_dialog(_run_dir(ws))
    dialog.file.setText(pairs)
    dialog.max_new.setValue(256)
    with qtbot.waitSignal(dialog.job.progressed, timeout=WAIT_MS):
        assert dialog.start_evaluation()
    assert dialog.progress.maximum() == 100 and "Cancel" in [b.text() for b in dialog.buttons.buttons()]
    with qtbot.waitSignal(dialog.job.finished, timeout=WAIT_MS) as blocker:
        dialog.buttons.rejected.emit()  # the Cancel button while the engine works
    assert blocker.args[0].status == "cancelled" and "cancelled" in dialog.status.text()
    assert layout.list_evaluations(_latest(ws)) == [] and dialog.isVisible()


def test_saved_results_are_read_safely_and_the_newest_of_each_kind_is_shown(tmp_path):
    """Qt-free reader: damaged or foreign files in eval/ are left out; the run list takes the newest text and
    pairs results of the latest checkpoint only; a file changed on disk is read again."""
    from studio.workspace.evaluations import checkpoint_evaluations, run_figures
    from tests.studio.helpers import write_checkpoint

    run = str(tmp_path / "run")
    old, new = write_checkpoint(run, 10), write_checkpoint(run, 20)

    def save(ckpt, when, **fields):
        path = layout.evaluation_path(ckpt, fields["kind"], "/data/f.txt", when)
        layout.atomic_write_json(path, {"created": when, "step": layout.checkpoint_step(ckpt), "file": "/data/f.txt",
                                        **fields})
        return path

    save(old, 100.0, kind="text", perplexity=2.0)                      # an older checkpoint: not shown
    save(new, 100.0, kind="text", perplexity=9.0, bits_per_byte=3.0)
    newest_text = save(new, 200.0, kind="text", perplexity=4.0, bits_per_byte=2.0)
    pairs = save(new, 150.0, kind="pairs", bleu=12.5, rouge_l=0.5, exact_match=0.25, n=4,
                 generations=[{"prompt": "p", "reference": "r", "generation": "r "}])
    os.makedirs(os.path.join(new, layout.EVALS), exist_ok=True)
    with open(os.path.join(new, layout.EVALS, "19990101-000000-text-broken.json"), "w") as fh:
        fh.write("{not json")
    layout.atomic_write_json(os.path.join(new, layout.EVALS, "19990101-000001-pairs-odd.json"),
                             {"kind": "pairs", "generations": "not a list"})
    layout.atomic_write_json(os.path.join(new, layout.EVALS, "notes.json"), {"kind": "text"})
    found = checkpoint_evaluations(new)
    assert [e.path for e in found] == [newest_text, pairs, found[2].path] and len(found) == 3
    assert found[1].generations[0].exact and found[1].headline().startswith("BLEU 12.5")
    figures = run_figures(run)
    assert figures["eval_perplexity"] == 4.0 and figures["eval_bits_per_byte"] == 2.0
    assert figures["eval_bleu"] == 12.5 and figures["eval_exact_match"] == 0.25 and figures["eval_step"] == 20
    assert "f.txt" in figures["eval_tip"]
    layout.atomic_write_json(newest_text, {"kind": "text", "created": 200.0, "perplexity": 5.5})
    assert run_figures(run)["eval_perplexity"] == 5.5  # re-read, not a stale cache
    assert run_figures(str(tmp_path / "none"))["eval_bleu"] is None


def test_pairs_on_a_base_model_say_why_its_answers_will_miss(qtbot, ws, tmp_path):
    """Pairs picked for a base model (no chat template): every answer of the demo scored 0 with no word
    why. The dialog says its prompts go in an instruction format it has never seen, until Raw prompts is
    ticked; a model with a chat template (a fine-tune) gets no note, nor does a text evaluation."""
    pairs, _refs = _pairs(tmp_path, n=3)
    w, dialog = _open_dialog(qtbot, ws)
    assert dialog.kind.currentData() == "split" and not dialog.prompt_note.isVisible()  # no example text here
    dialog.file.setText(pairs)
    assert dialog.kind.currentData() == "pairs"
    assert dialog.prompt_note.isVisible() and "no chat template" in dialog.prompt_note.text()
    QApplication.processEvents()  # the dialog grew for the note: all of its lines show
    note = dialog.prompt_note
    assert note.height() >= note.heightForWidth(note.width()) and note.geometry().bottom() < dialog.status.y()
    dialog.raw.setChecked(True)
    assert not dialog.prompt_note.isVisible()
    dialog.raw.setChecked(False)
    assert dialog.prompt_note.isVisible()

    meta_path = os.path.join(_latest(ws), layout.META)  # the same checkpoint as an instruction fine-tune
    with open(meta_path, encoding="utf-8") as f:
        meta = json.load(f)
    meta["chat_template"] = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    layout.atomic_write_json(meta_path, meta)
    dialog.raw.setChecked(True)  # any change of the options reads the checkpoint again
    dialog.raw.setChecked(False)
    assert not dialog.prompt_note.isVisible()
    w.close()


def test_a_run_is_evaluated_on_its_own_validation_split_by_default(qtbot, ws):
    """A Shakespeare run's Evaluate… offered the demo's held-out text (or nothing): a run whose data set is not
    the demo's gets its data set's validation split, scored whole by the engine (`eval --data`); the demo's
    runs keep the held-out text written for them."""
    w, dialog = _open_dialog(qtbot, ws)
    data = os.path.join(ws.data_dir, "demo")
    assert dialog.kind.currentData() == "split" and dialog.file.text() == data
    result = _evaluate(qtbot, dialog, data)
    assert result.ok, result.failure
    cli = subprocess.run([sys.executable, "-m", "core", "eval", "--checkpoint", _latest(ws), "--data", data,
                          "--json"], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1"})
    assert cli.returncode == 0, cli.stderr
    assert result.evaluation.figures["loss"] == pytest.approx(json.loads(cli.stdout)["loss"], rel=1e-6)
    assert result.evaluation.file_name() == "demo (validation split)" and "perplexity" in dialog.status.text()
    view = w.run_actions.evaluate.open_results(_run_dir(ws))
    assert view.list.item(0, 2).text() == "demo (validation split)"
    dialog.kind.setCurrentIndex(dialog.kind.findData("text"))  # the file the dialog filled in gives way
    assert dialog.file.text() == "" and dialog.file_label.text() == "File"
    held_out = os.path.join(ws.root, "examples", "held-out.txt")  # a workspace with the demo's examples
    os.makedirs(os.path.dirname(held_out))
    with open(held_out, "w", encoding="utf-8") as fh:
        fh.write("copy: abc|abc\n")
    _w, again = _open_dialog(qtbot, ws)
    assert again.kind.currentData() == "text" and again.file.text() == held_out
