"""Our GGUF exports in llama.cpp itself (through llama-cpp-python), not only in transformers' GGUF loader.

For each tokenizer `prepare` makes (char, byte, bpe) and each GGUF architecture we write (gpt2, llama, qwen2,
qwen3: QK-norm, and heads 24 wide where n_embd / n_head is 16), a
small random-weight model of ours is exported as F32 and Q8_0; llama.cpp then tokenizes a multilingual text
(1- to 4-byte UTF-8 characters), turns our ids back into text, and scores our ids. Printed per file: whether
llama.cpp's ids and text equal ours, the largest logit difference and the relative RMS difference against our
fp32 logits, and the EOS id llama.cpp reads. With --speed, greedy generation tokens/s of a 6 x 384 model
(vocabulary 1024, batch 1, 128 new tokens) in our engine and in llama.cpp (F32, same thread count), as a ratio.

With --converter LLAMA_CPP/convert_hf_to_gguf.py, the other direction: tiny random GPT-2, Llama (GQA), Qwen2
(q/k/v bias) and Qwen3 (QK-norm, 128-wide heads) HF folders made offline go through llama.cpp's own converter
(F32 and Q8_0; its pre-tokenizer check is told the split, since their tokenizers are not a known model's) and `llm-train import`;
printed: whether our ids equal the HF tokenizer's and our logits against transformers' on the same folder.

LoRA adapters (`--format gguf-lora`): a LoRA fine-tune of each BPE model, applied by llama.cpp to the base's
F32 file; printed: llama.cpp's logits against ours with the adapters, and how far the adapters moved ours.

llama-cpp-python builds llama.cpp from source (about 10 minutes on 2 cores; not a project dependency); its
sdist carries llama.cpp's tree, converter included (it needs `sentencepiece` installed to run):

    pip install llama-cpp-python
    python benchmarks/gguf_llama_cpp.py [--speed] [--converter .../vendor/llama.cpp/convert_hf_to_gguf.py]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

from core.checkpoint import save_checkpoint
from core.cli import main as cli
from core.config import Config, ModelConfig
from core.data import prepare
from core.generate import SampleParams, generate_steps, load_for_generation
from core.model import GPT
from core.tokenizer import TokenizerWrapper

CORPUS = "Café naïve — “quoted” 5 €, 你好 🙂 𝄞𝄢 clef.\nPlain ASCII line two! The quick brown fox jumps.\n"
TEXT = "naïve “clef” — 你好 🙂, Café 𝄢 5 €\nPlain fox"
ROPE = {"pos_encoding": "rope", "norm": "rmsnorm", "activation": "swiglu", "bias": False}
CASES = [("char", "gpt2"), ("char", "llama"), ("byte", "llama"), ("bpe", "gpt2"), ("bpe", "llama"), ("bpe", "qwen2"),
         ("bpe", "qwen3")]
EXTRA = {"qwen2": {"qkv_bias": True}, "qwen3": {"qk_norm": True, "qk_norm_weight": True, "head_dim": 24, "n_kv_head": 2}}


def _model(tmp: str, kind: str, arch: str, n_layer=2, n_head=4, n_embd=64, vocab=300) -> tuple[str, GPT, object]:
    data = os.path.join(tmp, f"data-{kind}-{vocab}")
    if not os.path.isdir(data):
        with open(os.path.join(tmp, "corpus.txt"), "w", encoding="utf-8") as fh:
            fh.write(CORPUS * 40)
        prepare([os.path.join(tmp, "corpus.txt")], data, tokenizer=kind, seed=1,
                vocab_size=vocab if kind == "bpe" else None)
    tok_path = os.path.join(data, "tokenizer.json")
    tok = TokenizerWrapper.from_file(tok_path)
    extra = {} if arch == "gpt2" else dict(ROPE, **EXTRA.get(arch, {}))
    cfg = ModelConfig(n_layer=n_layer, n_head=n_head, n_embd=n_embd, block_size=256, vocab_size=tok.vocab_size,
                      **extra)
    torch.manual_seed(0)
    model = GPT(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    run = os.path.join(tmp, f"run-{kind}-{arch}-{n_layer}x{n_embd}")
    return save_checkpoint(run, 5, model, {}, {"config": Config(model=cfg).to_dict()}, tok_path), model, tok


def _export(ckpt: str, out: str, dtype: str) -> str:
    with contextlib.redirect_stderr(io.StringIO()):  # its "wrote" and "run it with" lines: not for the table
        assert cli(["export", "--checkpoint", ckpt, "--format", "gguf", "--dtype", dtype, "--out", out]) == 0
    return out


def check(tmp: str, llama_cpp) -> None:
    print(f"{'tokenizer / arch':18s} {'type':5s} {'ids':4s} {'text':4s} {'max |dlogit|':>12s} {'rel RMS':>8s} "
          f"{'n_vocab':>7s} {'eos':>4s}")
    for kind, arch in CASES:
        ckpt, model, tok = _model(tmp, kind, arch)
        ids = tok.encode(TEXT)
        with torch.no_grad():
            ref = model(torch.tensor([ids]))[0][0].numpy()
        for dtype in ("f32", "q8_0"):
            path = _export(ckpt, os.path.join(tmp, f"{kind}-{arch}-{dtype}.gguf"), dtype)
            llm = llama_cpp.Llama(model_path=path, n_ctx=256, logits_all=True, verbose=False, n_threads=2)
            same_ids = llm.tokenize(TEXT.encode(), add_bos=False, special=False) == ids
            same_text = llm.detokenize(ids).decode("utf-8", "replace") == TEXT
            llm.eval(ids)
            got = np.array(llm.scores[:len(ids)])[:, :tok.vocab_size]
            rel = np.sqrt(((got - ref) ** 2).mean() / (ref ** 2).mean())
            print(f"{kind + ' / ' + arch:18s} {dtype:5s} {'=' if same_ids else 'DIFF':4s} "
                  f"{'=' if same_text else 'DIFF':4s} {np.abs(got - ref).max():12.2e} {rel:8.1e} "
                  f"{llm.n_vocab():7d} {llm.token_eos():4d}")
            del llm


def lora(tmp: str, llama_cpp) -> None:
    """A LoRA fine-tune of each architecture's model (every projection adapted, a few steps at a high rate),
    its adapters exported with --format gguf-lora and applied by llama.cpp (`lora_path`) to the base's F32
    export: llama.cpp's logits against ours with the adapters, and how far the adapters moved them."""
    import yaml

    from core.layout import latest_checkpoint
    from core.lora import load_model

    print(f"\n{'LoRA on':18s} {'max |dlogit|':>12s} {'rel RMS':>8s} {'moved by':>9s}")
    for kind, arch in [c for c in CASES if c[0] == "bpe"]:
        base, base_model, tok = _model(tmp, kind, arch)
        text, data = os.path.join(tmp, "lora-corpus.txt"), os.path.join(tmp, f"lora-data-{arch}")
        with open(text, "w", encoding="utf-8") as fh:
            fh.write(CORPUS * 400)  # a validation split longer than the base's 256 positions
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            assert cli(["prepare", "--input", text, "--out", data, "--tokenizer-from", base]) == 0
        config = os.path.join(tmp, f"lora-{arch}.yaml")
        train = {"max_steps": 6, "warmup_steps": 0, "lr": 0.02, "min_lr": 0.02, "batch_size": 4, "eval_interval": 0,
                 "checkpoint_interval": 0, "device": "cpu", "precision": "fp32", "init_from": base,
                 "finetune": "lora", "lora_rank": 4, "lora_alpha": 8.0,
                 "lora_targets": ["attn_qkv", "attn_out", "mlp_in", "mlp_out"]}
        with open(config, "w", encoding="utf-8") as fh:
            yaml.safe_dump({"data": {"dir": data}, "train": train,
                            "run": {"dir": os.path.join(tmp, f"lora-{arch}"), "save_attention": False}}, fh)
        log = io.StringIO()
        with contextlib.redirect_stderr(log), contextlib.redirect_stdout(log):
            trained = cli(["train", "--config", config]) == 0
            ckpt = latest_checkpoint(os.path.join(tmp, f"lora-{arch}"))
            adapter = os.path.join(tmp, f"lora-{arch}.gguf")
            exported = trained and cli(["export", "--checkpoint", ckpt, "--format", "gguf-lora", "--out",
                                        adapter]) == 0
        assert exported, log.getvalue()[-2000:]
        ids = tok.encode(TEXT)
        model, _ = load_model(ckpt)
        with torch.no_grad():
            ref, before = model(torch.tensor([ids]))[0][0].numpy(), base_model(torch.tensor([ids]))[0][0].numpy()
        path = _export(base, os.path.join(tmp, f"lora-base-{arch}.gguf"), "f32")
        llm = llama_cpp.Llama(model_path=path, lora_path=adapter, n_ctx=256, logits_all=True, verbose=False,
                              n_threads=2)
        llm.eval(ids)
        got = np.array(llm.scores[:len(ids)])[:, :tok.vocab_size]
        rel = np.sqrt(((got - ref) ** 2).mean() / (ref ** 2).mean())
        print(f"{kind + ' / ' + arch:18s} {np.abs(got - ref).max():12.2e} {rel:8.1e} {np.abs(ref - before).max():9.2e}")
        del llm


def speed(tmp: str, llama_cpp, threads: int, new_tokens: int) -> None:
    ckpt, _, tok = _model(tmp, "bpe", "llama", n_layer=6, n_head=6, n_embd=384, vocab=1024)
    path = _export(ckpt, os.path.join(tmp, "speed-f32.gguf"), "f32")
    prompt = tok.encode("The quick brown fox")
    model, _ = load_for_generation(ckpt, "cpu", torch.float32)
    params = SampleParams(temperature=0.0, max_new_tokens=new_tokens)
    llm = llama_cpp.Llama(model_path=path, n_ctx=256, verbose=False, n_threads=threads, n_batch=256)

    def ours() -> list[int]:
        return [s.token_id for s in generate_steps(model, prompt, params)]

    def theirs() -> list[int]:
        llm.reset()
        out = []
        for t in llm.generate(prompt, temp=0.0, top_k=1, reset=True):
            out.append(t)
            if len(out) == new_tokens:
                break
        return out

    rates = {"ours": [], "llama.cpp": []}
    same = ours() == theirs()  # also the warm-up
    for _ in range(3):
        for name, f in (("ours", ours), ("llama.cpp", theirs)):
            t0 = time.perf_counter()
            toks = f()
            rates[name].append(len(toks) / (time.perf_counter() - t0))
    med = {k: float(np.median(v)) for k, v in rates.items()}
    print(f"\ngeneration, 6 x 384, vocabulary 1024, batch 1, {new_tokens} new tokens, F32, {threads} threads: "
          f"ours {med['ours']:.1f} tok/s, llama.cpp {med['llama.cpp']:.1f} tok/s, "
          f"ratio ours / llama.cpp {med['ours'] / med['llama.cpp']:.2f}x; greedy tokens {'identical' if same else 'DIFFER'}")


CONVERT = """import runpy, sys
root = sys.argv.pop(1); pre = sys.argv.pop(1)
sys.path[:0] = [root + "/gguf-py", root]
import conversion.base as base
base.TextModel.get_vocab_base_pre = lambda self, tokenizer: pre
runpy.run_path(root + "/convert_hf_to_gguf.py", run_name="__main__")
"""


def converted(tmp: str, converter: str) -> None:
    """llama.cpp's converter -> our import, against transformers on the HF folder it converted."""
    import json

    import transformers
    from interop_common import make_hf_folder  # noqa: F401 (puts tests/core on the path)
    from interop_models import SAMPLE, tiny_hf_model
    from tokenizers import Tokenizer

    from core.generate import load_model, load_tokenizer_for
    from core.layout import latest_checkpoint

    script = os.path.join(tmp, "convert.py")
    with open(script, "w", encoding="utf-8") as fh:
        fh.write(CONVERT)
    print(f"\n{'llama.cpp converter -> import':30s} {'type':5s} {'ids':4s} {'max |dlogit|':>12s} {'rel RMS':>8s}")
    for kind in ("gpt2", "llama", "qwen2", "qwen3"):
        hf_dir = os.path.join(tmp, f"hf-{kind}")
        tiny_hf_model(kind, hf_dir)
        with open(os.path.join(hf_dir, "config.json"), encoding="utf-8") as fh:
            config = json.load(fh)
        config.setdefault("n_ctx", config.get("n_positions"))  # the converter reads GPT-2's n_ctx
        with open(os.path.join(hf_dir, "config.json"), "w", encoding="utf-8") as fh:
            json.dump(config, fh)
        hf = transformers.AutoModelForCausalLM.from_pretrained(hf_dir).eval()
        source = Tokenizer.from_file(os.path.join(hf_dir, "tokenizer.json"))
        for dtype in ("f32", "q8_0"):
            gguf_path = os.path.join(tmp, f"conv-{kind}-{dtype}.gguf")
            subprocess.run([sys.executable, script, os.path.dirname(os.path.abspath(converter)),
                            "qwen2" if kind in ("qwen2", "qwen3") else "gpt-2", hf_dir, "--outfile", gguf_path,
                            "--outtype", dtype], check=True, capture_output=True)
            out = os.path.join(tmp, f"imp-{kind}-{dtype}")
            assert cli(["import", gguf_path, "--out", out]) == 0
            path = latest_checkpoint(out)
            model, meta = load_model(path)
            tok = load_tokenizer_for(path, meta)
            same = tok.encode(SAMPLE) == source.encode(SAMPLE, add_special_tokens=False).ids
            ids = torch.tensor([source.encode(SAMPLE).ids[:60]])
            with torch.no_grad():
                want, got = hf(ids).logits, model(ids)[0]
            rel = ((got - want).pow(2).mean() / want.pow(2).mean()).sqrt().item()
            print(f"{kind:30s} {dtype:5s} {'=' if same else 'DIFF':4s} {(got - want).abs().max().item():12.2e} "
                  f"{rel:8.1e}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--speed", action="store_true", help="also time greedy generation against llama.cpp")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--converter", help="llama.cpp's convert_hf_to_gguf.py: also check its files in our import")
    args = ap.parse_args()
    try:
        import llama_cpp
    except ImportError:
        sys.exit("this check needs llama-cpp-python: pip install llama-cpp-python")
    with tempfile.TemporaryDirectory() as tmp:
        check(tmp, llama_cpp)
        lora(tmp, llama_cpp)
        if args.speed:
            speed(tmp, llama_cpp, args.threads, args.new_tokens)
        if args.converter:
            converted(tmp, args.converter)


if __name__ == "__main__":
    main()
