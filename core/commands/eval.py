"""`llm-train eval`: loss, perplexity and bits per byte on a text file, or BLEU / ROUGE-L / exact match of
greedy generations on a pairs file (core.evaluate). Also declares the `merge` command's parser."""

from __future__ import annotations

import argparse
import json
import sys

from core.errors import EXIT_OK, UsageError


def add_parsers(sub, add_checkpoint_args) -> None:
    pv = sub.add_parser("eval", help="evaluate a checkpoint on a text file or a prompt/reference pairs file")
    add_checkpoint_args(pv)
    what = pv.add_mutually_exclusive_group(required=True)
    what.add_argument("--text", metavar="FILE", help="loss, perplexity and bits per byte of this text")
    what.add_argument("--pairs", metavar="FILE.jsonl", help='{"prompt", "reference"} lines: generate, score')
    pv.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    pv.add_argument("--max-new-tokens", type=int, default=128)
    pv.add_argument("--raw", action="store_true",
                    help="pairs: use the prompt as is (no chat template)")
    pv.add_argument("--device", default="auto")

    pm = sub.add_parser("merge", help="fold a LoRA checkpoint's adapters into a plain checkpoint")
    add_checkpoint_args(pm)
    pm.add_argument("--out", required=True, metavar="DIR", help="a checkpoint folder to write (step-NNNNNN) "
                                                                "or a folder to put one in")


def eval_main(args: argparse.Namespace) -> int:
    from core import layout
    from core.device import resolve_device
    from core.evaluate import evaluate_pairs, evaluate_text
    from core.lora import load_model

    path = layout.resolve_checkpoint(args.checkpoint, args.run)
    if args.max_new_tokens < 1:
        raise UsageError(f"--max-new-tokens must be at least 1, got {args.max_new_tokens}")
    device = resolve_device(args.device, "--device", "--device")
    model, meta = load_model(path, device)
    if args.text:
        result = evaluate_text(model, meta, path, args.text, device)
    else:
        result = evaluate_pairs(model, meta, path, args.pairs, device, args.max_new_tokens, raw=args.raw)
    if args.json:
        print(json.dumps(result))
    elif args.text:
        print(f"loss {result['loss']:.4f}  perplexity {result['perplexity']:.3f}  bits/byte "
              f"{result['bits_per_byte']:.4f}  ({result['tokens']:,} tokens, {result['bytes']:,} bytes)")
    else:
        for g in result["generations"]:
            print(f"> {g['prompt']!r}\n  got {g['generation']!r}\n  ref {g['reference']!r}")
        print(f"BLEU {result['bleu']:.2f}  ROUGE-L {result['rouge_l']:.4f}  exact match "
              f"{result['exact_match']:.4f}  (n={result['n']})")
    sys.stdout.flush()
    return EXIT_OK
