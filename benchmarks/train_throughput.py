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

On a GPU (`--device cuda`; see benchmarks/gpu_checks.sh): `--hf-precision same` gives transformers the same
autocast as ours, `--compile` compiles both models (torch.compile), and the peak is a bf16 (or fp32) 8192^3
matmul timed on the device, so the percentage is the model FLOPs utilisation (MFU) against what this GPU
reaches, beside the nominal figure where known (H100 SXM: 989 TFLOP/s dense bf16):

    python benchmarks/train_throughput.py --device cuda --precision bf16 --hf-precision same \
        --n-layer 12 --n-head 12 --n-embd 768 --block-size 1024 --batch 8 --vocab 50304 [--compile]
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
from core.estimate import flops_per_token  # noqa: E402
from core.model import GPT  # noqa: E402
from core.train import clip_gradients  # noqa: E402
from core.trainer_setup import autocast_ctx, resolve_precision  # noqa: E402


def model_config(a) -> ModelConfig:
    return ModelConfig(n_layer=a.n_layer, n_head=a.n_head, n_embd=a.n_embd, block_size=a.block_size,
                       vocab_size=a.vocab, dropout=0.0, bias=True, tie_embeddings=True)


def make_ours(a, precision: str):
    model = GPT(model_config(a)).to(a.device)
    opt = model.make_optimizer(a.lr, 0.1, (0.9, 0.95), 1e-8, a.device)
    ctx = autocast_ctx(a.device, precision)
    forward = torch.compile(model) if a.compile else model

    def step(x, y):
        with ctx:
            _, loss, _ = forward(x, y)
        loss.backward()
        clip_gradients(model, 1.0, "norm")
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    return model, step


def make_hf(a, precision: str):
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = GPT2Config(vocab_size=a.vocab, n_positions=a.block_size, n_embd=a.n_embd, n_layer=a.n_layer,
                     n_head=a.n_head, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, use_cache=False)
    model = GPT2LMHeadModel(cfg).to(a.device)
    model.train()
    ctx = autocast_ctx(a.device, precision)
    forward = torch.compile(model) if a.compile else model
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=a.lr, betas=(0.9, 0.95), eps=1e-8, fused=True)

    def step(x, y):
        # labels=inputs shifted inside HF; pass x+next token as one sequence of T+1? Keep shapes equal:
        # HF predicts positions 1..T-1 from x; we feed the same x and its labels x (HF shifts internally).
        with ctx:
            out = forward(input_ids=x, labels=x)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return out.loss.item()

    return model, step


def matmul_peak(dtype: torch.dtype, device: str = "cpu", reps: int = 5) -> float:
    """FLOP/s of the best of `reps` n x n x n matmuls in `dtype` (the practical peak of this machine):
    n = 2048 on a CPU, 8192 on a GPU."""
    n = 8192 if device.startswith("cuda") else 2048
    a, b = torch.randn(n, n, device=device).to(dtype), torch.randn(n, n, device=device).to(dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(reps):
        sync(device)
        t0 = time.perf_counter()
        torch.mm(a, b)
        sync(device)
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
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16", "auto"), default="fp32",
                   help="our side's train.precision")
    p.add_argument("--hf-precision", choices=("fp32", "same"), default="fp32",
                   help="transformers' precision: fp32 (its default), or the same autocast as ours (GPU)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--compile", action="store_true", help="torch.compile both models")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    precision, why = resolve_precision(a.precision, a.device, a.n_embd)
    hf_precision = precision if a.hf_precision == "same" else "fp32"
    ours_model, ours = make_ours(a, precision)
    hf_model, hf = make_hf(a, hf_precision)
    n_ours = sum(p.numel() for p in ours_model.parameters())
    n_hf = sum(p.numel() for p in hf_model.parameters())
    x = torch.randint(0, a.vocab, (a.batch, a.block_size), device=a.device)
    y = torch.randint(0, a.vocab, (a.batch, a.block_size), device=a.device)
    for _ in range(a.warmup):  # with --compile the first steps compile
        ours(x, y)
        hf(x, y)
    times = {"ours": [], "hf": []}
    for _ in range(a.steps):
        for name, fn in (("ours", ours), ("hf", hf)):
            sync(a.device)
            t0 = time.perf_counter()
            fn(x, y)  # .item() of the loss waits for the step on a GPU too
            sync(a.device)
            times[name].append(time.perf_counter() - t0)
    tokens = a.batch * a.block_size
    med = {k: statistics.median(v) for k, v in times.items()}
    flops = flops_per_token(model_config(a), a.vocab)
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
    peaks = {k: matmul_peak(dtypes[k], a.device) for k in sorted({precision, hf_precision})}
    device = torch.cuda.get_device_name() if a.device.startswith("cuda") else f"cpu, {a.threads} threads"
    print(f"shape: {a.n_layer} layers, {a.n_head} heads, {a.n_embd} wide, T={a.block_size}, vocab {a.vocab}, "
          f"batch {a.batch}, {device}{', compiled' if a.compile else ''}; params ours {n_ours / 1e6:.2f}M, "
          f"hf {n_hf / 1e6:.2f}M")
    print(f"precision: ours {precision} ({why}); hf {hf_precision}")
    print("matmul peak (best of 5): " + ", ".join(f"{k} {v / 1e9:,.0f} GFLOP/s" for k, v in peaks.items()))
    for name, prec in (("ours", precision), ("hf", hf_precision)):
        v = times[name]
        achieved = flops * tokens / med[name]
        print(f"{name:5s}: {med[name] * 1000:8.1f} ms/step (min {min(v) * 1000:.1f}, max {max(v) * 1000:.1f}), "
              f"{tokens / med[name]:,.0f} tokens/s, {achieved / 1e9:,.0f} GFLOP/s = "
              f"{100 * achieved / peaks[prec]:.0f}% of the {prec} matmul peak")
    print(f"ratio (ours tokens/s / hf tokens/s): {med['hf'] / med['ours']:.2f}x")


if __name__ == "__main__":
    main()
