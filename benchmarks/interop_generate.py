"""Generation speed of an imported model: a random-weight 135M Llama-shaped HF folder is imported with
`llm-train import`; our KV-cache generation and transformers' `generate` then run on the same weights, batch
1, greedy, fp32, 128 new tokens from the same prompt, same thread count. The figure is new tokens per second
and the ratio ours / transformers: the median of --repeat runs of each side, interleaved (ours, theirs, ours,
...) so that a busy moment on a shared machine hits both, after a short warm-up.

At this size both sides stream every fp32 weight once per token, so memory bandwidth bounds them: the script
also measures the machine's copy bandwidth and prints the tokens/s that it allows (weights bytes / bandwidth),
so the distance of each side to that limit is visible.

    python benchmarks/interop_generate.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import torch
from interop_common import make_hf_folder

from core.cli import main as cli
from core.generate import SampleParams, generate_steps, load_model
from core.layout import latest_checkpoint


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--repeat", type=int, default=3, help="timed runs of each side, interleaved (median)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    import transformers

    prompt = list(range(3, 19))
    with tempfile.TemporaryDirectory() as tmp:
        n = make_hf_folder(os.path.join(tmp, "hf"))
        assert cli(["import", os.path.join(tmp, "hf"), "--out", os.path.join(tmp, "imp")]) == 0
        ours, _ = load_model(latest_checkpoint(os.path.join(tmp, "imp")))
        hf = transformers.AutoModelForCausalLM.from_pretrained(os.path.join(tmp, "hf"), dtype=torch.float32).eval()
    p = SampleParams(max_new_tokens=a.new_tokens, temperature=0.0)
    x = torch.tensor([prompt])

    def run_ours() -> tuple[float, list[int]]:
        t0 = time.perf_counter()
        ids = [s.token_id for s in generate_steps(ours, prompt, p)]
        return time.perf_counter() - t0, ids

    def run_hf() -> tuple[float, torch.Tensor]:
        with torch.inference_mode():
            t0 = time.perf_counter()
            out = hf.generate(x, do_sample=False, max_new_tokens=a.new_tokens, min_new_tokens=a.new_tokens,
                              pad_token_id=0)
            return time.perf_counter() - t0, out

    list(generate_steps(ours, prompt, SampleParams(max_new_tokens=4, temperature=0.0)))
    with torch.inference_mode():
        hf.generate(x, do_sample=False, max_new_tokens=4, min_new_tokens=4, pad_token_id=0)
    t_ours, t_hf = [], []
    for _ in range(a.repeat):
        dt, mine = run_ours()
        t_ours.append(dt)
        dt, out = run_hf()
        t_hf.append(dt)
    t_ours, t_hf = statistics.median(t_ours), statistics.median(t_hf)
    weight_bytes = sum(t.numel() * t.element_size() for t in ours.parameters())
    bound = copy_bandwidth() / weight_bytes
    theirs = out[0, len(prompt):].tolist()
    same = sum(m == t for m, t in zip(mine, theirs, strict=True))
    print(f"model                {n / 1e6:.1f}M parameters (random), batch 1, {a.new_tokens} new tokens, "
          f"{a.threads} threads")
    print(f"ours                 {a.new_tokens / t_ours:.1f} tokens/s")
    print(f"transformers         {a.new_tokens / t_hf:.1f} tokens/s")
    print(f"ratio ours / HF      {t_hf / t_ours:.2f}x   (greedy tokens identical: {same}/{a.new_tokens}; "
          f"median of {a.repeat})")
    print(f"memory-bound limit   {bound:.1f} tokens/s   ({weight_bytes / 2**20:.0f} MiB of weights read per token"
          f" at the measured copy bandwidth): ours {a.new_tokens / t_ours / bound:.0%} of it, "
          f"transformers {a.new_tokens / t_hf / bound:.0%}")


def copy_bandwidth(mib: int = 512, runs: int = 5) -> float:
    """Bytes per second moved by a large tensor copy (read + write), the best of a few runs."""
    src = torch.rand(mib * 2**18)
    dst = torch.empty_like(src)
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        dst.copy_(src)
        best = min(best, time.perf_counter() - t0)
    return 2 * src.numel() * src.element_size() / best


if __name__ == "__main__":
    sys.exit(main())
