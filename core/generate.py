"""Generation (KV cache, sampling) and attention extraction: a library (the commands live in core.commands).

Sampling order per token: repetition penalty -> temperature -> top-k -> top-p -> draw. Temperature 0 means
greedy. A `torch.Generator` seeded per request makes sampling reproducible.

Context longer than block_size: the cache is re-filled with the last 3/4 of a window ("context shift")
and generation continues; within one window, cached and uncached generation are identical.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from core import checkpoint as ckpt
from core import layout
from core.model import GPT, KVCache


@dataclass
class SampleParams:
    max_new_tokens: int = 200
    temperature: float = 0.8
    top_k: int | None = None
    top_p: float | None = None
    repetition_penalty: float = 1.0
    seed: int | None = None
    use_cache: bool = True
    top_alternatives: int = 0  # how many alternatives (token, prob) to report per token


@dataclass
class Step:
    token_id: int
    prob: float                        # probability of the chosen token under the final distribution
    top: list[tuple[int, float]]       # the most likely alternatives under the model, (token_id, prob)
    model_prob: float | None = None    # the chosen token's probability under the model (softmax of its
                                       # raw logits); with top_alternatives only, like `top`


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def inference_dtype(name: str, device: str) -> torch.dtype:
    """The weights' and KV cache's dtype for generation: `float32`, `bfloat16`, or `auto` = bf16 where
    the hardware computes in it natively (a CUDA GPU with bf16, a CPU with AVX512-BF16/AMX), fp32
    elsewhere. Decoding at batch 1 streams every weight once per token, so halving the bytes is what
    speeds it up; the logits move by bf16 rounding, so greedy text may differ from fp32's."""
    if name == "auto":
        if str(device).startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
        from core.precision import cpu_native_bf16

        return torch.bfloat16 if str(device) == "cpu" and cpu_native_bf16() else torch.float32
    return DTYPES[name]


def load_model(path: str, device: str = "cpu", dtype: torch.dtype = torch.float32) -> tuple[GPT, dict]:
    """A checkpoint's model in eval mode (weights in `dtype`), and its meta.json."""
    layout.require_checkpoint(path)
    meta = layout.read_checkpoint_meta(path)
    if meta.get("lora"):  # an adapter checkpoint: base + adapters, merged (generate, serve, export)
        from core.lora import load_model as load_lora_model
        from core.lora import merge

        model, meta = load_lora_model(path, device)
        return merge(model).to(dtype=dtype).eval(), meta
    try:
        model = GPT(ckpt.model_config(meta, path))
    except (TypeError, ValueError, AssertionError) as exc:  # values of the wrong type or size in meta.json
        raise ckpt.CheckpointError(f"{os.path.join(path, layout.META)}: config.model is not usable: {exc}") from None
    ckpt.load_weights(model, path, device)
    return model.to(device=device, dtype=dtype).eval(), meta


def load_for_generation(path: str, device: str, dtype: torch.dtype) -> tuple[GPT, dict]:
    """`load_model` for generating and inspecting (generate, serve): Linear layers prepacked for oneDNN on
    a CPU where that is faster (core.cpu_linear), which leaves no weights to train or save."""
    from core.cpu_linear import pack_linears

    model, meta = load_model(path, device, dtype)
    pack_linears(model)
    return model, meta


def load_tokenizer_for(path: str, meta: dict):
    """The checkpoint's own tokenizer.json, else the data folder's."""
    from core.tokenizer import load_tokenizer

    if os.path.isfile(os.path.join(path, layout.TOKENIZER)):
        ckpt.verify_file(path, layout.TOKENIZER)
        return load_tokenizer(path)
    data_dir = ((meta.get("config") or {}).get("data") or {}).get("dir")
    if not isinstance(data_dir, str) or not data_dir:
        raise ckpt.CheckpointError(f"checkpoint has no {layout.TOKENIZER} and its meta.json names no data folder:"
                                   f" {path}")
    return load_tokenizer(data_dir)


def next_token_distribution(logits: torch.Tensor, history: list[int], p: SampleParams) -> torch.Tensor:
    """(V,) logits of the last position -> (V,) probabilities after penalty, temperature, top-k, top-p."""
    logits = logits.float().clone()
    if p.repetition_penalty != 1.0 and history:
        seen = torch.tensor(sorted(set(history)), device=logits.device)
        vals = logits[seen]
        logits[seen] = torch.where(vals > 0, vals / p.repetition_penalty, vals * p.repetition_penalty)
    if p.temperature <= 0:
        probs = torch.zeros_like(logits)
        probs[int(torch.argmax(logits))] = 1.0
        return probs
    logits = logits / p.temperature
    if p.top_k:
        kth = torch.topk(logits, min(p.top_k, logits.numel())).values[-1]
        logits[logits < kth] = float("-inf")
    probs = F.softmax(logits, dim=-1)
    if p.top_p is not None and 0 < p.top_p < 1:
        sorted_probs, order = torch.sort(probs, descending=True)
        keep = torch.cumsum(sorted_probs, 0) - sorted_probs < p.top_p  # always keeps the first
        mask = torch.zeros_like(probs, dtype=torch.bool)
        mask[order[keep]] = True
        probs = torch.where(mask, probs, torch.zeros_like(probs))
        probs = probs / probs.sum()
    return probs


@torch.inference_mode()  # cheaper than no_grad: no version counters on the cache tensors
def generate_steps(model: GPT, prompt_ids: list[int], p: SampleParams,
                   should_stop=lambda: False) -> Iterator[Step]:
    """Yield one Step per new token. `should_stop()` is checked between tokens (cancel)."""
    cfg = model.cfg
    device = next(model.parameters()).device
    gen = torch.Generator(device=device)
    gen.manual_seed(p.seed if p.seed is not None else int(torch.randint(0, 2**31 - 1, ()).item()))
    ids = list(prompt_ids) or [0]
    history = list(ids)
    cache = None
    pending = ids[-cfg.block_size:]  # tokens not yet in the cache
    for n in range(p.max_new_tokens):
        if should_stop():
            return
        if p.use_cache:
            if cache is None or cache.pos + len(pending) > cache.k.shape[3]:
                keep = ids[-max(1, (3 * cfg.block_size) // 4):] if cache is not None else pending
                # Room for what this request can still add, not the whole context: an imported model's
                # block_size (say 128k positions) would zero-fill gigabytes for a short reply.
                room = min(cfg.block_size, len(keep) + p.max_new_tokens - n)
                cache = KVCache.empty(cfg, 1, device, next(model.parameters()).dtype, max_len=room)
                pending = keep
            logits, _, _ = model(torch.tensor([pending], device=device), cache=cache, last_only=True)
        else:
            logits, _, _ = model(torch.tensor([ids[-cfg.block_size:]], device=device), last_only=True)
        probs = next_token_distribution(logits[0, -1], history, p)
        if p.temperature <= 0:
            token = int(torch.argmax(probs))
        else:
            token = int(torch.multinomial(probs, 1, generator=gen))
        top, model_prob = [], None
        if p.top_alternatives:
            # The model's own distribution, not the truncated/sharpened one sampled from: under greedy
            # decoding the latter is one-hot and says nothing about how sure the model was.
            model_probs = F.softmax(logits[0, -1].float(), dim=-1)
            vals, idx = torch.topk(model_probs, min(p.top_alternatives, model_probs.numel()))
            top = [(int(i), float(v)) for i, v in zip(idx.tolist(), vals.tolist(), strict=True)]
            model_prob = float(model_probs[token])
        yield Step(token, float(probs[token]), top, model_prob)
        ids.append(token)
        history.append(token)
        pending = [token]


def sample_text(model: GPT, tokenizer, prompt: str, n_tokens: int, device, seed: int = 0,
                stop_ids: frozenset[int] = frozenset()) -> str:
    """A short sample for evaluation events (temperature 0.8, top-k 40), ending after a token of `stop_ids`
    (a fine-tune's end of turn: its answer, not the next turns it would go on to invent)."""
    was_training = model.training
    model.eval()
    p = SampleParams(max_new_tokens=n_tokens, temperature=0.8, top_k=40, seed=seed)
    out = []
    for s in generate_steps(model, tokenizer.encode(prompt), p):
        out.append(s.token_id)
        if s.token_id in stop_ids:
            break
    model.train(was_training)
    return tokenizer.decode(out)


@torch.no_grad()
def attention_maps(model: GPT, ids: list[int]) -> np.ndarray:
    """[n_layer, n_head, T, T] float32 attention probabilities for one sequence (inspection path)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    ids = ids[: model.cfg.block_size]
    _, _, maps = model(torch.tensor([ids], device=device), return_attention=True)
    model.train(was_training)
    return torch.stack([m[0] for m in maps]).float().cpu().numpy()


def probe_attention(model: GPT, tokenizer, text: str, path: str, device=None, max_tokens: int = 64) -> None:
    """Save the attention of `text` (at most max_tokens) as npz {probs, tokens, ids} atomically."""
    ids = tokenizer.encode(text)[:min(max_tokens, model.cfg.block_size)]
    if not ids:
        return
    save_attention_npz(path, attention_maps(model, ids), ids, tokenizer)


def save_attention_npz(path: str, probs: np.ndarray, ids: list[int], tokenizer) -> None:
    """npz {probs [n_layer, n_head, T, T] float32, tokens (display pieces), ids}, written atomically."""
    buf = io.BytesIO()
    np.savez(buf, probs=probs.astype(np.float32), tokens=np.array(tokenizer.decode_pieces(ids), dtype=str),
             ids=np.array(ids, dtype=np.int64))
    layout.atomic_write(path, buf.getvalue())
