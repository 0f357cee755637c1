"""What `train.precision: auto` means on this machine, and why: torch-free (the estimate and studio use it).

On a GPU: bf16 where the GPU supports it, else fp16 with the grad scaler. On a CPU, bf16 autocast pays
only where the CPU computes bf16 natively (AVX512-BF16 or AMX: the oneDNN matmuls then run at twice the
fp32 rate or more) *and* the matmuls are large enough for that to outweigh the casts autocast adds around
every op. Measured on a 2-core AVX512-BF16 machine (issue 12): 6 layers x 384 wide, T=256, batch 12 ran
1.74x faster in bf16 autocast; 4 x 128 (T=64) was no faster. The threshold below sits between the two:
bf16 from a width of BF16_MIN_WIDTH features. Without native bf16, bf16 is emulated and slower: fp32.
"""

from __future__ import annotations

import os
import sys

BF16_MIN_WIDTH = 256  # model.n_embd from which bf16 autocast beats fp32 on a CPU with native bf16
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
    if n_embd < BF16_MIN_WIDTH:
        return "fp32", (f"auto on CPU: this CPU has {native}, but at model.n_embd={n_embd} (< {BF16_MIN_WIDTH}) "
                        f"bf16 autocast is no faster than fp32")
    return "bf16", (f"auto on CPU: {native} and model.n_embd={n_embd} >= {BF16_MIN_WIDTH}: "
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
