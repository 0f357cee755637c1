"""`llm-train import SOURCE --out DIR` and `llm-train export --checkpoint C --format F --out PATH`.

Both refuse bad input with a UsageError (exit 2) before anything is written, and write through temporary
names renamed into place, so a failure or a kill leaves nothing half-written.
"""

from __future__ import annotations

import argparse
import os
import sys

from core.errors import EXIT_BAD_INPUT, UsageError

FORMATS = ("hf", "gguf", "onnx", "peft", "gguf-lora")
DTYPES = ("f32", "f16", "bf16", "q8_0")


def add_parsers(sub) -> None:
    """The `import` and `export` subcommands (called from core.cli.build_parser)."""
    pi = sub.add_parser("import", help="write a checkpoint from a Hugging Face folder, a .gguf file or a PEFT "
                                       "LoRA adapter folder (with --base)")
    pi.add_argument("source", metavar="SOURCE", help="an HF model folder (config.json + weights), a .gguf file, "
                                                     "or a PEFT adapter folder (adapter_config.json)")
    pi.add_argument("--out", required=True, metavar="DIR",
                    help="a new folder: DIR/checkpoints/step-000000 (or DIR itself when named step-NNNNNN)")
    pi.add_argument("--block-size", type=int, default=None, metavar="N",
                    help="cap the context length (the KV cache is sized by it); default: the model's own")
    pi.add_argument("--base", metavar="CKPT",
                    help="for a PEFT LoRA adapter folder (adapter_config.json): the base model's checkpoint (an "
                         "import of the HF model it was trained on); writes a LoRA checkpoint on it")
    pe = sub.add_parser("export", help="write a checkpoint as an HF folder, a GGUF file or an ONNX graph, or "
                                       "a LoRA fine-tune's adapters alone for peft or llama.cpp")
    g = pe.add_mutually_exclusive_group(required=True)
    g.add_argument("--checkpoint", help="a checkpoint folder (RUN_DIR/checkpoints/step-NNNNNN)")
    g.add_argument("--run", help="a run folder: its latest checkpoint")
    pe.add_argument("--format", required=True, choices=FORMATS,
                    help="hf: a transformers folder; gguf: a llama.cpp file; onnx: a graph for ONNX Runtime; "
                         "peft: a LoRA fine-tune's adapters for peft's PeftModel (on the base's HF version); "
                         "gguf-lora: the same as a llama.cpp LoRA adapter (--lora, on the base's GGUF export)")
    pe.add_argument("--out", required=True, metavar="PATH",
                    help="a new folder (hf, peft) or file (gguf, onnx, gguf-lora)")
    pe.add_argument("--dtype", choices=DTYPES, default=None,
                    help="weights' number format (default f32; q8_0 for gguf only)")


def import_main(args: argparse.Namespace) -> int:
    return _guarded(_import, args)


def export_main(args: argparse.Namespace) -> int:
    return _guarded(_export, args)


def _guarded(command, args: argparse.Namespace) -> int:
    """Bad input -> one message on stderr and exit code 2 (whatever UsageError class the CLI catches)."""
    try:
        return command(args)
    except UsageError as exc:
        print(f"llm-train: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _import(args: argparse.Namespace) -> int:
    from core.import_config import read_hf_config
    from core.interop import hf_import
    from core.interop.writer import checkpoint_target, write_checkpoint

    src = args.source
    if args.block_size is not None and args.block_size < 1:
        raise UsageError(f"--block-size must be >= 1, got {args.block_size}")
    checkpoint_target(args.out)  # refuse an occupied destination before reading anything big
    from core.import_config import is_adapter

    if is_adapter(src):
        from core.interop.peft_import import import_peft

        if not args.base:
            raise UsageError(f"{src} is a LoRA adapter (adapter_config.json): name the checkpoint of the model it "
                             f"was trained on with --base (import that model first)", "base")
        path = import_peft(src, args.base, args.out)
        print(f"wrote {path}: a LoRA adapter on {args.base}", file=sys.stderr)
        return 0
    if args.base:
        raise UsageError(f"--base is for a LoRA adapter folder (adapter_config.json); {src} is not one", "base")
    if os.path.isdir(src):
        cfg, family, raw = read_hf_config(src, args.block_size)
        tensors = hf_import.HFTensors(src)
        produce, dtype_of = hf_import.hf_producer(tensors, cfg, family)
        tok_json = hf_import.hf_tokenizer_json(src)
        info = hf_import.hf_token_info(src, raw, tok_json)
        info["imported_from"] = {"format": "hf", "path": os.path.abspath(src), "model_type": raw["model_type"],
                                 "architectures": raw.get("architectures")}
    elif os.path.isfile(src):
        from core.interop import gguf_import

        source = gguf_import.GGUFSource(src, args.block_size)
        cfg, produce, dtype_of = source.cfg, source.produce, source.dtype_of
        tok_json, info = source.tokenizer_json(), source.token_info()
    else:
        raise UsageError(f"import source not found: {src}")
    check_tokenizer(tok_json)
    path = write_checkpoint(args.out, cfg, produce, dtype_of, tok_json, info, progress=_progress)
    print(f"wrote {path}: {cfg.n_layer} layers, {cfg.n_embd} wide, vocab {cfg.vocab_size}", file=sys.stderr)
    return 0


def check_tokenizer(tok_json: str) -> None:
    """Refuse (before writing) a tokenizer the engine's TokenizerWrapper cannot map to bytes, id for id."""
    import json

    from tokenizers import Tokenizer

    from core.tokenizer import TokenizerWrapper, tokenizer_kind

    spec = json.loads(tok_json)
    model = spec.get("model") or {}
    try:  # the engine's own character and byte tokenizers too (an export of ours, imported again)
        TokenizerWrapper(Tokenizer.from_str(tok_json), tokenizer_kind(spec))
    except Exception as exc:  # KeyError for a piece that is not byte-level text, and friends
        raise UsageError(f"tokenizer: a {model.get('type', '?')} tokenizer"
                         f"{' with byte fallback (SentencePiece style)' if model.get('byte_fallback') else ''} "
                         f"is not supported yet ({type(exc).__name__}: {exc}); supported: byte-level BPE "
                         f"(GPT-2, Llama 3, SmolLM, Qwen2) and this program's own character and byte tokenizers",
                         "tokenizer") from None


def _progress(done: int, total: int) -> None:
    if sys.stderr.isatty():
        print(f"\rtensors {done}/{total}", end="\n" if done == total else "", file=sys.stderr, flush=True)


def _export(args: argparse.Namespace) -> int:
    from core.layout import resolve_checkpoint

    path = resolve_checkpoint(args.checkpoint, args.run)
    dtype = args.dtype or "f32"
    if dtype == "q8_0" and args.format != "gguf":
        raise UsageError(f"--dtype q8_0 is for --format gguf only (got --format {args.format})")
    if os.path.exists(args.out):
        raise UsageError(f"--out: {args.out} already exists; choose a new path (nothing was written)")
    base_hf = None
    if args.format == "hf":
        from core.interop.hf_export import export_hf

        export_hf(path, args.out, dtype)
    elif args.format == "gguf":
        from core.interop.gguf_export import export_gguf

        export_gguf(path, args.out, dtype)
    elif args.format == "gguf-lora":
        from core.interop.gguf_lora_export import export_gguf_lora

        export_gguf_lora(path, args.out, dtype)
    elif args.format == "peft":
        from core.interop.peft_export import export_peft

        base_hf = export_peft(path, args.out, dtype)
    else:
        from core.interop.onnx_export import export_onnx

        export_onnx(path, args.out, dtype)
    from core.interop import run_hint
    from core.layout import read_checkpoint_meta
    from core.protocol import RUN_HINT

    meta = read_checkpoint_meta(path)
    model = (meta.get("config") or {}).get("model") or {}
    from core.layout import lora_base

    base = lora_base(path, meta["lora"]) if isinstance(meta.get("lora"), dict) else ""
    print(f"wrote {args.out}\n{RUN_HINT}{run_hint(args.format, args.out, model, base_hf, base)}", file=sys.stderr)
    return 0
