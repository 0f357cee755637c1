"""Generation speed: our KV-cache generation against Hugging Face transformers' `generate`.

Same shape (layers, heads, width, context, vocab), random weights, batch 1, greedy, fp32, KV cache on
both sides, the same prompt, the same thread count, no gradients. Each side runs once after a short
warm-up (a few tokens, so first-call allocations and lazy imports are not timed); the figure is new tokens
per second and the ratio ours / HF.

    python benchmarks/generate_speed.py                  # 4 layers, 128 wide, vocab 512 (the studio's small end)
    python benchmarks/generate_speed.py --n-layer 6 --n-head 6 --n-embd 384 --vocab 1024   # 10.6M params
    python benchmarks/generate_speed.py --device cuda --dtype bfloat16 --hf-dtype same \
        --n-layer 12 --n-head 12 --n-embd 768 --vocab 50304 --block-size 1024   # GPT-2 small on a GPU

At the small end HF's per-token Python overhead dominates; at 10M parameters both sides are bound by
memory bandwidth (fp32 weights streamed once per token) and the ratio tends to 1. On a shared 2-core
machine, another busy process makes OpenMP threads wait on each other: compare runs taken at quiet
moments, or pass --threads 1.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
from device_sync import sync

sys.path.insert(0, __file__.rsplit("/benchmarks/", 1)[0])

from core.config import ModelConfig  # noqa: E402
from core.cpu_linear import pack_linears  # noqa: E402
from core.generate import SampleParams, generate_steps, inference_dtype  # noqa: E402
from core.model import GPT  # noqa: E402


def run_ours(a, prompt: list[int]) -> tuple[float, list[int]]:
    cfg = ModelConfig(n_layer=a.n_layer, n_head=a.n_head, n_embd=a.n_embd, block_size=a.block_size,
                      vocab_size=a.vocab, dropout=0.0, bias=True, tie_embeddings=True)
    torch.manual_seed(0)
    model = GPT(cfg).eval().to(device=a.device, dtype=inference_dtype(a.dtype, a.device))
    if a.device == "cpu":
        pack_linears(model)  # as `llm-train generate` and the studio do (bf16 on a CPU with native bf16)
    p = SampleParams(max_new_tokens=a.new_tokens, temperature=0.0, use_cache=True)
    warm = SampleParams(max_new_tokens=4, temperature=0.0, use_cache=True)
    list(generate_steps(model, prompt, warm))
    sync(a.device)
    t0 = time.perf_counter()
    out = [s.token_id for s in generate_steps(model, prompt, p)]
    sync(a.device)
    return time.perf_counter() - t0, out


def run_hf(a, prompt: list[int]) -> tuple[float, list[int]]:
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = GPT2Config(vocab_size=a.vocab, n_positions=a.block_size, n_embd=a.n_embd, n_layer=a.n_layer,
                     n_head=a.n_head, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, use_cache=True,
                     bos_token_id=0, eos_token_id=None, pad_token_id=0)
    torch.manual_seed(0)
    dtype = inference_dtype(a.dtype, a.device) if a.hf_dtype == "same" else torch.float32
    model = GPT2LMHeadModel(cfg).eval().to(device=a.device, dtype=dtype)
    x = torch.tensor([prompt], device=a.device)
    kwargs = dict(do_sample=False, use_cache=True, pad_token_id=0, eos_token_id=None,
                  attention_mask=torch.ones_like(x))
    with torch.no_grad():
        model.generate(x, max_new_tokens=4, min_new_tokens=4, **kwargs)
        sync(a.device)
        t0 = time.perf_counter()
        out = model.generate(x, max_new_tokens=a.new_tokens, min_new_tokens=a.new_tokens, **kwargs)
        sync(a.device)
        dt = time.perf_counter() - t0
    return dt, out[0, len(prompt):].tolist()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-layer", type=int, default=4)
    ap.add_argument("--n-head", type=int, default=4)
    ap.add_argument("--n-embd", type=int, default=128)
    ap.add_argument("--block-size", type=int, default=512)
    ap.add_argument("--vocab", type=int, default=512)
    ap.add_argument("--new-tokens", type=int, default=256)
    ap.add_argument("--prompt-tokens", type=int, default=16)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--dtype", choices=("float32", "bfloat16", "auto"), default="float32",
                    help="our weights and KV cache (`llm-train generate --dtype`; auto = bf16 on a CPU with native "
                         "bf16); HF stays at its default fp32")
    ap.add_argument("--hf-dtype", choices=("float32", "same"), default="float32",
                    help="HF's weights: fp32 (its default) or the same dtype as ours (on a GPU)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--repeat", type=int, default=1,
                    help="timed runs per side, alternating ours/HF; the median is reported (default: one run)")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    if a.prompt_tokens + a.new_tokens > a.block_size:
        ap.error("prompt + new tokens must fit in block_size (no context shift in this comparison)")
    prompt = [(7 * i + 3) % a.vocab for i in range(a.prompt_tokens)]

    times_ours, times_hf = [], []
    for _ in range(max(1, a.repeat)):
        t_ours, out_ours = run_ours(a, prompt)
        t_hf, out_hf = run_hf(a, prompt)
        times_ours.append(t_ours)
        times_hf.append(t_hf)
    t_ours, t_hf = statistics.median(times_ours), statistics.median(times_hf)
    assert len(out_ours) == len(out_hf) == a.new_tokens, (len(out_ours), len(out_hf))
    ours, hf = a.new_tokens / t_ours, a.new_tokens / t_hf
    print(f"shape: n_layer={a.n_layer} n_head={a.n_head} n_embd={a.n_embd} n_positions={a.block_size} "
          f"vocab={a.vocab}; batch 1, prompt {a.prompt_tokens} tokens, {a.new_tokens} new tokens, greedy, "
          f"KV cache, ours {inference_dtype(a.dtype, a.device)} / HF "
          f"{inference_dtype(a.dtype, a.device) if a.hf_dtype == 'same' else torch.float32}, "
          f"{torch.cuda.get_device_name() if a.device.startswith('cuda') else f'{torch.get_num_threads()} threads'}, "
          f"torch {torch.__version__}")
    print(f"ours: {ours:8.1f} tokens/s ({t_ours:.2f} s)")
    print(f"HF:   {hf:8.1f} tokens/s ({t_hf:.2f} s)")
    print(f"ratio ours/HF: {ours / hf:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
