"""Import time and peak memory: `llm-train import` of a random-weight Llama-shaped HF folder (135M parameters
by default, stored in fp32), run as its own process so its peak RSS is its own.

    python benchmarks/interop_import.py            # 135M
    python benchmarks/interop_import.py --layers 12

Peak RSS is compared with the size of one copy of the weights: import streams tensor by tensor, so the peak
should sit near one copy (the memory-mapped source pages) plus the interpreter and torch.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

ROOT = __file__.rsplit("/benchmarks/", 1)[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=30)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        # Built in a child: Linux carries a parent's peak RSS into its forked children's ru_maxrss, so this
        # process stays small (no torch, no model) and the import's own peak is what gets measured.
        build = (f"import sys; sys.path.insert(0, {os.path.dirname(__file__)!r}); from interop_common import "
                 f"make_hf_folder; print(make_hf_folder({os.path.join(tmp, 'hf')!r}, num_hidden_layers={a.layers}))")
        n = int(subprocess.run([sys.executable, "-c", build], cwd=ROOT, capture_output=True, text=True,
                               check=True).stdout.split()[-1])
        weights = os.path.getsize(os.path.join(tmp, "hf", "model.safetensors"))
        t0 = time.perf_counter()
        run = (f"import resource, sys; from core.cli import main; rc = main(['import', {os.path.join(tmp, 'hf')!r}, "
               f"'--out', {os.path.join(tmp, 'imp')!r}]); print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); "
               f"sys.exit(rc)")
        proc = subprocess.run([sys.executable, "-c", run], cwd=ROOT, capture_output=True, text=True)
        elapsed = time.perf_counter() - t0
        if proc.returncode:
            sys.exit(proc.stderr)
        peak = int(proc.stdout.split()[-1]) * 1024  # Linux: KiB; this process's own peak
        probe = "import resource, torch, safetensors, core.model; print(resource.getrusage(0).ru_maxrss)"
        base = int(subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                                  text=True).stdout) * 1024
    print(f"parameters           {n / 1e6:.1f}M ({weights / 2**20:.0f} MiB of fp32 safetensors)")
    print(f"import time          {elapsed:.1f} s (process start and imports included)")
    print(f"import peak RSS      {peak / 2**20:.0f} MiB = {peak / weights:.2f} x the weights")
    print(f"of which the runtime  {base / 2**20:.0f} MiB (a process that only imports torch and the model "
          f"code); the rest {(peak - base) / weights:.2f} x the weights")


if __name__ == "__main__":
    main()
