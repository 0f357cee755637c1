"""`llm-train serve`: run the inference worker (core.serve) on one checkpoint until shutdown or end of input."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading

from core.commands import emit
from core.device import resolve_device
from core.errors import EXIT_BAD_INPUT, EXIT_OK, UsageError
from core.layout import resolve_checkpoint
from core.protocol import make_event


def _remove_dead_scratch() -> None:
    """Scratch folders of workers that were killed (kill -9 skips our cleanup): llm-serve-PID-* whose PID
    is gone."""
    root = tempfile.gettempdir()
    for name in os.listdir(root):
        parts = name.split("-")
        if name.startswith("llm-serve-") and len(parts) >= 4 and parts[2].isdigit():
            try:
                os.kill(int(parts[2]), 0)
            except ProcessLookupError:
                shutil.rmtree(os.path.join(root, name), ignore_errors=True)
            except (PermissionError, OverflowError):  # alive under another user, or no pid at all
                pass


def serve_main(args: argparse.Namespace) -> int:
    """See core.serve's docstring for the protocol."""
    from core.serve import Worker

    try:
        device = resolve_device(args.device)
    except UsageError as exc:  # said on the protocol too: the studio reads only stdout
        emit(make_event("error", id=None, kind="usage", message=str(exc)))
        raise
    own_scratch = args.scratch is None
    try:
        if own_scratch:
            _remove_dead_scratch()
        scratch = tempfile.mkdtemp(prefix=f"llm-serve-{os.getpid()}-") if own_scratch else args.scratch
        os.makedirs(scratch, exist_ok=True)
        if not os.access(scratch, os.W_OK):
            raise PermissionError(13, "read-only")
    except OSError as exc:  # said on the protocol too: the studio reads only stdout
        message = f"--scratch: cannot write in {args.scratch or tempfile.gettempdir()}: {exc.strerror or exc}"
        emit(make_event("error", id=None, kind="usage", message=message))
        raise UsageError(message) from None
    worker = Worker(device, scratch, dtype=args.dtype)
    try:
        try:
            info = worker.load(resolve_checkpoint(args.checkpoint, args.run))
        except Exception as exc:  # an unusable checkpoint: say so on the protocol, exit as bad input
            message = f"cannot load {args.checkpoint or args.run}: {exc}"
            worker.emit("error", id=None, kind="load", message=message)
            print(f"llm-train: error: {message}", file=sys.stderr)
            return EXIT_BAD_INPUT
        worker.emit("ready", scratch=scratch, **info)
        threading.Thread(target=worker.read_requests, args=(sys.stdin,), daemon=True,
                         name="serve-stdin").start()
        reason = worker.serve_forever()
        worker.emit("stopped", reason=reason)
        return EXIT_OK
    finally:
        if own_scratch:
            shutil.rmtree(scratch, ignore_errors=True)
