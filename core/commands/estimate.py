"""`llm-train estimate`: parameter count, FLOPs and memory of a run config, as JSON (no torch needed)."""

from __future__ import annotations

import argparse
import json

from core.errors import EXIT_OK


def estimate_main(args: argparse.Namespace) -> int:
    from core.config import estimate, load_config

    print(json.dumps(estimate(load_config(args.config, args.set)), indent=2))  # ConfigError is a UsageError
    return EXIT_OK
