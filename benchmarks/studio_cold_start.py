"""Cold start: seconds from launching `llm-studio` to its first window shown (aim < 1 s).

    python benchmarks/studio_cold_start.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time

from studio_common import ROOT, workspace_with_data


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    ws = workspace_with_data()
    env = dict(os.environ, PYTHONPATH=ROOT, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"))
    spawn_to_show, import_to_show = [], []
    for _ in range(args.runs):
        t0 = time.time()
        out = subprocess.run([sys.executable, "-m", "studio", "--quit-after-show", ws.root], env=env,
                             capture_output=True, text=True, timeout=60, cwd=ROOT).stdout
        m = re.search(r"after ([0-9.]+) s \(at ([0-9.]+)\)", out)
        if not m:
            raise SystemExit(f"no timing in output: {out!r}")
        import_to_show.append(float(m.group(1)))
        spawn_to_show.append(float(m.group(2)) - t0)
    print(f"cold start, process spawn -> first window shown: median {statistics.median(spawn_to_show):.3f} s "
          f"(min {min(spawn_to_show):.3f}, max {max(spawn_to_show):.3f}, {args.runs} runs; aim < 1 s)")
    print(f"  of which studio import -> shown: median {statistics.median(import_to_show):.3f} s")


if __name__ == "__main__":
    main()
