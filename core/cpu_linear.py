"""Linear layers prepacked for oneDNN, for generation on a CPU.

Generating one token multiplies every weight matrix by one vector. With bf16 weights on a CPU with native
bf16 (AVX512-BF16, AMX), `F.linear` hands oneDNN the plain row-major matrix on every call, and oneDNN
re-lays it out for its kernels each time: on the 2-core AMX machine our 135M model's matrices stream at
about 7 GB/s in bf16, against 18 GB/s in fp32, so bf16 weights gave no speed-up although they are half the
bytes. Reordering each matrix once into oneDNN's blocked layout (what `torch.compile`'s CPU freezing pass
does for bf16) removes that work: 1.2x more tokens per second for the whole generation, with bit-identical
logits.

In fp32, `F.linear` goes to MKL. On an Intel Xeon MKL's matrix-vector product is the faster (packed:
0.85x); on an AMD EPYC (Zen 4, AVX512) MKL runs its AVX2 code and oneDNN's packed product is 1.4-2.6x
faster (12 vs 31 GB/s on the 135M model's output matrix): fp32 matrices are packed shape by shape where
a measurement at load time says so (`_packed_is_faster`), to 1e-6 of the same logits.

Only for inference: a packed layer has no `weight` parameter to train, save or export, so only the
generation paths (`llm-train generate`, `serve`) pack, after loading, and only on a CPU.
"""

from __future__ import annotations

import torch
from torch import nn


class PackedLinear(nn.Module):
    """y = x W^T + b with W held in oneDNN's blocked layout (see the module docstring)."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.packed = torch.ops.mkldnn._reorder_linear_weight(linear.weight.detach(), None)
        self.bias = None if linear.bias is None else linear.bias.detach()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.mkldnn._linear_pointwise(x, self.packed, self.bias, "none", [], "")

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


def can_pack(model: nn.Module) -> bool:
    """Whether `pack_linears` may apply: a CPU model on a oneDNN build of torch, in bf16 on a CPU whose bf16
    is native, or in fp32 (where each shape is packed only if it measures faster, see `pack_linears`)."""
    from core.precision import cpu_native_bf16

    p = next(model.parameters(), None)
    if (p is None or p.device.type != "cpu" or not torch.backends.mkldnn.is_available()
            or not hasattr(torch.ops.mkldnn, "_linear_pointwise")):
        return False
    return p.dtype == torch.float32 or (p.dtype == torch.bfloat16 and cpu_native_bf16() is not None)


# (in features, out features, bias, threads) -> whether the packed fp32 product measured faster: once per
# process, not at every load (0.6 s for a GPT-2-small shape on an Intel Xeon, where MKL wins and nothing packs).
FASTER: dict[tuple, bool] = {}


@torch.no_grad()
def pack_linears(model: nn.Module) -> int:
    """Replace the model's nn.Linear layers by PackedLinear where `can_pack`; returns how many. A SwiGLU
    feed-forward's gate and up projections become one packed matrix (`MLP.gate_up`): one call instead of
    two per layer and token (1.05x tokens/s on the 135M model, interleaved runs on the 2-core Xeon).

    bf16 layers are always packed. fp32 layers are packed per shape when the packed product of one row
    measures clearly faster than `F.linear` on this machine (`_packed_is_faster`): MKL's fp32 matrix-vector
    product is the faster one on an Intel Xeon, oneDNN's 1.4-2.6x faster on an AMD EPYC (MKL does not give
    AMD CPUs its AVX512 code), so only a measurement tells.

    The first packed layer is checked against `F.linear` on a random input (to bf16 rounding, 1e-4 in fp32):
    a build whose oneDNN computes something else leaves the model as it was (and returns 0) rather than
    generating other text."""
    if not can_pack(model):
        return 0
    units = _units(model)
    if not units or not _agrees(units[0][0]()):
        return 0
    fp32 = units[0][2][0].weight.dtype == torch.float32
    groups: dict[tuple, list] = {}
    while units:  # no reference to a replaced layer outlives its unit: peak memory is one shape's copy
        unit = units.pop(0)
        first = unit[2][0]
        groups.setdefault((first.in_features, first.out_features * len(unit[2]), first.bias is not None),
                          []).append(unit)
    n = 0
    for key in list(groups):
        group = groups.pop(key)
        verdict = (*key, torch.get_num_threads())
        if fp32 and FASTER.get(verdict) is False:
            continue  # measured slower earlier in this process: neither packed nor measured again
        packed = [PackedLinear(make()) for make, _, _ in group]
        if fp32 and verdict not in FASTER:
            FASTER[verdict] = _packed_is_faster([layer for _, _, plain in group for layer in plain], packed)
        if fp32 and not FASTER[verdict]:
            continue
        while group:
            _, install, plain = group.pop(0)
            install(packed.pop(0))
            n += len(plain)
    return n


def _units(model: nn.Module) -> list[tuple]:
    """(a function giving the Linear to pack, a function installing its packed form, the model's own Linear
    layers it replaces) for every nn.Linear of the model; a SwiGLU's gate and up projections are one unit."""
    units, fused = [], set()
    for mlp in model.modules():
        gate, up = getattr(mlp, "c_gate", None), getattr(mlp, "c_fc", None)
        if type(gate) is nn.Linear and type(up) is nn.Linear and hasattr(mlp, "gate_up"):
            def install(module, mlp=mlp):  # core.model.MLP reads gate_up first
                mlp.gate_up = module
                del mlp.c_gate, mlp.c_fc
            units.append((lambda gate=gate, up=up: _stacked(gate, up), install, [gate, up]))
            fused |= {id(gate), id(up)}
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if type(child) is nn.Linear and id(child) not in fused:
                units.append((lambda child=child: child,
                              lambda module, parent=parent, name=name: setattr(parent, name, module), [child]))
    return units


def _agrees(linear: nn.Linear) -> bool:
    """Whether oneDNN's packed product of this layer gives F.linear's result (to its dtype's rounding)."""
    tol = 1e-4 if linear.weight.dtype == torch.float32 else 2e-2
    x = torch.randn(3, linear.in_features, dtype=linear.weight.dtype)
    try:
        return torch.allclose(PackedLinear(linear)(x).float(), linear(x).float(), rtol=tol, atol=tol)
    except RuntimeError:  # e.g. bf16 on an AVX2-only CPU: oneDNN refuses the reorder
        return False


def _packed_is_faster(plain: list[nn.Linear], packed: list[PackedLinear], margin: float = 0.8,
                      rounds: int = 3) -> bool:
    """One row through every matrix of a shape, plain and packed in turn, best of `rounds`: packed must take
    under `margin` of the plain time, so that a close call (and timing noise) keeps MKL's path."""
    import time

    x = torch.randn(1, plain[0].in_features, dtype=plain[0].weight.dtype)
    best = {"plain": float("inf"), "packed": float("inf")}
    for r in range(rounds + 1):  # the first round warms both paths up
        for key, layers in (("plain", plain), ("packed", packed)):
            t = time.perf_counter()
            for layer in layers:
                layer(x)
            if r:
                best[key] = min(best[key], time.perf_counter() - t)
    return best["packed"] < margin * best["plain"]


def _stacked(a: nn.Linear, b: nn.Linear) -> nn.Linear:
    """One Linear computing [a(x), b(x)]: their weights (and biases) stacked along the outputs."""
    out = nn.Linear(a.in_features, a.out_features + b.out_features, bias=a.bias is not None,
                    device=a.weight.device, dtype=a.weight.dtype)
    out.weight.copy_(torch.cat([a.weight, b.weight]))
    if a.bias is not None:
        out.bias.copy_(torch.cat([a.bias, b.bias]))
    return out
