"""Helpers for studio tests: write a past run's files, checkpoints and data folders without an engine.

Everything is named and shaped through core.layout (step_dir_name, META, WEIGHTS, DATA_META, ...), so
a fixture is exactly what the engine writes and the same validity rules accept it.
"""

from __future__ import annotations

import math
import os

from core import layout
from core.protocol import encode, make_event

DATA_FORMAT = 1  # core.data.FORMAT (not imported: core.data pulls in the tokenizer stack)


def write_data_dir(path: str, **meta) -> str:
    """A prepared data folder as `llm-train prepare` leaves it (meta.json last), tiny splits."""
    os.makedirs(path, exist_ok=True)
    for split in layout.SPLITS:
        with open(os.path.join(path, f"{split}.bin"), "wb") as fh:
            fh.write(b"\0" * 64)
    layout.atomic_write_json(os.path.join(path, layout.DATA_META),
                             {"format": DATA_FORMAT, "vocab_size": 65, "tokenizer": "char", "dtype": "uint16",
                              "train_tokens": 32, "val_tokens": 32, **meta})
    return path


def write_checkpoint(run_dir: str, step: int) -> str:
    """RUN_DIR/checkpoints/step-NNNNNN with (empty) weights and state and its meta.json written last."""
    path = os.path.join(run_dir, layout.CHECKPOINTS, layout.step_dir_name(step))
    os.makedirs(path, exist_ok=True)
    for name in (layout.WEIGHTS, layout.STATE):
        with open(os.path.join(path, name), "wb") as fh:
            fh.write(b"")
    layout.atomic_write_json(os.path.join(path, layout.META), {"format": 1, "step": step})
    return path


def write_checkpoint_with_model(run_dir: str, step: int, model: dict) -> str:
    """write_checkpoint() whose meta.json records the model section the engine checks a fork against."""
    path = write_checkpoint(run_dir, step)
    layout.atomic_write_json(os.path.join(path, layout.META), {"format": 1, "step": step,
                                                               "config": {"model": model}})
    return path


def write_finished_run(run_dir: str, steps: int = 100, status: str = "done", eval_every: int = 10,
                       ckpt_every: int = 50) -> None:
    """metrics.jsonl (+ checkpoints) of a run that ran `steps` steps and closed with `status`."""
    lines = [make_event("start", max_steps=steps, start_step=0, resumed=False,
                        config={"train": {"grad_clip": 1.0, "max_steps": steps}})]
    for s in range(1, steps + 1):
        loss = 3.0 * math.exp(-s / 40) + 1.0
        lines.append(make_event("step", step=s, tokens=256 * s, loss=loss, lr=1e-3, grad_norm=0.8 + 0.3 * (s % 3),
                                clipped=False, tokens_per_s=20000.0, elapsed_s=0.05 * s, step_ms=50.0))
        if s % eval_every == 0:
            lines.append(make_event("eval", step=s, tokens=256 * s, train_loss=loss, val_loss=loss + 0.1,
                                    val_ppl=math.exp(loss + 0.1), best_val_loss=loss + 0.1))
        if s % ckpt_every == 0:
            lines.append(make_event("checkpoint", step=s, path=write_checkpoint(run_dir, s)))
    if status == "done":
        lines.append(make_event("done", step=steps, checkpoint="", best_val_loss=1.0))
    elif status == "stopped":
        lines.append(make_event("stopped", step=steps, reason="requested", checkpoint=""))
    elif status == "failed":
        lines.append(make_event("error", kind="runtime", message="simulated failure", step=steps))
    layout.atomic_write(os.path.join(run_dir, layout.METRICS), "".join(encode(e) for e in lines))


def open_window(qtbot, workspace_root: str | None = None, *, close_policy: str = "stop",
                size: tuple[int, int] | str = "default"):
    """A shown MainWindow with every panel built, sized and optionally opened on a workspace; the close
    question is answered with `close_policy` ("stop" | "leave"). `size`: "default" is the studio's default
    size whatever the test screen's size (a first start fits it to the screen), "restored" keeps the size
    the window restored from its settings."""
    from studio.main_window import MainWindow
    from studio.settings import Settings
    from studio.window_state import DEFAULT_SIZE

    w = MainWindow(Settings())
    w.close_policy = close_policy
    qtbot.addWidget(w)
    if size != "restored":
        w.resize(*(DEFAULT_SIZE if size == "default" else size))
    w.show()
    w.ensure_panels()
    if workspace_root:
        w.open_workspace(workspace_root)
    return w


def select_run(w, name: str) -> None:
    """Select the workspace's run `name` in the runs list, as a click would."""
    w.runs_panel.select_run(os.path.join(w.session.workspace.runs_dir, name))


def axis_text_specs(axis) -> list:
    """The tick labels a pyqtgraph axis would draw now: (rect, flags, text) each, from its own draw specs."""
    from PySide6.QtGui import QImage, QPainter

    image = QImage(800, 400, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        return list(axis.generateDrawSpecs(painter)[2])
    finally:
        painter.end()
