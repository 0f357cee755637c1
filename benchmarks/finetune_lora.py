"""LoRA fine-tuning speed and memory: our engine against transformers + peft on the same model.

Both sides: a Llama-shaped model (default SmolLM-135M's shape: 30 layers, width 576, 9 query / 3 key-value
heads, SwiGLU 1536, vocab 49152, tied embeddings, RoPE, RMSNorm), random weights, the same batch of random
token ids, LoRA rank/alpha on the same projections (q,k,v + o by default; ours fuses q,k,v into one
matrix, so its one adapter on qkv has the same rank per projection group), AdamW over the adapters only,
bf16 autocast on CUDA (ours keeps the frozen projections in bf16, as its bf16 LoRA runs do); on a CPU fp32, or bf16 autocast on both sides with `--precision bf16` (what
`precision: auto` picks on a CPU with AMX). Each side warms up for a few steps, then times `--steps`
optimizer steps; the figures are trained tokens per second and peak memory (CUDA: max allocated; CPU: the
peak resident set of the process, each side running in its own child process so that neither inherits the
other's high-water mark), and the ratios ours / theirs. With `--repeat N` the children alternate (ours,
peft, ours, ...) and the medians are reported, so that a busy moment on a shared machine hits both.

    python benchmarks/finetune_lora.py                          # on the GPU if there is one
    python benchmarks/finetune_lora.py --device cpu --n-layer 4 --steps 3   # a quick CPU check
    python benchmarks/finetune_lora.py --device cpu --precision bf16 --seq 512 --batch 2 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import torch

sys.path.insert(0, __file__.rsplit("/benchmarks/", 1)[0])

from core.config import ModelConfig  # noqa: E402
from core.lora import apply_lora, frozen_to  # noqa: E402
from core.model import GPT  # noqa: E402


def _timed(step, a) -> dict:
    for _ in range(a.warmup):
        step()
    if a.device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    if a.device == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    if a.device == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:  # ru_maxrss is in KiB on Linux
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"tokens_per_s": a.batch * a.seq * a.steps / dt, "peak_mib": peak}


def _ctx(a):
    if a.device == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.precision == "bf16")


def run_ours(a, x: torch.Tensor) -> dict:
    cfg = ModelConfig(n_layer=a.n_layer, n_head=9, n_kv_head=3, n_embd=576, block_size=a.seq, vocab_size=49152,
                      bias=False, pos_encoding="rope", norm="rmsnorm", activation="swiglu", intermediate_size=1536,
                      tie_embeddings=True)
    torch.manual_seed(0)
    model = apply_lora(GPT(cfg).to(a.device), a.rank, 2.0 * a.rank, 0.0, ["attn_qkv", "attn_out"])
    if a.device == "cuda" or a.precision == "bf16":  # as a bf16 LoRA run does (core.trainer_setup)
        frozen_to(model, torch.bfloat16)
    model.grad_checkpointing = a.grad_checkpointing
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    def step():
        with _ctx(a):
            _, loss, _ = model(x[:, :-1], x[:, 1:])
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return _timed(step, a)


def run_peft(a, x: torch.Tensor) -> dict:
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=a.n_layer,
                      num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=a.seq,
                      tie_word_embeddings=True, attn_implementation="sdpa")
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg).to(a.device)
    if a.grad_checkpointing:
        model.gradient_checkpointing_enable()
    model = get_peft_model(model, LoraConfig(r=a.rank, lora_alpha=2 * a.rank, lora_dropout=0.0,
                                             target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    def step():
        with _ctx(a):
            loss = model(input_ids=x[:, :-1], labels=x[:, :-1]).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return _timed(step, a)


def _child(side: str) -> dict:
    """Run one side in a fresh process (its own peak memory), with this process's arguments."""
    out = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--side", side], check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--n-layer", type=int, default=30)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=1024)
    p.add_argument("--rank", type=int, default=16)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--grad-checkpointing", action="store_true")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="on a CPU: fp32, or bf16 autocast on both sides (CUDA always runs bf16 autocast)")
    p.add_argument("--repeat", type=int, default=1, help="alternating child runs per side (medians)")
    p.add_argument("--side", choices=("ours", "peft"), default=None, help=argparse.SUPPRESS)  # one child's side
    a = p.parse_args()
    if a.side:
        x = torch.randint(0, 49152, (a.batch, a.seq + 1), generator=torch.Generator().manual_seed(0)).to(a.device)
        print(json.dumps((run_ours if a.side == "ours" else run_peft)(a, x)))
        return
    runs = {"ours": [], "peft": []}
    for _ in range(max(1, a.repeat)):
        for side in runs:
            runs[side].append(_child(side))
    ours, theirs = ({k: statistics.median(r[k] for r in runs[side]) for k in ("tokens_per_s", "peak_mib")}
                    for side in ("ours", "peft"))
    ratio = ours["tokens_per_s"] / theirs["tokens_per_s"]
    print(json.dumps({"args": vars(a), "runs": runs, "ours": ours, "peft": theirs, "speed_ratio": round(ratio, 3),
                      "memory_ratio": (round(theirs["peak_mib"] / ours["peak_mib"], 3)
                                       if ours["peak_mib"] else None)}, indent=1))


if __name__ == "__main__":
    main()
