"""`llm-train prepare`: build a data folder (tokenizer + encoded splits) and its token preview."""

from __future__ import annotations

import argparse
import json
import os
import sys

from core import layout
from core.commands import emit
from core.errors import EXIT_OK, UsageError
from core.protocol import make_event


def prepare_main(args: argparse.Namespace) -> int:
    from core.data import prepare  # numpy + tokenizers: only when the command runs

    def progress(info: dict) -> None:
        if args.events:
            emit(make_event("progress", **info))

    if getattr(args, "preview", None):
        return _preview(args)
    if not args.out:
        raise UsageError("prepare needs --out DATA_DIR (or --preview N to look without writing)", "--out")
    if args.events:
        emit(make_event("start", kind="prepare", out=args.out, inputs=args.input))
    if getattr(args, "format", "text") == "sft":
        return _prepare_sft(args)
    # PrepareError is a DataError (a UsageError): core.cli reports it with exit code 2.
    meta = prepare(args.input, args.out, tokenizer=args.tokenizer, vocab_size=args.vocab_size,
                   val_fraction=args.val_fraction, seed=args.seed, globs=args.glob, progress=progress,
                   tokenizer_from=getattr(args, "tokenizer_from", None))
    write_preview(args.out)
    if args.events:
        emit(make_event("done", kind="prepare", out=args.out, meta=meta))
    else:
        print(f"wrote {args.out}: {meta['train_tokens']:,} train + {meta['val_tokens']:,} val tokens, "
              f"vocab {meta['vocab_size']} ({meta['tokenizer']})", file=sys.stderr)
    return EXIT_OK


def write_preview(data_dir: str, n_tokens: int = 400) -> None:
    """DATA_DIR/preview.json: the first tokens of the validation split as display pieces, so the studio can
    show text coloured by token boundaries without loading a tokenizer itself."""
    from core.data import load_tokenizer, open_split

    tok = load_tokenizer(data_dir)
    ids = [int(i) for i in open_split(data_dir, "val")[:n_tokens]]
    if not ids:
        ids = [int(i) for i in open_split(data_dir, "train")[:n_tokens]]
    layout.atomic_write_json(os.path.join(data_dir, layout.PREVIEW),
                             {"ids": ids, "pieces": tok.decode_pieces(ids)}, indent=None)


def _preview(args: argparse.Namespace) -> int:
    """`--preview N`: the first N examples as the base tokenizer and template encode them, trained tokens
    marked; one `done` event (kind "preview") with --events, else the JSON on stdout. Nothing is written."""
    from core.sft import preview

    if args.preview < 1:
        raise UsageError(f"--preview: expected a positive number of examples, got {args.preview}", "--preview")
    result = preview(args.input, args.tokenizer_from, fmt=args.format, examples=args.preview,
                     block_size=args.block_size)
    if args.events:
        emit(make_event("done", kind="preview", **result))
    else:
        print(json.dumps(result, ensure_ascii=False))
    return EXIT_OK


def _prepare_sft(args: argparse.Namespace) -> int:
    """`--format sft`: instruction data with the base checkpoint's tokenizer and template (core.sft)."""
    from core.sft import prepare_sft

    meta = prepare_sft(args.input, args.out, args.tokenizer_from, block_size=args.block_size,
                       val_fraction=args.val_fraction, seed=args.seed)
    if args.events:
        emit(make_event("done", kind="prepare", out=args.out, meta=meta))
    else:
        print(f"wrote {args.out}: {meta['train_examples']} train + {meta['val_examples']} val examples, "
              f"{meta['trained_tokens']:,} trained tokens, {meta['truncated']} truncated, {meta['dropped']} "
              f"dropped (template: {meta['template']})", file=sys.stderr)
    return EXIT_OK
