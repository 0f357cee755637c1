"""A LoRA checkpoint's adapters -> a PEFT adapter folder (`adapter_config.json`, `adapter_model.safetensors`)
that `peft.PeftModel.from_pretrained(base, folder)` puts on the base model's Hugging Face version: the few
megabytes people share instead of a merged copy of the whole model.

Our adapters sit on our fused projections; PEFT's on Hugging Face's modules (core.interop.layouts):
    attn_qkv  c_attn (q, k and v stacked)  -> q_proj, k_proj, v_proj: the same A (r x in) for all three and
                                              B's rows split as the weight's (so B_q A, B_k A, B_v A: exact)
                                              GPT-2: attn.c_attn (a Conv1D: fan_in_fan_out)
    attn_out  c_proj                       -> o_proj / attn.c_proj
    mlp_in    c_fc, c_gate                 -> up_proj, gate_proj / mlp.c_fc
    mlp_out   c_proj                       -> down_proj / mlp.c_proj
Our scale is alpha / r, PEFT's default (lora_alpha / r, no rsLoRA), so r and alpha go over as they are. The
folder also carries the checkpoint's tokenizer and chat template (a fine-tune on instruction data may have
its own), so `AutoTokenizer.from_pretrained(folder)` gives the tokenizer it was trained with. Written under a
temporary name and renamed into place, like every export.
"""

from __future__ import annotations

import os
import shutil

import torch

from core import layout
from core.errors import CheckpointError, UsageError
from core.export_families import check_exportable
from core.interop import layouts
from core.interop.hf_export import DTYPES, split_qkv, tokenizer_config

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"


def peft_tensors(cfg, family: str, adapters: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """(PEFT's state dict, its target_modules) for our adapter tensors (`blocks.{i}.<module>.lora_A|B`)."""
    prefix = "transformer." if family == "gpt2" else ""
    out, targets = {}, set()
    for name in sorted(adapters):
        module, _, kind = name.rpartition(".")
        if kind not in ("lora_A", "lora_B"):
            raise CheckpointError(f"adapters: unexpected tensor {name}")
        spec = layouts.other_name(layouts.HF_LAYOUTS, family, module + ".weight")
        t = adapters[name]
        if isinstance(spec, tuple):  # our fused q/k/v: one module each on the HF side
            parts = split_qkv(cfg, t) if kind == "lora_B" else (t, t, t)
        else:
            spec, parts = (spec,), (t,)
        for hf_name, part in zip(spec, parts, strict=True):
            hf_module = prefix + hf_name.removesuffix(":T").removesuffix(".weight")
            out[f"base_model.model.{hf_module}.{kind}.weight"] = part
            # the module's path inside its block: PEFT matches target_modules as suffixes of module names
            targets.add(hf_module.rsplit(".", 1)[-1] if family == "llama" else ".".join(hf_module.split(".")[-2:]))
    return out, sorted(targets)


def adapter_config(spec: dict, family: str, targets: list[str], base_hf: str | None) -> dict:
    return {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": int(spec["rank"]),
            "lora_alpha": float(spec["alpha"]), "lora_dropout": float(spec.get("dropout") or 0.0),
            "target_modules": targets, "bias": "none", "fan_in_fan_out": family == "gpt2",
            "use_rslora": False, "use_dora": False, "init_lora_weights": True, "inference_mode": True,
            "modules_to_save": None, "base_model_name_or_path": base_hf}


def hf_source_of(base: str) -> str | None:
    """The Hugging Face folder a base checkpoint was imported from, when it still exists."""
    try:
        origin = layout.read_checkpoint_meta(base).get("imported_from") or {}
    except (CheckpointError, OSError, ValueError):
        return None
    path = origin.get("path") if origin.get("format") == "hf" else None
    return path if isinstance(path, str) and os.path.isdir(path) else None


def read_adapters(path: str, fmt: str = "peft") -> tuple[dict, dict, dict[str, torch.Tensor]]:
    """(meta, the LoRA spec, the adapter tensors) of a LoRA checkpoint; UsageError for any other (for the
    adapter format `fmt`, whose whole-model counterpart the message names)."""
    from safetensors.torch import load_file

    from core import checkpoint as ckpt
    from core.lora import ADAPTERS

    meta = layout.read_checkpoint_meta(path)
    spec = meta.get("lora")
    if not isinstance(spec, dict):
        whole = {"peft": "hf", "gguf-lora": "gguf"}[fmt]
        raise UsageError(f"--format {fmt}: {path} is not a LoRA fine-tune (it holds whole weights); export it "
                         f"with --format {whole}", "format")
    ckpt.verify_file(path, ADAPTERS)
    try:
        return meta, spec, load_file(os.path.join(path, ADAPTERS))
    except Exception as exc:  # safetensors raises its own error types for damaged headers and data
        raise CheckpointError(f"cannot load adapters from {os.path.join(path, ADAPTERS)} (damaged?): {exc}") \
            from None


def export_peft(path: str, out: str, dtype: str) -> str | None:
    """Write the adapter folder; returns the HF folder its base came from (None when not imported from one)."""
    from safetensors.torch import save_file

    from core import checkpoint as ckpt
    from core.interop.hf_export import checkpoint_tokenizer

    meta, spec, adapters = read_adapters(path)
    cfg = ckpt.model_config(meta, path)
    family = check_exportable(cfg)
    if dtype not in DTYPES:
        raise UsageError(f"--dtype {dtype}: a PEFT adapter is f32, f16 or bf16")
    tensors, targets = peft_tensors(cfg, family, adapters)
    base_hf = hf_source_of(layout.lora_base(path, spec))
    meta, tok_spec = checkpoint_tokenizer(path, meta)
    out = os.path.abspath(out)
    tmp = os.path.join(os.path.dirname(out), f".{os.path.basename(out)}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        layout.atomic_write_json(os.path.join(tmp, ADAPTER_CONFIG), adapter_config(spec, family, targets, base_hf))
        save_file({k: v.to(DTYPES[dtype]).clone() for k, v in tensors.items()},  # q, k, v share A: one copy each
                  os.path.join(tmp, ADAPTER_WEIGHTS), metadata={"format": "pt"})
        layout.give_default_mode(os.path.join(tmp, ADAPTER_WEIGHTS))
        shutil.copyfile(os.path.join(path, layout.TOKENIZER), os.path.join(tmp, layout.TOKENIZER))
        layout.atomic_write_json(os.path.join(tmp, "tokenizer_config.json"), tokenizer_config(meta, cfg, tok_spec))
        if meta.get("chat_template"):
            layout.atomic_write(os.path.join(tmp, "chat_template.jinja"), meta["chat_template"])
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return base_hf
