"""Shared set-up for the studio benchmarks: a temp workspace with demo data and a run config."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

BENCH_CONFIG = """\
model: {{n_layer: 4, n_head: 4, n_embd: 128, block_size: 64}}
data: {{dir: ../../data/demo}}
train: {{batch_size: 16, max_steps: {steps}, eval_interval: 100, eval_steps: 4, checkpoint_interval: 0,
        warmup_steps: 10, device: cpu, lr: 1.0e-3, min_lr: 1.0e-4}}
run: {{dir: ., save_attention: false}}
"""


def workspace_with_data(tmp: str | None = None):
    from studio import demo
    from studio.workspace.workspace import Workspace

    tmp = tmp or tempfile.mkdtemp(prefix="studio-bench-")
    os.environ["LLM_STUDIO_SETTINGS"] = os.path.join(tmp, "settings.ini")
    ws = Workspace.create(os.path.join(tmp, "ws"))
    if not demo.demo_data_ready(ws):
        env = dict(os.environ, PYTHONPATH=ROOT)
        subprocess.run([sys.executable, "-m", "core", "prepare", *demo.prepare_args(ws)], check=True, env=env,
                       stdout=subprocess.DEVNULL)
    return ws


def window_following(ws, run):
    """A shown main window (1400x860, offscreen) on `ws` with `run` selected on the Training tab."""
    from studio.app import create_application
    from studio.main_window import MainWindow

    create_application(theme="light")
    w = MainWindow()
    w.close_policy = "stop"
    w.resize(1400, 860)
    w.show()
    w.ensure_panels()
    w.open_workspace(ws.root)
    w.runs_panel.select_run(run.dir)
    w.show_tab("training")
    return w
