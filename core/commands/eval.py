"""`llm-train eval`: loss, perplexity and bits per byte on a text file, or BLEU / ROUGE-L / exact match of
greedy (or sampled) generations on a pairs file (core.evaluate). Also declares the `merge` command's parser.

`--save` keeps the result, generations included, as CHECKPOINT/eval/<time>-<kind>-<file>.json
(core.layout.evaluation_path, written atomically): the engine writes it because the engine computed it,
so a result from the command line and one from the studio are kept alike and the generations never
travel through a pipe. `--events` speaks the protocol instead of a bar: `start`, `progress` (stage
"text" in bytes or "pairs" in pairs), then `done` with the figures (no generations) and the saved `path`,
or `error` (kind usage, the message naming file and line) with exit code 2.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

from core import layout
from core.commands import DEVICE_HELP, emit
from core.errors import EXIT_OK, CheckpointError, UsageError
from core.protocol import make_event


def add_parsers(sub, add_checkpoint_args) -> None:
    pv = sub.add_parser("eval", help="evaluate a checkpoint on a text file or a prompt/reference pairs file")
    add_checkpoint_args(pv)
    what = pv.add_mutually_exclusive_group(required=True)
    what.add_argument("--text", metavar="FILE", help="loss, perplexity and bits per byte of this text")
    what.add_argument("--pairs", metavar="FILE.jsonl", help='{"prompt", "reference"} lines: generate, score')
    what.add_argument("--data", metavar="DATA_DIR", help="loss, perplexity and bits per byte of a prepared data "
                      "set's validation split (tokenized as the checkpoint is)")
    pv.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    pv.add_argument("--max-new-tokens", type=int, default=128,
                    help="pairs: each answer stops at the end of turn or after this many tokens (default: %(default)s)")
    pv.add_argument("--raw", action="store_true",
                    help="pairs: use the prompt as is (no chat template)")
    pv.add_argument("--temperature", type=float, default=0.0,
                    help="pairs: 0 answers greedily (the default); above 0 samples at this temperature")
    pv.add_argument("--seed", type=int, default=0, help="pairs: the sampling seed (with --temperature)")
    pv.add_argument("--save", action="store_true",
                    help="keep the result as CHECKPOINT/eval/<time>-<text|pairs>-<file>.json")
    pv.add_argument("--events", action="store_true", help="JSON Lines events on stdout (start, progress, done)")
    pv.add_argument("--device", default="auto", help=DEVICE_HELP)

    pm = sub.add_parser("merge", help="fold a LoRA checkpoint's adapters into a plain checkpoint")
    add_checkpoint_args(pm)
    pm.add_argument("--out", required=True, metavar="DIR", help="a checkpoint folder to write (step-NNNNNN) "
                                                                "or a folder to put one in")


def eval_main(args: argparse.Namespace) -> int:
    from core.device import resolve_device
    from core.evaluate import evaluate_pairs, evaluate_split, evaluate_text
    from core.lora import load_model

    path = layout.resolve_checkpoint(args.checkpoint, args.run)
    if args.max_new_tokens < 1:
        raise UsageError(f"--max-new-tokens must be at least 1, got {args.max_new_tokens}")
    if not (math.isfinite(args.temperature) and args.temperature >= 0):
        raise UsageError(f"--temperature must be 0 (greedy) or more, got {args.temperature}")
    kind, source = ("pairs", args.pairs) if args.pairs else ("text", args.text or args.data)
    if args.events:
        emit(make_event("start", kind="eval", mode=kind, checkpoint=path, file=os.path.abspath(source)))
    progress = (lambda done, total: emit(make_event("progress", stage=kind, done=done, total=total))) \
        if args.events else True
    device = resolve_device(args.device, "--device", "--device")
    model, meta = load_model(path, device)
    if args.data:  # saved as a text evaluation of the split (its figures are a text's), "split" saying which
        result = evaluate_split(model, meta, path, args.data, device, progress=progress)
    elif args.text:
        result = evaluate_text(model, meta, path, args.text, device, progress=progress)
    else:
        result = evaluate_pairs(model, meta, path, args.pairs, device, args.max_new_tokens, raw=args.raw,
                                progress=progress, temperature=args.temperature, seed=args.seed)
        result["options"] = {"max_new_tokens": args.max_new_tokens, "raw": args.raw,
                             "temperature": args.temperature, "seed": args.seed}
    result = {"kind": kind, "step": meta.get("step"), "created": time.time(), **result}
    if args.save:
        result["saved"] = _save(path, kind, source, result)
    _report(args, result)
    return EXIT_OK


def _save(checkpoint: str, kind: str, source: str, result: dict) -> str:
    """Write the result into the checkpoint's eval/ folder; CheckpointError when it cannot be written."""
    if not layout.is_checkpoint(checkpoint):  # pruned by a training run meanwhile: recreate nothing
        raise CheckpointError(f"the checkpoint is gone (removed while it was evaluated): {checkpoint}")
    out = layout.evaluation_path(checkpoint, kind, source, result["created"])
    try:
        layout.atomic_write_json(out, result)
    except OSError as exc:
        raise CheckpointError(f"cannot save the evaluation in {os.path.dirname(out)}: "
                              f"{exc.strerror or exc}") from None
    return out


def _report(args: argparse.Namespace, result: dict) -> None:
    if args.events:
        figures = {k: v for k, v in result.items() if k != "generations"}
        emit(make_event("done", kind="eval", result=figures, path=result.get("saved")))
    elif args.json:
        print(json.dumps(result))
    elif not args.pairs:
        print(f"loss {result['loss']:.4f}  perplexity {result['perplexity']:.3f}  bits/byte "
              f"{result['bits_per_byte']:.4f}  ({result['tokens']:,} tokens, {result['bytes']:,} bytes)")
        if result.get("unknown_tokens"):
            share = result["unknown_percent"]
            print(f"warning: {f'{share:.1f}%' if share >= 0.1 else '<0.1%'} of the tokens are the tokenizer's unknown token: the file "
                  "has text outside the model's vocabulary, so these figures say little about it", file=sys.stderr)
    else:
        for g in result["generations"]:
            print(f"> {g['prompt']!r}\n  got {g['generation']!r}\n  ref {g['reference']!r}")
        print(f"BLEU {result['bleu']:.2f}  ROUGE-L {result['rouge_l']:.4f}  exact match "
              f"{result['exact_match']:.4f}  (n={result['n']})")
    if args.save and not args.events:
        print(f"saved {result['saved']}", file=sys.stderr)
    sys.stdout.flush()
