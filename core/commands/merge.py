"""`llm-train merge`: a LoRA checkpoint (base + adapters) folded into one plain checkpoint."""

from __future__ import annotations

import argparse
import os
import sys

from core.errors import EXIT_OK, UsageError


def merge_main(args: argparse.Namespace) -> int:
    from core import checkpoint as ckpt
    from core import layout
    from core.lora import load_model, merge

    path = layout.resolve_checkpoint(args.checkpoint, args.run)
    model, meta = load_model(path, "cpu")
    if not meta.get("lora"):
        raise UsageError(f"--checkpoint: not a LoRA checkpoint (no adapters to merge): {path}")
    merge(model)
    out = os.path.abspath(args.out)
    name = os.path.basename(out)
    run_dir = os.path.dirname(os.path.dirname(out)) if layout.CHECKPOINT_RE.match(name) else out
    step = int(name.split("-")[1]) if layout.CHECKPOINT_RE.match(name) else meta["step"]
    if os.path.exists(os.path.join(run_dir, layout.CHECKPOINTS, layout.step_dir_name(step))):
        raise UsageError(f"--out: a checkpoint already exists there: "
                         f"{os.path.join(run_dir, layout.CHECKPOINTS, layout.step_dir_name(step))}")
    new_meta = {k: v for k, v in meta.items() if k not in ("lora", "format", "step", "created")}
    new_meta.update(reason="merge", parent=path)
    tok = os.path.join(path, layout.TOKENIZER)
    # no training state: a merged model starts fresh (and its checksums cover exactly what is there)
    final = ckpt.save_checkpoint(run_dir, step, model, None, new_meta, tok if os.path.isfile(tok) else None)
    print(f"wrote {final}", file=sys.stderr)
    return EXIT_OK
