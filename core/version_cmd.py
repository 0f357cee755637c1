"""`llm-train version [--json]`: what this engine is built from (its version, Python, torch, CUDA).

The studio never imports torch, so its About dialog asks the engine through this subcommand (it runs
`llm-train version --json` as a subprocess and reads one JSON object from stdout). From a desktop bundle
it tells whether the bundled torch is the CPU or the CUDA build and which GPUs it sees.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys


def version_info() -> dict:
    """The engine's versions and accelerators, as plain JSON-able values."""
    import torch

    import core

    cuda_ok = bool(torch.cuda.is_available())
    mps = getattr(torch.backends, "mps", None)
    return {
        "version": core.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        # None on a CPU-only build of torch; the CUDA toolkit version torch was built with otherwise.
        "cuda": torch.version.cuda,
        "cuda_available": cuda_ok,
        "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda_ok else [],
        "mps_available": bool(mps is not None and mps.is_available()),
        "frozen": bool(getattr(sys, "frozen", False)),
        "executable": sys.executable,
        "platform": platform.platform(),
    }


def add_parser(sub) -> None:
    """Register the `version` subcommand on llm-train's subparsers."""
    pv = sub.add_parser("version", help="print the engine's version and its torch/CUDA build")
    pv.add_argument("--json", action="store_true", help="one JSON object on stdout (what the studio reads)")


def version_main(args: argparse.Namespace) -> int:
    info = version_info()
    if args.json:
        print(json.dumps(info), flush=True)
        return 0
    build = f"CUDA {info['cuda']}" if info["cuda"] else "CPU"
    gpus = ", ".join(info["gpus"]) or ("Apple MPS" if info["mps_available"] else "none")
    print(f"llm-train {info['version']} (Python {info['python']}, torch {info['torch']}, {build} build; "
          f"GPUs: {gpus}){' [bundle]' if info['frozen'] else ''}")
    return 0
