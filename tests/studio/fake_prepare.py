"""A torch-free stand-in for `llm-train prepare --events`, for the data panel's tests.

Use it through LLM_STUDIO_ENGINE="python tests/studio/fake_prepare.py". FAKE_PREPARE_MODE picks a script:
  normal  progress events, then DATA_DIR/meta.json + preview.json and a `done` event (default)
  slow    progress events, then waits (up to 60 s) to be cancelled
  crash   dies with a Python traceback and no close event
An input path that does not exist (not starting with @) fails like the real engine: an error event,
one line on stderr, exit code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from core import layout  # noqa: E402
from core.protocol import encode, make_event  # noqa: E402

TEXT = "copy: abc|abc\nreverse: abc|cba\n"


def emit(event: str, **fields) -> None:
    sys.stdout.write(encode(make_event(event, **fields)))
    sys.stdout.flush()


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("command", choices=["prepare"])
    p.add_argument("--input", nargs="+", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--tokenizer", default="bpe")
    p.add_argument("--vocab-size", type=int, default=None)
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--events", action="store_true")
    args = p.parse_args()
    mode = os.environ.get("FAKE_PREPARE_MODE", "normal")
    emit("start", kind="prepare", out=args.out, inputs=args.input)
    for path in args.input:
        if not path.startswith("@") and not os.path.exists(path):
            emit("error", kind="usage", message=f"input not found: {path}", field=None)
            print(f"llm-train: error: input not found: {path}", file=sys.stderr)
            return 2
    if mode == "crash":
        print("gathering sources", file=sys.stderr)
        raise RuntimeError("fake engine crashed while encoding")
    for stage in ("scan", "tokenizer", "encode"):
        for done in (0, 50, 100):
            emit("progress", stage=stage, done=done, total=100)
    if mode == "slow":
        time.sleep(60)
        return 1
    os.makedirs(args.out, exist_ok=True)
    chars = sorted(set(TEXT))
    meta = {"format": 1, "tokenizer": args.tokenizer, "vocab_size": len(chars) + 1, "train_tokens": 900,
            "val_tokens": 100, "n_files": 1, "n_bytes": 1000, "bytes_per_token": 1.0,
            "sources": [{"input": s, "kind": "builtin", "files": 1, "bytes": 1000, "skipped": 0}
                        for s in args.input]}
    layout.atomic_write_json(os.path.join(args.out, layout.PREVIEW),
                             {"ids": [chars.index(c) for c in TEXT], "pieces": list(TEXT)})
    layout.atomic_write_json(os.path.join(args.out, layout.DATA_META), meta)  # last, as the engine does
    emit("done", kind="prepare", out=args.out, meta=meta)
    return 0


if __name__ == "__main__":
    sys.exit(main())
