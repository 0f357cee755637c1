"""`llm-train`: the engine's command line (prepare, train, generate, attention, serve, estimate).

Exit codes: 0 success (also a graceful stop), 1 a failure during the run (error event), 2 bad input
(config, paths, arguments) with a message naming the file, field or value.
Heavy modules (torch) are imported inside the subcommands so `--help` and `estimate` stay fast.
"""

from __future__ import annotations

import argparse
import json
import sys

from core.protocol import encode, make_event

EXIT_OK, EXIT_FAIL, EXIT_BAD_INPUT = 0, 1, 2


class UsageError(Exception):
    """Bad input detected by a subcommand: printed as one clear message, exit code 2."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def _emit(ev: dict) -> None:
    sys.stdout.write(encode(ev))
    sys.stdout.flush()


def _add_checkpoint_args(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--checkpoint", help="a checkpoint folder (RUN_DIR/checkpoints/step-NNNNNN)")
    g.add_argument("--run", help="a run folder: its latest checkpoint")


def _add_threads_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=int, default=0, metavar="N",
                   help="CPU threads for torch (0 = torch's default, all cores); the studio shares the cores "
                        "between a training run and its inference workers with it")


def _set_threads(args: argparse.Namespace) -> None:
    n = getattr(args, "threads", 0) or 0
    if n < 0:
        raise UsageError(f"--threads: {n} is not a thread count (0 = all cores)", "threads")
    if n:
        import torch

        torch.set_num_threads(n)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="llm-train", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    pp = sub.add_parser("prepare", help="train a tokenizer and encode a corpus into DATA_DIR")
    pp.add_argument("--input", nargs="+", required=True, metavar="PATH",
                    help="text files, folders (searched recursively) or @stdlib / @synthetic")
    pp.add_argument("--out", required=True, metavar="DATA_DIR")
    pp.add_argument("--tokenizer", choices=("bpe", "char", "byte"), default="bpe")
    pp.add_argument("--vocab-size", type=int, default=None)
    pp.add_argument("--val-fraction", type=float, default=0.1)
    pp.add_argument("--seed", type=int, default=1337)
    pp.add_argument("--glob", action="append", default=None, metavar="PATTERN",
                    help="file patterns to take from folders (repeatable), e.g. '**/*.txt'")
    pp.add_argument("--events", action="store_true", help="JSON Lines progress events on stdout")

    pt = sub.add_parser("train", help="train (or resume) a model from a run config")
    pt.add_argument("--config", required=True, metavar="RUN.yaml")
    pt.add_argument("--set", action="append", default=[], metavar="section.key=value",
                    help="override one config value (repeatable)")
    pt.add_argument("--resume", action="store_true", help="continue from the run's latest checkpoint")
    pt.add_argument("--events", action="store_true", help="JSON Lines events on stdout")
    _add_threads_arg(pt)

    pg = sub.add_parser("generate", help="sample text from a checkpoint")
    _add_checkpoint_args(pg)
    pg.add_argument("--prompt", default="\n")
    pg.add_argument("--max-new-tokens", type=int, default=200)
    pg.add_argument("--temperature", type=float, default=0.8)
    pg.add_argument("--top-k", type=int, default=None)
    pg.add_argument("--top-p", type=float, default=None)
    pg.add_argument("--repetition-penalty", type=float, default=1.0)
    pg.add_argument("--seed", type=int, default=None)
    pg.add_argument("--stream", action="store_true", help="print tokens as they come")
    pg.add_argument("--no-cache", action="store_true", help="recompute the whole context each token")
    pg.add_argument("--device", default="auto")

    pa = sub.add_parser("attention", help="write attention probabilities [n_layer, n_head, T, T] to .npz")
    _add_checkpoint_args(pa)
    pa.add_argument("--text", required=True)
    pa.add_argument("--out", required=True, metavar="FILE.npz")
    pa.add_argument("--device", default="auto")

    ps = sub.add_parser("serve", help="long-lived inference worker speaking JSON Lines on stdin/stdout")
    _add_checkpoint_args(ps)
    ps.add_argument("--scratch", default=None, help="folder for .npy replies (default: a temp folder)")
    ps.add_argument("--device", default="auto")
    _add_threads_arg(ps)

    pe = sub.add_parser("estimate", help="print parameter count, FLOPs and memory estimates as JSON")
    pe.add_argument("--config", required=True, metavar="RUN.yaml")
    pe.add_argument("--set", action="append", default=[], metavar="section.key=value")

    from core.interop.commands import add_parsers as add_interop_parsers

    add_interop_parsers(sub)  # import, export
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    events = getattr(args, "events", False)
    try:
        return _dispatch(args)
    except UsageError as exc:
        return _fail(str(exc), "usage", exc.field, events)
    except KeyboardInterrupt:
        return 130


def _fail(message: str, kind: str, field: str | None, events: bool) -> int:
    if events:
        _emit(make_event("error", kind=kind, message=message, field=field))
    print(f"llm-train: error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def _dispatch(args: argparse.Namespace) -> int:
    from core.config import ConfigError

    cmd = args.command
    _set_threads(args)
    if cmd == "prepare":
        return _prepare(args)
    if cmd == "estimate":
        from core.config import estimate, load_config

        try:
            cfg = load_config(args.config, args.set)
        except ConfigError as exc:
            raise UsageError(str(exc), exc.fields[0] if exc.fields else None) from None
        print(json.dumps(estimate(cfg), indent=2))
        return EXIT_OK
    if cmd == "train":
        from core.train import train_main

        return train_main(args)
    if cmd == "generate":
        from core.generate import generate_main

        return generate_main(args)
    if cmd == "attention":
        from core.generate import attention_main

        return attention_main(args)
    if cmd == "serve":
        from core.serve import serve_main

        return serve_main(args)
    if cmd in ("import", "export"):
        from core.interop import commands

        return commands.import_main(args) if cmd == "import" else commands.export_main(args)
    raise UsageError(f"unknown command {cmd}")


def _prepare(args: argparse.Namespace) -> int:
    from core.data import PrepareError, prepare

    def progress(info: dict) -> None:
        if args.events:
            _emit(make_event("progress", **info))

    if args.events:
        _emit(make_event("start", kind="prepare", out=args.out, inputs=args.input))
    try:
        meta = prepare(args.input, args.out, tokenizer=args.tokenizer, vocab_size=args.vocab_size,
                       val_fraction=args.val_fraction, seed=args.seed, globs=args.glob, progress=progress)
    except PrepareError as exc:
        raise UsageError(str(exc)) from None
    _write_preview(args.out)
    if args.events:
        _emit(make_event("done", kind="prepare", out=args.out, meta=meta))
    else:
        print(f"wrote {args.out}: {meta['train_tokens']:,} train + {meta['val_tokens']:,} val tokens, "
              f"vocab {meta['vocab_size']} ({meta['tokenizer']})", file=sys.stderr)
    return EXIT_OK


def _write_preview(data_dir: str, n_tokens: int = 400) -> None:
    """DATA_DIR/preview.json: the first tokens of the validation split as display pieces, so the studio can
    show text coloured by token boundaries without loading a tokenizer itself."""
    import os

    from core.data import load_tokenizer, open_split

    tok = load_tokenizer(data_dir)
    ids = [int(i) for i in open_split(data_dir, "val")[:n_tokens]]
    if not ids:
        ids = [int(i) for i in open_split(data_dir, "train")[:n_tokens]]
    tmp = os.path.join(data_dir, f".preview.json.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump({"ids": ids, "pieces": tok.decode_pieces(ids)}, fh, ensure_ascii=False)
    os.replace(tmp, os.path.join(data_dir, "preview.json"))


if __name__ == "__main__":
    sys.exit(main())
