"""`llm-train generate` and `llm-train attention`: sample text from, or save the attention of, a checkpoint."""

from __future__ import annotations

import argparse
import math
import os
import sys

from core.device import resolve_device
from core.errors import EXIT_OK, UsageError, quote
from core.layout import resolve_checkpoint


def check_sampling(args: argparse.Namespace) -> None:
    """Every sampling option in range before anything is loaded (NaN and inf included): UsageError."""
    if not 0 <= args.max_new_tokens <= 1_000_000:
        raise UsageError(f"--max-new-tokens must be in [0, 1000000], got {args.max_new_tokens}")
    if args.top_p is not None and not 0 < args.top_p <= 1:  # NaN fails this too
        raise UsageError(f"--top-p must be in (0, 1], got {args.top_p}")
    if args.top_k is not None and args.top_k < 0:
        raise UsageError(f"--top-k must be >= 0 (0 = off), got {args.top_k}")
    if not (math.isfinite(args.temperature) and 0 <= args.temperature <= 100):
        raise UsageError(f"--temperature must be a number in [0, 100], got {args.temperature}")
    if not (math.isfinite(args.repetition_penalty) and 0 < args.repetition_penalty <= 100):
        raise UsageError(f"--repetition-penalty must be in (0, 100], got {args.repetition_penalty}")
    if args.seed is not None and not 0 <= args.seed < 2**63:
        raise UsageError(f"--seed must be in [0, 2**63), got {quote(args.seed)}")


def generate_main(args: argparse.Namespace) -> int:
    from core.chat import generation_stop_ids, render_chat
    from core.generate import (
        SampleParams,
        generate_steps,
        inference_dtype,
        load_for_generation,
        load_tokenizer_for,
    )

    check_sampling(args)
    path = resolve_checkpoint(args.checkpoint, args.run)
    device = resolve_device(args.device)
    model, meta = load_for_generation(path, device, inference_dtype(args.dtype, device))
    tok = load_tokenizer_for(path, meta)
    p = SampleParams(args.max_new_tokens, args.temperature, args.top_k, args.top_p, args.repetition_penalty,
                     args.seed, use_cache=not args.no_cache)
    # --chat: the prompt is one user message in the checkpoint's own chat template (imported models).
    prompt = render_chat(meta, [{"role": "user", "content": args.prompt}]) if args.chat else args.prompt
    stops = generation_stop_ids(meta, tok, args.chat)  # as the studio's worker stops
    text = StreamText(tok)
    sys.stdout.write(prompt)
    for s in generate_steps(model, tok.encode(prompt), p):
        if s.token_id in stops:
            break
        piece = text.add(s.token_id)
        if args.stream and piece:
            sys.stdout.write(piece)
            sys.stdout.flush()
    sys.stdout.write((text.rest() if args.stream else tok.decode(text.ids)) + "\n")
    sys.stdout.flush()
    return EXIT_OK


class StreamText:
    """Token ids in, text out as it becomes whole, decoding only the tokens since the last piece (with the
    piece before them as context) instead of the whole output each time (O(n^2) over a long reply).

    A character split across byte-level tokens comes out once its last byte is in (at most HOLD tokens
    are held: a stream of bytes that never forms a character is written as it is); the context token
    keeps a decoder's spacing as in the whole decode."""

    HOLD = 4  # the longest UTF-8 character is 4 bytes

    def __init__(self, tok) -> None:
        self.tok, self.ids = tok, []
        self._context = self._read = 0  # ids[:_read] are written; ids[_context:_read] is decoded as context
        self._context_chars = 0         # len(decode(ids[_context:_read])), decoded once per written piece

    def _new_text(self) -> str:
        return self.tok.decode(self.ids[self._context:])[self._context_chars:]

    def _advance(self) -> None:
        self._context, self._read = self._read, len(self.ids)
        self._context_chars = len(self.tok.decode(self.ids[self._context:self._read]))

    def add(self, token_id: int) -> str:
        self.ids.append(token_id)
        new = self._new_text()
        if (not new or new.endswith("\ufffd")) and len(self.ids) - self._read < self.HOLD:
            return ""
        self._advance()
        return new

    def rest(self) -> str:
        new = self._new_text()
        self._advance()
        return new


def attention_main(args: argparse.Namespace) -> int:
    from core.generate import attention_maps, load_model, load_tokenizer_for, save_attention_npz

    if not args.text:
        raise UsageError("--text must not be empty")
    out_dir = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(out_dir) or not os.access(out_dir, os.W_OK):  # before loading anything
        raise UsageError(f"--out: cannot write {args.out}: its folder {out_dir} is missing or read-only")
    path = resolve_checkpoint(args.checkpoint, args.run)
    model, meta = load_model(path, resolve_device(args.device))
    tok = load_tokenizer_for(path, meta)
    ids = tok.encode(args.text)
    if len(ids) > model.cfg.block_size:
        print(f"llm-train: note: text is {len(ids)} tokens; keeping the first block_size="
              f"{model.cfg.block_size}", file=sys.stderr)
        ids = ids[: model.cfg.block_size]
    probs = attention_maps(model, ids)
    try:
        save_attention_npz(args.out, probs, ids, tok)
    except OSError as exc:  # read-only or missing folder, disk full: name the file, exit 2
        raise UsageError(f"--out: cannot write {args.out}: {exc.strerror or exc}") from None
    print(f"wrote {args.out}: probs {list(probs.shape)} (n_layer, n_head, T, T)", file=sys.stderr)
    return EXIT_OK
