"""UI event-loop latency while a run streams 200 events/s into the main window (aim p99 < 30 ms).

    python benchmarks/studio_latency.py [--seconds 10] [--rate 200]

Uses the scripted fake engine (tests/studio/fake_engine.py) so the event rate is exact. A 10 ms QTimer
measures how late the event loop serves it while the window follows, plots and logs the run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from studio_common import ROOT, window_following, workspace_with_data


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--rate", type=float, default=200.0)
    args = p.parse_args()
    ws = workspace_with_data()
    steps = int(args.seconds * args.rate)
    os.environ["LLM_STUDIO_ENGINE"] = f"{sys.executable} {os.path.join(ROOT, 'tests', 'studio', 'fake_engine.py')}"
    os.environ["FAKE_ENGINE_EVENTS_PER_S"] = str(args.rate)
    from PySide6.QtCore import QElapsedTimer, QTimer

    from studio.app import create_application

    app = create_application(theme="light")
    run = ws.create_run("latency", f"""\
model: {{n_layer: 2, n_head: 2, n_embd: 32, block_size: 32}}
data: {{dir: ../../data/demo}}
train: {{max_steps: {steps}, eval_interval: 50, checkpoint_interval: 0, warmup_steps: 10}}
run: {{dir: .}}
""")
    w = window_following(ws, run)
    ctl = w.controller()
    lateness: list[float] = []
    clock = QElapsedTimer()
    interval = 10
    timer = QTimer()
    timer.setTimerType(timer.timerType().PreciseTimer)
    expected = [0.0]

    def tick() -> None:
        now = clock.nsecsElapsed() / 1e6
        if expected[0]:
            lateness.append(max(0.0, now - expected[0]))
        expected[0] = now + interval

    timer.timeout.connect(tick)
    assert w.start_training(), ctl.start_problems()
    clock.start()
    timer.start(interval)
    t0 = time.time()
    while ctl.is_running() and time.time() - t0 < args.seconds * 3 + 10:
        app.processEvents()
        time.sleep(0.001)
    timer.stop()
    n = len(ctl.history.steps)
    w.close()
    lateness.sort()
    p = lambda q: lateness[min(len(lateness) - 1, int(q * len(lateness)))]  # noqa: E731
    print(f"{n} step events at {args.rate:.0f}/s (+ evals) followed live; {w.training.plots.redraws} redraws")
    print(f"event-loop latency (10 ms timer lateness): p50 {p(0.5):.1f} ms, p99 {p(0.99):.1f} ms, "
          f"max {lateness[-1]:.1f} ms, mean {statistics.mean(lateness):.1f} ms (aim p99 < 30 ms)")


if __name__ == "__main__":
    main()
