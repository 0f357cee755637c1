"""Generation speed of an imported model: a random-weight 135M Llama-shaped HF folder is imported with
`llm-train import`; our KV-cache generation and transformers' `generate` then run on the same weights, batch
1, greedy, fp32, 128 new tokens from the same prompt, same thread count. The figure is new tokens per second
and the ratio ours / transformers (one run each after a short warm-up).

    python benchmarks/interop_generate.py
"""

from __future__ import annotations

import argparse
import os
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
    list(generate_steps(ours, prompt, SampleParams(max_new_tokens=4, temperature=0.0)))
    t0 = time.perf_counter()
    mine = [s.token_id for s in generate_steps(ours, prompt, p)]
    t_ours = time.perf_counter() - t0
    x = torch.tensor([prompt])
    with torch.inference_mode():
        hf.generate(x, do_sample=False, max_new_tokens=4, min_new_tokens=4, pad_token_id=0)
        t0 = time.perf_counter()
        out = hf.generate(x, do_sample=False, max_new_tokens=a.new_tokens, min_new_tokens=a.new_tokens,
                          pad_token_id=0)
        t_hf = time.perf_counter() - t0
    theirs = out[0, len(prompt):].tolist()
    same = sum(m == t for m, t in zip(mine, theirs, strict=True))
    print(f"model                {n / 1e6:.1f}M parameters (random), batch 1, {a.new_tokens} new tokens, "
          f"{a.threads} threads")
    print(f"ours                 {a.new_tokens / t_ours:.1f} tokens/s")
    print(f"transformers         {a.new_tokens / t_hf:.1f} tokens/s")
    print(f"ratio ours / HF      {t_hf / t_ours:.2f}x   (greedy tokens identical: {same}/{a.new_tokens})")


if __name__ == "__main__":
    sys.exit(main())
