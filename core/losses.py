"""The language-model loss without the (tokens x vocabulary) logits: cross-entropy of lm_head(h), in chunks.

`F.cross_entropy(lm_head(h).float(), targets)` materialises the logits, then their log-softmax, then, in the
backward pass, the gradient of each: four (N, V) fp32 tensors. At a 49,152-token vocabulary and 1,024
tokens per step that is 200 MB each, most of a LoRA fine-tune's activation memory, and every one of them
is written and read again. `lm_loss` walks the tokens in chunks of about 2^24 logits instead. Each chunk
gets its logits, their log-softmax in the same memory and, when a backward pass will follow, at once the
gradient of the mean loss with respect to those logits (softmax - one-hot, / trained tokens). That
gradient is turned straight into the gradients of h and of the weight, and the chunk's logits are dropped. The backward pass only scales
the stored gradients by the incoming one. The same idea as Liger-Kernel's fused linear cross-entropy,
written with plain torch ops.

Same value and gradients as the reference (fp32: to rounding; bf16 autocast: the same casts at the same
places). The reference path is kept where the chunking does not pay or does not hold: small vocabulary x
tokens (LM_LOSS_MIN_LOGITS), fp16 autocast (its unscaled gradients would underflow in fp16 before the loss
scale reaches them), torch.compile (inductor fuses the reference itself), and an lm_head that is not a
plain Linear.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from core.estimate import CHUNK_LOGITS, LM_LOSS_MIN_LOGITS, MIN_CHUNK_ROWS  # noqa: F401 (patched by tests)

IGNORE = -1  # targets that are not trained (padding, SFT prompt tokens)


def lm_loss(h: torch.Tensor, head: torch.nn.Module, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of head(h) against targets (IGNORE skipped); h (..., C), targets (...)."""
    h2, t = h.reshape(-1, h.size(-1)), targets.reshape(-1)
    weight = getattr(head, "weight", None)
    if not _chunked_applies(h2, head, weight):
        logits = head(h).float()
        return F.cross_entropy(logits.view(-1, logits.size(-1)), t, ignore_index=IGNORE)
    most = max(MIN_CHUNK_ROWS, CHUNK_LOGITS // weight.size(0))
    # equal chunks of at most `most` rows: 1,024 rows as 3 x 342, not 3 x 341 + 1
    rows = math.ceil(h2.size(0) / math.ceil(h2.size(0) / most))
    if torch.is_grad_enabled() and (h2.requires_grad or weight.requires_grad):
        return _ChunkedLinearCE.apply(h2, weight, t, rows)
    return _loss_only(h2, _autocast_once(weight), t, rows)


def _chunked_applies(h2: torch.Tensor, head: torch.nn.Module, weight) -> bool:
    if type(head) is not torch.nn.Linear or head.bias is not None or weight is None:
        return False
    if h2.size(0) * weight.size(0) < LM_LOSS_MIN_LOGITS or torch.compiler.is_compiling():
        return False
    device = h2.device.type
    try:  # is_autocast_enabled(device) / get_autocast_dtype: torch >= 2.4; older ones keep the reference
        return not (torch.is_autocast_enabled(device) and torch.get_autocast_dtype(device) == torch.float16)
    except (AttributeError, TypeError):
        return False


def _autocast_once(weight: torch.Tensor) -> torch.Tensor:
    """The weight in the autocast dtype when autocast is on, cast once for all chunks: autocast itself would
    cast it again for every chunk's product (the weight is not a leaf that requires grad in a LoRA run, and
    autocast caches only those), which at a 49,152 x 576 vocabulary is 1 GB moved per step for nothing."""
    device = weight.device.type
    if torch.is_autocast_enabled(device) and weight.is_floating_point():
        return weight.to(torch.get_autocast_dtype(device))
    return weight


def _logits_buffer(h2: torch.Tensor, weight: torch.Tensor, rows: int) -> torch.Tensor:
    """One fp32 (rows x V) tensor for every chunk's logits. A fresh one per chunk would cost its page faults
    each time: at 256 x 49,152 it is 50 MB, above glibc's largest mmap threshold, so every chunk maps new
    memory and touches it page by page (18 of 48 ms per chunk on the 2-core VM, GEMM and cast included)."""
    return torch.empty(rows, weight.size(0), dtype=torch.float32, device=h2.device)


def _chunk_logits(hc: torch.Tensor, weight: torch.Tensor, buf: torch.Tensor) -> torch.Tensor:
    """The chunk's fp32 logits, written into `buf`: fp32 straight into it; otherwise (under autocast, with
    the weight cast by `_autocast_once`) the matmul in its dtype, as head(h) would be, then widened."""
    out = buf[:hc.size(0)]
    if hc.dtype == weight.dtype == torch.float32:
        return torch.mm(hc, weight.t(), out=out)
    return out.copy_(F.linear(hc, weight))


def _loss_only(h2: torch.Tensor, weight: torch.Tensor, t: torch.Tensor, rows: int) -> torch.Tensor:
    total = torch.zeros((), dtype=torch.float32, device=h2.device)
    buf = _logits_buffer(h2, weight, rows)
    for i in range(0, h2.size(0), rows):
        logp, tc = _log_softmax_(_chunk_logits(h2[i:i + rows], weight, buf)), t[i:i + rows]
        total += _chunk_nll(logp, tc).sum()
    return total / (t != IGNORE).sum()


def _log_softmax_(logits: torch.Tensor) -> torch.Tensor:
    """log_softmax of a chunk's fp32 logits, which are not needed afterwards. On a CPU it is written over
    them: ATen's kernel reads each row (its max, then its sum of exponentials) before it writes it, so the
    result is the same, and no second (rows x V) tensor is made. 3x faster than logsumexp followed by a
    subtraction (17 vs 55 ms for 341 x 49,152 logits on the 2-core Xeon). Other devices get a new tensor."""
    if logits.device.type == "cpu":
        return torch.log_softmax(logits, dim=-1, out=logits)
    return torch.log_softmax(logits, dim=-1)


def _chunk_nll(logp: torch.Tensor, tc: torch.Tensor) -> torch.Tensor:
    """Per-token loss of one chunk from its log-probabilities (0 where ignored)."""
    return -logp.gather(1, tc.clamp(min=0)[:, None])[:, 0] * (tc != IGNORE)


class _ChunkedLinearCE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h2, weight, t, rows):
        n = (t != IGNORE).sum()  # the mean's denominator over the whole batch, as F.cross_entropy's
        grad_h = torch.empty_like(h2) if h2.requires_grad else None
        grad_w = torch.zeros_like(weight, dtype=torch.float32) if weight.requires_grad else None
        autocast = torch.is_autocast_enabled(h2.device.type)
        w = _autocast_once(weight)  # the products' operand; `weight` stays the parameter for grad_w's dtype
        total = torch.zeros((), dtype=torch.float32, device=h2.device)
        buf = _logits_buffer(h2, weight, rows)
        for i in range(0, h2.size(0), rows):
            hc, tc = h2[i:i + rows], t[i:i + rows]
            logp = _log_softmax_(_chunk_logits(hc, w, buf))
            total += _chunk_nll(logp, tc).sum()
            g = logp.exp_()  # softmax, in the same memory
            g[torch.arange(g.size(0), device=g.device), tc.clamp(min=0)] -= 1.0
            # The mean's 1/n (0 for ignored tokens) scales g's rows: applied to the (rows x C) side of each
            # product instead of to g, it costs no pass over the (rows x V) chunk.
            scale = ((tc != IGNORE) / n)[:, None]
            if grad_h is not None:
                grad_h[i:i + rows] = (g.to(h2.dtype) @ w if not autocast else g @ w) * scale
            if grad_w is not None:
                if autocast:  # the weight gradient's matmul in the autocast dtype, as the reference's backward
                    grad_w += g.t() @ (hc * scale)
                else:
                    grad_w.addmm_(g.t(), hc.float() * scale)
        ctx.save_for_backward(*(x for x in (grad_h, grad_w) if x is not None))
        ctx.has = (grad_h is not None, grad_w is not None)
        ctx.weight_dtype = weight.dtype
        return total / n

    @staticmethod
    def backward(ctx, grad_out):
        saved = list(ctx.saved_tensors)
        grad_h = saved.pop(0) * grad_out if ctx.has[0] else None
        grad_w = (saved.pop(0) * grad_out).to(ctx.weight_dtype) if ctx.has[1] else None
        return grad_h, grad_w, None, None
