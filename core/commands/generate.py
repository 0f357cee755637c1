"""`llm-train generate` and `llm-train attention`: sample text from, or save the attention of, a checkpoint."""

from __future__ import annotations

import argparse
import sys

from core.device import resolve_device
from core.errors import EXIT_OK, UsageError
from core.layout import resolve_checkpoint


def generate_main(args: argparse.Namespace) -> int:
    from core.chat import render_chat, stop_ids
    from core.generate import SampleParams, generate_steps, load_model, load_tokenizer_for

    if args.max_new_tokens < 0:
        raise UsageError(f"--max-new-tokens must be >= 0, got {args.max_new_tokens}")
    if args.top_p is not None and not 0 < args.top_p <= 1:
        raise UsageError(f"--top-p must be in (0, 1], got {args.top_p}")
    path = resolve_checkpoint(args.checkpoint, args.run)
    model, meta = load_model(path, resolve_device(args.device))
    tok = load_tokenizer_for(path, meta)
    p = SampleParams(args.max_new_tokens, args.temperature, args.top_k, args.top_p, args.repetition_penalty,
                     args.seed, use_cache=not args.no_cache)
    # --chat: the prompt is one user message in the checkpoint's own chat template (imported models).
    prompt = render_chat(meta, [{"role": "user", "content": args.prompt}]) if args.chat else args.prompt
    stops = stop_ids(meta)  # empty for our own checkpoints: they stop at the length limit, as before
    out: list[int] = []
    printed = ""
    sys.stdout.write(prompt)
    for s in generate_steps(model, tok.encode(prompt), p):
        if s.token_id in stops:
            break
        out.append(s.token_id)
        if args.stream:  # decode the whole tail so multi-byte characters split across tokens come out whole
            text = tok.decode(out)
            if not text.endswith("\ufffd"):
                sys.stdout.write(text[len(printed):])
                sys.stdout.flush()
                printed = text
    sys.stdout.write(tok.decode(out)[len(printed):] + "\n")
    sys.stdout.flush()
    return EXIT_OK


def attention_main(args: argparse.Namespace) -> int:
    from core.generate import attention_maps, load_model, load_tokenizer_for, save_attention_npz

    if not args.text:
        raise UsageError("--text must not be empty")
    path = resolve_checkpoint(args.checkpoint, args.run)
    model, meta = load_model(path, resolve_device(args.device))
    tok = load_tokenizer_for(path, meta)
    ids = tok.encode(args.text)
    if len(ids) > model.cfg.block_size:
        print(f"llm-train: note: text is {len(ids)} tokens; keeping the first block_size="
              f"{model.cfg.block_size}", file=sys.stderr)
        ids = ids[: model.cfg.block_size]
    probs = attention_maps(model, ids)
    save_attention_npz(args.out, probs, ids, tok)
    print(f"wrote {args.out}: probs {list(probs.shape)} (n_layer, n_head, T, T)", file=sys.stderr)
    return EXIT_OK
