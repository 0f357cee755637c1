"""Issue 9, Generate and Attention as a new user meets them: the step slider never collapses, the tab
opens with a hint instead of empty axes, the pickers preselect the selected run's latest checkpoint and
list newest first, the step controls show for the snapshots source only, the default texts use only the
demo corpus's characters, and the two Generate panes are equally wide."""

from __future__ import annotations

import os

import pytest
from PySide6.QtWidgets import QApplication

from studio import demo
from tests.studio.helpers import write_finished_run


@pytest.fixture
def window(window):
    """The default window size (1360 x 860) unless a test asks for another."""
    return lambda workspace_root=None, size=(1360, 860): window(workspace_root, size=size)


def _two_runs(workspace) -> tuple[str, str]:
    dirs = []
    for name in ("a", "b"):
        run = workspace.create_run(name, workspace.run("tiny").read_config_text())
        write_finished_run(run.dir, steps=100)  # checkpoints at steps 50 and 100
        dirs.append(run.dir)
    return dirs[0], dirs[1]


def _ck(run_dir: str, step: int) -> str:
    return os.path.join(run_dir, "checkpoints", f"step-{step:06d}")


@pytest.mark.parametrize("size", [(1360, 860), (1280, 800)])
def test_attention_opens_with_a_hint_and_its_step_slider_never_collapses(qtbot, window, workspace, size):
    _two_runs(workspace)
    w = window(workspace.root, size)
    assert (w.width(), w.height()) == size
    w.show_tab("attention")
    att = w.attention
    QApplication.processEvents()
    assert att.stack.currentWidget() is att.empty and att.empty.isVisible()  # no -500..500 axes
    assert not att.heatmap.isVisible()
    assert not att.step_row.isVisible() and not att.slider.isVisible()  # Source: "This text"
    att.source.setCurrentIndex(1)  # the run's training snapshots
    QApplication.processEvents()
    assert att.step_row.isVisible() and att.slider.width() >= 200
    att.source.setCurrentIndex(0)
    QApplication.processEvents()
    assert not att.step_row.isVisible()


def test_pickers_preselect_the_selected_runs_latest_checkpoint_newest_first(qtbot, window, workspace):
    a, b = _two_runs(workspace)
    w = window(workspace.root)
    w.runs_panel.select_run(b)
    gen, att = w.generation.sides["A"].picker, w.attention.picker
    for picker in (gen, att):
        assert picker.checkpoint() == _ck(b, 100)
        assert picker.checkpoints()[:4] == [_ck(b, 100), _ck(b, 50), _ck(a, 100), _ck(a, 50)]
        assert picker.combo.itemText(0) == "b · step 100"
    assert "b · step 100" in w.generation.sides["A"].header.text()
    w.runs_panel.select_run(a)  # nothing chosen by hand: the pickers follow the selection
    assert gen.checkpoint() == _ck(a, 100) and att.checkpoint() == _ck(a, 100)
    index = gen.combo.findData(_ck(b, 50))
    gen.combo.setCurrentIndex(index)
    gen.combo.activated.emit(index)  # the user picks one: selecting runs leaves it alone
    w.runs_panel.select_run(b)
    assert gen.checkpoint() == _ck(b, 50) and att.checkpoint() == _ck(b, 100)


def test_a_checkpoint_written_later_is_offered_without_opening_the_list(qtbot, window, workspace):
    w = window(workspace.root)
    tiny = workspace.run("tiny").dir
    w.runs_panel.select_run(tiny)
    picker = w.generation.sides["A"].picker
    assert picker.checkpoint() == ""  # "no checkpoint yet" is true now
    write_finished_run(tiny, steps=50)  # the run writes its first checkpoint
    w.session.run_updated.emit(tiny)
    assert picker.checkpoint() == _ck(tiny, 50) and w.attention.picker.checkpoint() == _ck(tiny, 50)


def test_default_texts_use_only_the_demo_corpus_characters(tmp_path):
    from core.config import loads
    from core.corpora import synthetic_text
    from studio.views.attention import panel

    DEFAULT_TEXT = panel.DEFAULT_TEXT  # noqa: N806 (the panel's first text)

    corpus = set(synthetic_text(1337, 0) + synthetic_text(1337, 1))
    probe = loads(demo.tiny_config_text(), base_dir=str(tmp_path)).run.attention_probe
    assert set(probe) <= corpus, set(probe) - corpus
    assert set(DEFAULT_TEXT) <= corpus, set(DEFAULT_TEXT) - corpus


def test_side_by_side_generate_panes_are_equally_wide(qtbot, window, workspace):
    w = window(workspace.root)
    w.show_tab("generate")
    QApplication.processEvents()
    w.generation.compare.setChecked(True)
    QApplication.processEvents()
    left, right = (w.generation.outputs.widget(i).width() for i in range(2))
    assert right > 100 and abs(left - right) <= 2


def test_training_and_generation_share_the_cores_and_say_so(qtbot, window, workspace, fake_engine, monkeypatch,
                                                           tmp_path):
    """On 2 cores a run takes both while nothing else computes (it kept one idle for the window: half the
    speed), with sleeping OpenMP threads (--share-cores), and gives one back, through its control.json, while a
    generation request is in flight; a one-shot job started meanwhile gets one sleeping thread. From 4 cores
    one core stays free and nothing changes while generating."""
    import json

    from core import layout
    from studio.controllers import cores
    from studio.controllers.export_job import ExportJob, ExportRequest
    from studio.controllers.generation import share_cores

    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(cores, "IDLE_MS", 600)
    fake_engine("normal", hold_at=3)
    w = window(workspace.root)
    w.runs_panel.select_run(workspace.run("tiny").dir)
    assert w.inference_pool.threads == 0 and "no run is training" in w.generation.cores_label.text()
    ctl = w.controller()
    assert w.start_training()
    argv = ctl.job.argv
    assert argv[argv.index("--threads") + 1] == "2" and "--share-cores" in argv  # nothing else computes: both
    qtbot.waitUntil(lambda: ctl.is_running() and w.inference_pool.threads == 1, timeout=5000)
    assert "1 run training on 2 threads; generation takes 1" in w.generation.cores_label.text()
    control = os.path.join(ctl.run.dir, layout.CONTROL_JSON)
    worker = w.inference_pool.acquire(_ck(workspace.run("tiny").dir, 50))
    assert worker.threads == 1  # a worker started now gets --threads 1
    monkeypatch.setattr(worker, "busy", lambda: True)  # a generation in flight...
    w.inference_pool.request_sent.emit()
    assert json.load(open(control)) == {"threads": 1}  # ...and the run gives a core back at once
    assert "on 1 thread (1 core given to generation" in w.generation.cores_label.text()
    qtbot.wait(900)
    assert json.load(open(control)) == {"threads": 1}  # still busy: kept
    monkeypatch.setattr(worker, "busy", lambda: False)
    qtbot.waitUntil(lambda: json.load(open(control)) == {"threads": 2}, timeout=3000)  # quiet: taken back
    w.inference_pool.release(worker)
    for name in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT"):  # no wait policy of the user's own here
        monkeypatch.delenv(name, raising=False)
    job = ExportJob()  # a one-shot job (export, prepare, evaluate, import) beside the run: one sleeping thread
    with qtbot.waitSignal(job.finished, timeout=15000):
        job.start(ExportRequest(str(tmp_path / "ckpt"), "hf", str(tmp_path / "out")))
    env = job.process._proc.processEnvironment()
    assert [env.value(k) for k in ("OMP_NUM_THREADS", "RAYON_NUM_THREADS", "OMP_WAIT_POLICY")] == ["1", "1", "PASSIVE"]
    with qtbot.waitSignal(ctl.run_finished, timeout=15000):
        w.stop_training()
    assert w.inference_pool.threads == 0 and "no run is training" in w.generation.cores_label.text()
    with qtbot.waitSignal(job.finished, timeout=15000):
        job.start(ExportRequest(str(tmp_path / "ckpt"), "hf", str(tmp_path / "out")))
    assert job.process._proc.processEnvironment().value("RAYON_NUM_THREADS", "") == ""  # alone: every core
    assert share_cores(2, 1) == {**share_cores(2, 1), "train": 2, "share": True}
    assert share_cores(2, 1, inference_busy=True)["train"] == 1 and share_cores(2, 2)["train"] == 1
    assert share_cores(4, 1) == {**share_cores(4, 1), "train": 3, "share": False}  # one core stays free...
    assert share_cores(4, 1, True)["train"] == 3 and share_cores(8, 2)["train"] == 3  # ...busy or not
    assert share_cores(1, 1, True)["train"] == 1
