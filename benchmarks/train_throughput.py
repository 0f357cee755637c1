"""Training throughput: our GPT + trainer step against Hugging Face transformers' GPT2LMHeadModel.

Same shape (layers, heads, width, context, vocab), same batch, same optimizer (AdamW, fused where
available, identical weight-decay groups), same thread count, dropout 0. The two are timed in
alternation (A B A B ...) in one process so machine drift hits both alike; the figure is the ratio of
medians. Our side runs the trainer's real step pieces (autocast context, clipping, optimizer).

Precision: transformers runs in fp32 (its default); ours in `--precision` (default fp32), resolved as the
trainer resolves `train.precision` (`auto` = bf16 autocast on a CPU with native bf16 and n_embd >= 256,
else fp32; the reason is printed).

Beside tokens/s, each side's achieved FLOP/s (the trainer's 6N + 12 L T d FLOPs per token, as in its MFU) is
printed next to the machine's measured matmul peak (a large square matmul timed in the same run, fp32, and
bf16 when ours trains in bf16), so the distance to the limit is visible.

    python benchmarks/train_throughput.py                      # 6 layers, 384 wide, T=256, batch 12
    python benchmarks/train_throughput.py --precision auto     # ours as `precision: auto` trains it
    python benchmarks/train_throughput.py --n-layer 4 --n-embd 128 --block-size 128 --batch 16
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

sys.path.insert(0, __file__.rsplit("/benchmarks/", 1)[0])

from core.config import ModelConfig  # noqa: E402
from core.estimate import flops_per_token  # noqa: E402
from core.model import GPT  # noqa: E402
from core.train import clip_gradients  # noqa: E402
from core.trainer_setup import autocast_ctx, resolve_precision  # noqa: E402


def model_config(a) -> ModelConfig:
    return ModelConfig(n_layer=a.n_layer, n_head=a.n_head, n_embd=a.n_embd, block_size=a.block_size,
                       vocab_size=a.vocab, dropout=0.0, bias=True, tie_embeddings=True)


def make_ours(a, precision: str):
    model = GPT(model_config(a))
    opt = model.make_optimizer(a.lr, 0.1, (0.9, 0.95), 1e-8, "cpu")
    ctx = autocast_ctx("cpu", precision)

    def step(x, y):
        with ctx:
            _, loss, _ = model(x, y)
        loss.backward()
        clip_gradients(model, 1.0, "norm")
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    return model, step


def make_hf(a):
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = GPT2Config(vocab_size=a.vocab, n_positions=a.block_size, n_embd=a.n_embd, n_layer=a.n_layer,
                     n_head=a.n_head, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, use_cache=False)
    model = GPT2LMHeadModel(cfg)
    model.train()
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=a.lr, betas=(0.9, 0.95), eps=1e-8, fused=True)

    def step(x, y):
        # labels=inputs shifted inside HF; pass x+next token as one sequence of T+1? Keep shapes equal:
        # HF predicts positions 1..T-1 from x; we feed the same x and its labels x (HF shifts internally).
        out = model(input_ids=x, labels=x)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return out.loss.item()

    return model, step


def matmul_peak(dtype: torch.dtype, n: int = 2048, reps: int = 5) -> float:
    """FLOP/s of the best of `reps` n x n x n matmuls in `dtype` (the practical peak of this machine)."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n ** 3 / best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-layer", type=int, default=6)
    p.add_argument("--n-head", type=int, default=6)
    p.add_argument("--n-embd", type=int, default=384)
    p.add_argument("--block-size", type=int, default=256)
    p.add_argument("--vocab", type=int, default=65, help="65 = character-level Shakespeare")
    p.add_argument("--batch", type=int, default=12)
    p.add_argument("--steps", type=int, default=8, help="timed steps per side")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--precision", choices=("fp32", "bf16", "auto"), default="fp32",
                   help="our side's train.precision (transformers stays fp32)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    precision, why = resolve_precision(a.precision, "cpu", a.n_embd)
    ours_model, ours = make_ours(a, precision)
    hf_model, hf = make_hf(a)
    n_ours = sum(p.numel() for p in ours_model.parameters())
    n_hf = sum(p.numel() for p in hf_model.parameters())
    x = torch.randint(0, a.vocab, (a.batch, a.block_size))
    y = torch.randint(0, a.vocab, (a.batch, a.block_size))
    for _ in range(a.warmup):
        ours(x, y)
        hf(x, y)
    times = {"ours": [], "hf": []}
    for _ in range(a.steps):
        for name, fn in (("ours", ours), ("hf", hf)):
            t0 = time.perf_counter()
            fn(x, y)
            times[name].append(time.perf_counter() - t0)
    tokens = a.batch * a.block_size
    med = {k: statistics.median(v) for k, v in times.items()}
    flops = flops_per_token(model_config(a), a.vocab)
    peaks = {"fp32": matmul_peak(torch.float32)}
    if precision == "bf16":
        peaks["bf16"] = matmul_peak(torch.bfloat16)
    print(f"shape: {a.n_layer} layers, {a.n_head} heads, {a.n_embd} wide, T={a.block_size}, vocab {a.vocab}, "
          f"batch {a.batch}, {a.threads} threads; params ours {n_ours / 1e6:.2f}M, hf {n_hf / 1e6:.2f}M")
    print(f"precision: ours {precision} ({why}); hf fp32")
    print("matmul peak (2048^3, best of 5): " + ", ".join(f"{k} {v / 1e9:,.0f} GFLOP/s" for k, v in peaks.items()))
    for name, prec in (("ours", precision), ("hf", "fp32")):
        v = times[name]
        achieved = flops * tokens / med[name]
        print(f"{name:5s}: {med[name] * 1000:8.1f} ms/step (min {min(v) * 1000:.1f}, max {max(v) * 1000:.1f}), "
              f"{tokens / med[name]:,.0f} tokens/s, {achieved / 1e9:,.0f} GFLOP/s = "
              f"{100 * achieved / peaks[prec]:.0f}% of the {prec} matmul peak")
    print(f"ratio (ours tokens/s / hf tokens/s): {med['hf'] / med['ours']:.2f}x")


if __name__ == "__main__":
    main()
