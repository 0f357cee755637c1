"""A random-weight Llama-shaped Hugging Face folder for the interop benchmarks (SmolLM-135M's shape by
default: 30 layers, 576 wide, 9 query / 3 key-value heads, SwiGLU 1536, vocab 49152, tied embeddings)."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, __file__.rsplit("/benchmarks/", 1)[0])
sys.path.insert(0, os.path.join(__file__.rsplit("/benchmarks/", 1)[0], "tests", "core"))

SHAPE_135M = dict(hidden_size=576, num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
                  intermediate_size=1536, vocab_size=49152, max_position_embeddings=2048, tie_word_embeddings=True,
                  rms_norm_eps=1e-5, rope_theta=10000.0)


def make_hf_folder(folder: str, **shape) -> int:
    """Save a random LlamaForCausalLM of `shape` (default 135M) with a small tokenizer; returns its size."""
    import torch
    import transformers
    from interop_models import save_tokenizer

    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(**{**SHAPE_135M, **shape})
    with torch.no_grad():
        model = transformers.LlamaForCausalLM(cfg).eval()
    model.save_pretrained(folder)
    save_tokenizer(folder)  # 400 tokens: the benchmark is about weights, ids stay below vocab_size
    return sum(p.numel() for p in model.parameters())
