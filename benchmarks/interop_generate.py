"""Generation speed of an imported model: a random-weight 135M Llama-shaped HF folder is imported with
`llm-train import`; our KV-cache generation and transformers' `generate` then run on the same weights, batch
1, greedy, fp32, 128 new tokens from the same prompt, same thread count. The figure is new tokens per second
and the ratio ours / transformers: the median of --repeat runs of each side, interleaved (ours, theirs, ours,
...) so that a busy moment on a shared machine hits both, after a short warm-up.

At this size both sides stream every fp32 weight once per token, so memory bandwidth bounds them: the script
also measures the machine's copy bandwidth and prints the tokens/s that it allows (weights bytes / bandwidth),
so the distance of each side to that limit is visible.

With --dtypes float32,bfloat16 (the default) both sides also run with bf16 weights (ours: `llm-train generate
--dtype bfloat16`, the studio's workers likewise, with its Linear layers prepacked for oneDNN on a CPU with
native bf16, see core/cpu_linear.py; transformers: `dtype=torch.bfloat16`): half the bytes per token.

    python benchmarks/interop_generate.py [--repeat 3] [--dtypes float32,bfloat16] [--device cuda]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import torch
from device_sync import sync
from interop_common import make_hf_folder

from core.cli import main as cli
from core.generate import DTYPES, SampleParams, generate_steps, load_for_generation
from core.layout import latest_checkpoint


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--repeat", type=int, default=3, help="timed runs of each side, interleaved (median)")
    ap.add_argument("--dtypes", default="float32,bfloat16", help="the weight dtypes to compare, each on both sides")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    import transformers

    prompt = list(range(3, 19))
    with tempfile.TemporaryDirectory() as tmp:
        n = make_hf_folder(os.path.join(tmp, "hf"))
        assert cli(["import", os.path.join(tmp, "hf"), "--out", os.path.join(tmp, "imp")]) == 0
        path = latest_checkpoint(os.path.join(tmp, "imp"))
        sides = {name: (load_for_generation(path, a.device, DTYPES[name])[0],
                        transformers.AutoModelForCausalLM.from_pretrained(os.path.join(tmp, "hf"),
                                                                          dtype=DTYPES[name]).eval().to(a.device))
                 for name in a.dtypes.split(",")}
    bandwidth = copy_bandwidth(device=a.device)
    where = torch.cuda.get_device_name() if a.device.startswith("cuda") else f"{a.threads} threads"
    print(f"model                {n / 1e6:.1f}M parameters (random), batch 1, {a.new_tokens} new tokens, "
          f"{where}, median of {a.repeat} interleaved runs")
    for name, (ours, hf) in sides.items():
        t_ours, t_hf, same = compare(ours, hf, prompt, a.new_tokens, a.repeat, a.device)
        weight_bytes = sum(t.numel() * t.element_size() for t in hf.parameters())  # ours may be prepacked
        bound = bandwidth / weight_bytes
        print(f"{name:9s} ours {a.new_tokens / t_ours:6.1f} tokens/s   transformers {a.new_tokens / t_hf:6.1f} tokens/s"
              f"   ratio {t_hf / t_ours:.2f}x   (greedy tokens identical: {same}/{a.new_tokens})")
        print(f"{'':9s} memory-bound limit {bound:.1f} tokens/s ({weight_bytes / 2**20:.0f} MiB read per token at the"
              f" measured copy bandwidth): ours {a.new_tokens / t_ours / bound:.0%}, transformers "
              f"{a.new_tokens / t_hf / bound:.0%}")


def compare(ours, hf, prompt: list[int], new: int, repeat: int, device: str = "cpu") -> tuple[float, float, int]:
    """Median seconds of ours and of transformers' generate (interleaved), and how many greedy tokens agree."""
    p = SampleParams(max_new_tokens=new, temperature=0.0)
    x = torch.tensor([prompt], device=device)

    def run_hf(k: int) -> torch.Tensor:
        with torch.inference_mode():
            return hf.generate(x, do_sample=False, max_new_tokens=k, min_new_tokens=k, pad_token_id=0)

    list(generate_steps(ours, prompt, SampleParams(max_new_tokens=4, temperature=0.0)))  # warm-up
    run_hf(4)
    t_ours, t_hf = [], []
    for _ in range(repeat):
        sync(device)
        t0 = time.perf_counter()
        mine = [s.token_id for s in generate_steps(ours, prompt, p)]
        sync(device)
        t_ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        theirs = run_hf(new)[0, len(prompt):].tolist()
        sync(device)
        t_hf.append(time.perf_counter() - t0)
    same = sum(m == t for m, t in zip(mine, theirs, strict=True))
    return statistics.median(t_ours), statistics.median(t_hf), same


def copy_bandwidth(mib: int = 512, runs: int = 5, device: str = "cpu") -> float:
    """Bytes per second moved by a large tensor copy (read + write), the best of a few runs."""
    src = torch.rand(mib * 2**18, device=device)
    dst = torch.empty_like(src)
    best = float("inf")
    for _ in range(runs):
        sync(device)
        t0 = time.perf_counter()
        dst.copy_(src)
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * src.numel() * src.element_size() / best


if __name__ == "__main__":
    sys.exit(main())
