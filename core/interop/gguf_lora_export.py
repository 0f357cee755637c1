"""A LoRA checkpoint's adapters -> a GGUF LoRA adapter that llama.cpp applies to the base model's GGUF export
(`llama-cli -m base.gguf --lora adapter.gguf`; Ollama: `ADAPTER adapter.gguf` in a Modelfile), as llama.cpp's
convert_lora_to_gguf.py writes one: `general.type` "adapter", `adapter.type` "lora", `adapter.lora.alpha`,
and per adapted matrix `<its GGUF name>.lora_a` (r x in) and `.lora_b` (out x r).

Our fused q/k/v adapter goes to attn_q, attn_k and attn_v with the same A and B's rows split (GPT-2's graph
keeps attn_qkv fused: as it is); for the `llama` architecture the q and k rows of B are permuted as the base's
export permutes those of the weights (llama.cpp's rotary layout), so B A stays the base's layout. llama.cpp
scales by alpha / r, as we do.
"""

from __future__ import annotations

import os

from core.interop import layouts, require
from core.interop.gguf_export import encode, gguf_arch, renamed_into_place, temporary_name
from core.interop.gguf_import import permute_rope_rows
from core.interop.hf_export import split_qkv

DTYPES = ("f32", "f16")


def gguf_lora_tensors(cfg, arch: str, adapters: dict):
    """(GGUF name, tensor) for each of our adapter tensors (`blocks.{i}.<module>.lora_A|B`)."""
    family = "gpt2" if arch == "gpt2" else "llama"
    for name in sorted(adapters):
        module, _, kind = name.rpartition(".")
        spec = layouts.other_name(layouts.GGUF_LAYOUTS, family, module + ".weight")
        t = adapters[name].detach().float()
        if isinstance(spec, tuple):
            parts = split_qkv(cfg, t) if kind == "lora_B" else (t, t, t)
        else:
            spec, parts = (spec,), (t,)
        for gguf_name, part in zip(spec, parts, strict=True):
            if kind == "lora_B" and arch == "llama" and gguf_name.endswith("attn_q.weight"):
                part = permute_rope_rows(part, cfg.n_head)
            elif kind == "lora_B" and arch == "llama" and gguf_name.endswith("attn_k.weight"):
                part = permute_rope_rows(part, cfg.n_kv_head or cfg.n_head)
            yield f"{gguf_name}.lora_{'a' if kind == 'lora_A' else 'b'}", part.contiguous()


def export_gguf_lora(path: str, out: str, dtype: str) -> None:
    from core import checkpoint as ckpt
    from core.errors import UsageError
    from core.interop.peft_export import read_adapters

    gguf = require("gguf", "exporting to GGUF")
    if dtype not in DTYPES:
        raise UsageError(f"--dtype {dtype}: a GGUF LoRA adapter is f32 or f16")
    meta, spec, adapters = read_adapters(path, "gguf-lora")
    cfg = ckpt.model_config(meta, path)
    arch = gguf_arch(cfg)
    tmp = temporary_name(out)
    writer = gguf.GGUFWriter(tmp, arch)
    with renamed_into_place(writer, tmp, out):
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(spec["alpha"]))
        writer.add_name(os.path.basename(os.path.dirname(os.path.dirname(os.path.abspath(path)))))  # the run
        for name, t in gguf_lora_tensors(cfg, arch, adapters):
            _, array, qtype = encode(name, t, dtype, gguf)
            writer.add_tensor(name, array, raw_dtype=qtype)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
