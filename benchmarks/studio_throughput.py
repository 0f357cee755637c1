"""Engine tokens/s with the studio attached and plotting vs the same run headless (aim >= 0.98).

    python benchmarks/studio_throughput.py [--steps 300] [--repeats 2]

Both runs use the real engine on the same config (4 layers, 128 wide, T=64, B=16, CPU). The studio run is
launched from a MainWindow (offscreen) that follows and plots it live. The figure is the median of the
engine's own tokens_per_s over steps after the first 20 (warm-up), interleaved headless/studio runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

from studio_common import BENCH_CONFIG, ROOT, window_following, workspace_with_data


def median_tps(metrics: str) -> float:
    from core.protocol import as_float, read_events

    vals = [as_float(e.get("tokens_per_s")) for e in read_events(metrics) if e.get("event") == "step"]
    return statistics.median(vals[20:])


def headless(ws, name: str, steps: int) -> float:
    run = ws.create_run(name, BENCH_CONFIG.format(steps=steps))
    env = dict(os.environ, PYTHONPATH=ROOT)
    subprocess.run([sys.executable, "-m", "core", "train", "--config", run.config_path, "--events"], check=True,
                   env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=run.dir)
    return median_tps(run.metrics_path)


def with_studio(ws, name: str, steps: int) -> tuple[float, int, float]:
    from PySide6.QtCore import QEventLoop

    run = ws.create_run(name, BENCH_CONFIG.format(steps=steps))
    w = window_following(ws, run)
    ctl = w.controller()
    loop = QEventLoop()
    ctl.run_finished.connect(lambda *_: loop.quit())
    assert w.start_training(), ctl.start_problems()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    loop.exec()  # a real event loop: idles between events like the app does
    gui_share = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
    redraws = w.training.plots.redraws
    w.close()
    return median_tps(run.metrics_path), redraws, gui_share


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()
    ws = workspace_with_data()
    ratios = []
    for i in range(args.repeats):
        h = headless(ws, f"headless-{i}", args.steps)
        s, redraws, gui_share = with_studio(ws, f"studio-{i}", args.steps)
        ratios.append(s / h)
        print(f"repeat {i}: headless {h:,.0f} tok/s, studio attached {s:,.0f} tok/s "
              f"({redraws} redraws, GUI thread {gui_share:.1%} of a core) -> ratio {s / h:.3f}", flush=True)
    print(f"tokens/s with studio / headless: median ratio {statistics.median(ratios):.3f} (aim >= 0.98)")


if __name__ == "__main__":
    main()
