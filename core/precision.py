"""What `train.precision: auto` means on this machine, and why: torch-free (the estimate and studio use it).

On a GPU: bf16 where the GPU supports it, else fp16 with the grad scaler. On a CPU, bf16 autocast pays
only where the CPU computes bf16 natively (AVX512-BF16 or AMX: the oneDNN matmuls then run at twice the
fp32 rate or more) *and* the matmuls are large enough for that to outweigh the casts autocast adds around
every op. Measured on 2-core machines, training step time bf16 autocast vs fp32 (attention computed in
fp32 either way at the time, see core.model._sdpa_cpu_fp32):
  - AMX (Xeon, amx_bf16): 6 x 384 (T=256, batch 12) 1.8x faster; 4 x 128 (T=64, batch 32) 1.37x;
    4 x 128 (T=128, batch 16) 1.23x; 4 x 64 (T=64, batch 32) 1.2x.
  - AVX512-BF16 without AMX (EPYC, issue 12, before attention ran in fp32): 6 x 384 1.74x, 4 x 128 no gain.
Hence bf16 from a width of BF16_MIN_WIDTH[flag] features. Without native bf16, bf16 is emulated and slower.
"""

from __future__ import annotations

import os
import sys

# model.n_embd from which bf16 autocast beats fp32, by the CPU's native bf16 flag (measured, see above)
BF16_MIN_WIDTH = {"amx_bf16": 64, "avx512_bf16": 256}
_NATIVE_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags(path: str = "/proc/cpuinfo") -> set[str]:
    """The CPU feature flags the kernel reports (empty where there is no /proc/cpuinfo)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.partition(":")[2].split())
    except OSError:
        pass
    return set()


def cpu_native_bf16(flags: set[str] | None = None) -> str | None:
    """The flag that gives this CPU native bf16 arithmetic (amx_bf16, avx512_bf16), or None."""
    flags = cpu_flags() if flags is None else flags
    for name in reversed(_NATIVE_FLAGS):  # AMX first: it is the faster of the two
        if name in flags:
            return name
    return None


def cpu_precision(n_embd: int, flags: set[str] | None = None) -> tuple[str, str]:
    """(precision, reason) that `auto` picks on the CPU for a model of width n_embd."""
    native = cpu_native_bf16(flags)
    if native is None:
        return "fp32", ("auto on CPU: this CPU has no native bf16 (no avx512_bf16/amx_bf16 flag), "
                        "bf16 would be emulated and slower")
    least = BF16_MIN_WIDTH[native]
    if n_embd < least:
        return "fp32", (f"auto on CPU: this CPU has {native}, but at model.n_embd={n_embd} (< {least}) "
                        f"bf16 autocast is no faster than fp32")
    return "bf16", (f"auto on CPU: {native} and model.n_embd={n_embd} >= {least}: "
                    f"bf16 autocast is faster")


def gpu_precision(bf16_supported: bool) -> tuple[str, str]:
    if bf16_supported:
        return "bf16", "auto on GPU: the GPU supports bf16"
    return "fp16", "auto on GPU: no bf16 on this GPU, fp16 with the grad scaler"


def likely_device(name: str) -> str:
    """Without torch: the device `auto` will most likely resolve to (cuda where an NVIDIA driver lists a
    GPU, mps on Apple silicon, else cpu); an explicit name is returned as is."""
    name = (name or "auto").strip().lower()
    if name != "auto":
        return name
    try:
        if os.listdir("/proc/driver/nvidia/gpus"):
            return "cuda"
    except OSError:
        pass
    if sys.platform == "darwin" and os.uname().machine == "arm64":
        return "mps"
    return "cpu"


def explain(precision: str, device: str, n_embd: int) -> tuple[str, str]:
    """(precision, reason) for a config's precision on `device` (cpu, cuda, cuda:N, mps), torch-free;
    on a GPU `auto` assumes bf16 support (torch confirms at training time)."""
    kind = device.split(":")[0]
    if precision != "auto":
        return precision, f"train.precision: {precision} as set"
    if kind == "cpu":
        return cpu_precision(n_embd)
    if kind == "mps":
        return "fp32", "auto on MPS: fp32"
    return gpu_precision(True)
