"""The CLI layer of `llm-train`: one module per command turning parsed arguments into plain values and
calling the engine's libraries (core.data, core.train, core.generate, core.serve).

`core.cli` builds the parser and dispatches here; no `argparse.Namespace` goes further than this package.
Bad input is raised as `core.errors.UsageError` (exit code 2); `core.cli` prints it.
"""

from __future__ import annotations

import sys

from core.protocol import encode

DEVICE_HELP = "auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps (default: %(default)s)"  # --device


def emit(event: dict) -> None:
    """One JSON Lines event on stdout (--events)."""
    sys.stdout.write(encode(event))
    sys.stdout.flush()
