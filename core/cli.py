"""`llm-train`: the engine's command line (prepare, train, generate, attention, serve, estimate,
eval, merge, lr-find, import, export, version).

Exit codes (core.errors): 0 success (also a graceful stop), 1 a failure during the run (error event), 2 bad
input (config, paths, arguments) with a message naming the file, field or value.
This module builds the parser and dispatches to core.commands; heavy modules (torch) are imported only by
the command that runs, so `--help` and `estimate` stay fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from core.commands import DEVICE_HELP
from core.errors import EXIT_BAD_INPUT, UsageError
from core.protocol import make_event

# --share-cores on Linux: a GNU OpenMP thread spins this many times, then sleeps, while it waits. Sleeping
# at once (OMP_WAIT_POLICY=PASSIVE, what it set before) cost 1.2-1.5x on an idle 2-core machine, since a
# small model's steps are thousands of short parallel regions; spinning without bound (the default) lets
# a busy neighbour stall the run 2x (figures: benchmarks/cpu_share.py)
SHARE_SPINCOUNT = 1000

# command -> (module, function) in the CLI layer; imported only when the command runs.
COMMANDS = {
    "prepare": ("core.commands.prepare", "prepare_main"),
    "train": ("core.commands.train", "train_main"),
    "generate": ("core.commands.generate", "generate_main"),
    "attention": ("core.commands.generate", "attention_main"),
    "serve": ("core.commands.serve", "serve_main"),
    "estimate": ("core.commands.estimate", "estimate_main"),
    "import": ("core.interop.commands", "import_main"),
    "export": ("core.interop.commands", "export_main"),
    "version": ("core.version_cmd", "version_main"),
    "eval": ("core.commands.eval", "eval_main"),
    "merge": ("core.commands.merge", "merge_main"),
    "lr-find": ("core.lr_find", "lr_find_main"),
}


def _add_checkpoint_args(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--checkpoint", help="a checkpoint folder (RUN_DIR/checkpoints/step-NNNNNN)")
    g.add_argument("--run", help="a run folder: its latest checkpoint")


def _add_threads_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=int, default=0, metavar="N",
                   help="CPU threads for torch (0 = torch's default, all cores); the studio shares the cores "
                        "between a training run and its inference workers with it")
    p.add_argument("--share-cores", action="store_true",
                   help="CPU threads spin only briefly before they sleep while they wait (on Linux "
                        f"GOMP_SPINCOUNT={SHARE_SPINCOUNT}, elsewhere OMP_WAIT_POLICY=PASSIVE; unless a wait "
                        "policy is set): as fast as spinning on an idle machine, about twice as fast when "
                        "another process needs one of the cores this run uses (the studio sets it where a "
                        "run takes every core)")


def _add_dtype_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dtype", choices=("float32", "bfloat16", "auto"), default="float32",
                   help="weights and KV cache for generation (default float32); bfloat16 halves the bytes "
                        "read per token, 1.6-2x faster decoding on AVX2 and AVX512-BF16 CPUs (on an AMX Xeon "
                        "as fast as float32 in half the memory); auto = bfloat16 where the "
                        "hardware has it natively (CUDA bf16, AVX512-BF16/AMX)")


def _set_threads(args: argparse.Namespace) -> None:
    n = getattr(args, "threads", 0) or 0
    if n < 0:
        raise UsageError(f"--threads: {n} is not a thread count (0 = all cores)", "threads")
    if getattr(args, "share_cores", False) and not ({"OMP_WAIT_POLICY", "GOMP_SPINCOUNT"} & set(os.environ)):
        # read when OpenMP starts: torch is not imported yet here. torch's Linux wheels use GNU OpenMP,
        # whose waits then spin SHARE_SPINCOUNT times before they sleep (benchmarks/cpu_share.py)
        if sys.platform.startswith("linux"):
            os.environ["GOMP_SPINCOUNT"] = str(SHARE_SPINCOUNT)
        else:
            os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    if n:
        import torch

        torch.set_num_threads(n)


def _add_prepare_parser(sub) -> None:
    pp = sub.add_parser("prepare", help="train a tokenizer and encode a corpus into DATA_DIR")
    pp.add_argument("--input", nargs="+", required=True, metavar="PATH",
                    help="text files, folders (searched recursively) or @stdlib / @synthetic")
    pp.add_argument("--out", default=None, metavar="DATA_DIR", help="where to write (required unless --preview)")
    pp.add_argument("--tokenizer", choices=("bpe", "char", "byte"), default="bpe",
                    help="byte-level BPE trained on the corpus, one id per character, or one per byte "
                         "(default: %(default)s)")
    pp.add_argument("--vocab-size", type=int, default=None,
                    help="bpe: the vocabulary to train (default: 4096; char and byte set their own)")
    pp.add_argument("--val-fraction", type=float, default=0.1,
                    help="share of the corpus held out for validation (default: %(default)s)")
    pp.add_argument("--seed", type=int, default=1337, help="the split's and the tokenizer sample's seed "
                    "(default: %(default)s)")
    pp.add_argument("--glob", action="append", default=None, metavar="PATTERN",
                    help="file patterns to take from folders (repeatable), e.g. '**/*.txt'")
    pp.add_argument("--events", action="store_true", help="JSON Lines progress events on stdout")
    pp.add_argument("--format", choices=("text", "sft"), default="text",
                    help="text corpus, or instruction data (JSONL prompt/completion or messages)")
    pp.add_argument("--tokenizer-from", default=None, metavar="CHECKPOINT",
                    help="use this checkpoint's tokenizer (and chat template for sft) instead of a new one")
    pp.add_argument("--block-size", type=int, default=None,
                    help="sft: truncate examples to this context (default: the checkpoint's block_size)")
    pp.add_argument("--preview", type=int, default=None, metavar="N",
                    help="with --tokenizer-from: print how the first N examples are tokenized and which tokens "
                         "are trained (JSON), and write nothing")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="llm-train", description=__doc__.split("\n\n")[0].replace("\n", " "),
                                epilog="Exit codes: 0 success (also a graceful stop), 1 a failure during the run, "
                                       "2 bad input (the message names the file, field or value).")
    sub = p.add_subparsers(dest="command", required=True)

    _add_prepare_parser(sub)

    pt = sub.add_parser("train", help="train (or resume) a model from a run config")
    pt.add_argument("--config", required=True, metavar="RUN.yaml", help="the run's config (model, data, train, run)")
    pt.add_argument("--set", action="append", default=[], metavar="section.key=value",
                    help="override one config value (repeatable)")
    pt.add_argument("--resume", action="store_true", help="continue from the run's latest checkpoint")
    pt.add_argument("--events", action="store_true", help="JSON Lines events on stdout")
    _add_threads_arg(pt)

    pg = sub.add_parser("generate", help="sample text from a checkpoint")
    _add_checkpoint_args(pg)
    pg.add_argument("--prompt", default="\n", help="the text to continue (default: a newline)")
    pg.add_argument("--max-new-tokens", type=int, default=200, help="(default: %(default)s)")
    pg.add_argument("--temperature", type=float, default=0.8, help="0 means greedy (default: %(default)s)")
    pg.add_argument("--chat", action="store_true",
                    help="the prompt is one user message in the checkpoint's chat template; stop at its EOS")
    pg.add_argument("--top-k", type=int, default=None, help="sample from the k most likely tokens only")
    pg.add_argument("--top-p", type=float, default=None, help="sample from the smallest set holding this probability")
    pg.add_argument("--repetition-penalty", type=float, default=1.0,
                    help="> 1 makes tokens already in the text less likely (default: %(default)s)")
    pg.add_argument("--seed", type=int, default=None, help="for the same text again (default: random)")
    pg.add_argument("--stream", action="store_true", help="print tokens as they come")
    pg.add_argument("--no-cache", action="store_true", help="recompute the whole context each token")
    pg.add_argument("--device", default="auto", help=DEVICE_HELP)
    _add_dtype_arg(pg)

    pa = sub.add_parser("attention", help="write attention probabilities [n_layer, n_head, T, T] to .npz")
    _add_checkpoint_args(pa)
    pa.add_argument("--text", required=True, help="the text whose attention to compute")
    pa.add_argument("--out", required=True, metavar="FILE.npz", help="where to write the probabilities and tokens")
    pa.add_argument("--device", default="auto", help=DEVICE_HELP)

    ps = sub.add_parser("serve", help="long-lived inference worker speaking JSON Lines on stdin/stdout")
    _add_checkpoint_args(ps)
    ps.add_argument("--scratch", default=None, help="folder for .npy replies (default: a temp folder)")
    ps.add_argument("--device", default="auto", help=DEVICE_HELP)
    _add_dtype_arg(ps)
    _add_threads_arg(ps)

    pe = sub.add_parser("estimate", help="print parameter count, FLOPs, memory and precision estimates")
    pe.add_argument("--config", required=True, metavar="RUN.yaml", help="the run's config to estimate")
    pe.add_argument("--json", action="store_true", help="the raw numbers (bytes, FLOPs) as JSON")
    pe.add_argument("--set", action="append", default=[], metavar="section.key=value",
                    help="override one config value (repeatable)")

    from core.commands.eval import add_parsers as add_eval_parsers

    add_eval_parsers(sub, _add_checkpoint_args)  # eval, merge
    from core.lr_find import add_parser as add_lr_find_parser

    add_lr_find_parser(sub)
    from core.interop.commands import add_parsers as add_interop_parsers

    add_interop_parsers(sub)  # import, export
    from core.version_cmd import add_parser as add_version_parser

    add_version_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    module, function = COMMANDS[args.command]
    try:
        _set_threads(args)
        return getattr(importlib.import_module(module), function)(args)
    except UsageError as exc:
        return _fail(str(exc), exc.field, getattr(args, "events", False))
    except KeyboardInterrupt:
        return 130


def _fail(message: str, field: str | None, events: bool) -> int:
    """Bad input: one `error` event (kind usage) with --events, one line on stderr, exit code 2."""
    if events:
        from core.commands import emit

        emit(make_event("error", kind="usage", message=message, field=field))
    print(f"llm-train: error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
