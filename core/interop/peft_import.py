"""A PEFT LoRA adapter folder (`adapter_config.json`, `adapter_model.safetensors`) -> a LoRA checkpoint of ours
on a base checkpoint (`llm-train import ADAPTER --base CKPT --out DIR`): generate, chat, attention, evaluate,
export and further fine-tuning then work on it as on a LoRA fine-tune trained here.

The inverse of core.interop.peft_export, exact: PEFT's q_proj, k_proj and v_proj each have their own A, where
ours is one adapter on the fused q/k/v projection; the adapted ones go side by side in it as one adapter of
rank (number of them) x r, A stacked and B block-diagonal (B_q A_q, B_k A_k, B_v A_v, and nothing between
them), and the other projections get the same rank with zero rows and columns added (zeros contribute nothing
and, both zero, get no gradient). Our scale alpha / rank is set to PEFT's (alpha / r, or alpha / sqrt(r) with
rsLoRA). Refused, by name: DoRA, trained biases, modules_to_save (whole trained layers), per-module ranks or
alphas, and adapters on modules we have no counterpart for.
"""

from __future__ import annotations

import math
import os

import torch

from core import layout
from core.errors import UsageError
from core.export_families import check_exportable
from core.import_config import read_peft_config
from core.interop import layouts
from core.interop.hf_export import split_qkv
from core.lora import TARGET_MODULES

OURS = ("attn.c_attn", "attn.c_proj", "mlp.c_gate", "mlp.c_fc", "mlp.c_proj")
TARGET_OF = {path: name for name, paths in TARGET_MODULES.items() for path in paths}  # attn.c_attn -> attn_qkv


def _hf_modules(cfg, family: str) -> dict[str, tuple[str, int | None]]:
    """HF module path -> (our module path under blocks.{i}., q/k/v part index or None) for every layer."""
    prefix = "transformer." if family == "gpt2" else ""
    out = {}
    for i in range(cfg.n_layer):
        for ours in OURS:
            try:
                spec = layouts.other_name(layouts.HF_LAYOUTS, family, f"blocks.{i}.{ours}.weight")
            except KeyError:
                continue
            names = spec if isinstance(spec, tuple) else (spec,)
            for part, name in enumerate(names):
                module = prefix + name.removesuffix(":T").removesuffix(".weight")
                out[module] = (f"blocks.{i}.{ours}", part if isinstance(spec, tuple) else None)
    return out


def ours_from_peft(cfg, family: str, peft: dict, tensors: dict[str, torch.Tensor]) -> tuple[dict, dict]:
    """(our LoRA spec: rank, alpha, dropout, targets; our adapter tensors) for a PEFT adapter's tensors."""
    r = peft["r"]
    modules, found = _hf_modules(cfg, family), {}
    for key, t in tensors.items():
        name = key.removeprefix("base_model.model.")
        for kind in ("lora_A", "lora_B"):
            if f".{kind}." in name:
                module = name.split(f".{kind}.")[0]
                break
        else:
            raise UsageError(f"adapter tensor {key}: not a LoRA A or B matrix")
        if module not in modules:
            raise UsageError(f"adapter tensor {key}: the adapter is on {module}, which this model has no "
                             f"counterpart for", "target_modules")
        if (t.shape[0] if kind == "lora_A" else t.shape[1]) != r:
            raise UsageError(f"adapter tensor {key}: shape {tuple(t.shape)} does not have rank r={r}")
        found[(module, kind)] = t.float()
    qkv_parts = sorted({modules[m][1] for m, _ in found if modules[m][1] is not None})
    rank = r * max(1, len(qkv_parts))
    targets = sorted({TARGET_OF[modules[m][0].split(".", 2)[2]] for m, _ in found},
                     key=list(TARGET_MODULES).index)
    out, shapes = {}, _shapes(cfg)
    for module, (ours, part) in modules.items():
        if TARGET_OF[ours.split(".", 2)[2]] not in targets:
            continue
        a, b = found.get((module, "lora_A")), found.get((module, "lora_B"))
        weight = shapes[ours + ".weight"]
        sizes = [p.shape[0] for p in split_qkv(cfg, torch.empty(weight[0], 0))] if part is not None else [weight[0]]
        want = (sizes[part or 0], weight[1])  # (out, in) of the HF module
        for t, shape in ((a, (r, want[1])), (b, (want[0], r))):
            if t is not None and tuple(t.shape) != shape:
                raise UsageError(f"adapter: the matrices on {module} are for a model of another shape ({tuple(t.shape)}"
                                 f", this base needs {shape}): is --base the model it was trained on?", "base")
        big_a = out.setdefault(f"{ours}.lora_A", torch.zeros(rank, weight[1]))
        big_b = out.setdefault(f"{ours}.lora_B", torch.zeros(weight[0], rank))
        if a is None or b is None:
            continue  # not adapted in this layer: zeros, exactly nothing
        if part is None:
            big_a[:r], big_b[:, :r] = a, b
        else:
            slot = qkv_parts.index(part)
            start = sum(sizes[:part])
            big_a[slot * r:(slot + 1) * r] = a
            big_b[start:start + sizes[part], slot * r:(slot + 1) * r] = b
    scale = peft["lora_alpha"] / (math.sqrt(r) if peft.get("use_rslora") else r)
    spec = {"rank": rank, "alpha": scale * rank, "dropout": float(peft.get("lora_dropout") or 0.0),
            "targets": targets}
    return spec, out


def _shapes(cfg) -> dict[str, tuple[int, ...]]:
    """Our parameters' shapes for `cfg` (a model on the meta device: no memory)."""
    from core.model import GPT

    with torch.device("meta"):
        model = GPT(cfg)
    return {name: tuple(p.shape) for name, p in model.named_parameters()}


def import_peft(folder: str, base: str, out: str) -> str:
    """Write the LoRA checkpoint for the adapter `folder` on the checkpoint `base`; returns its path."""
    from safetensors.torch import load_file

    from core import checkpoint as ckpt
    from core.config import Config
    from core.interop.hf_import import hf_chat_template
    from core.interop.writer import checkpoint_target
    from core.lora import CHAT_KEYS, apply_lora, note_lora_child
    from core.model import GPT

    peft = read_peft_config(folder)
    problem = layout.checkpoint_problem(base)
    if problem:
        raise UsageError(f"--base: {problem}", "base")
    base = os.path.abspath(base)
    base_meta = layout.read_checkpoint_meta(base)
    cfg = ckpt.model_config(base_meta, base)
    family = check_exportable(cfg)
    weights = os.path.join(folder, "adapter_model.safetensors")
    if not os.path.isfile(weights):
        raise UsageError(f"{folder}: no adapter_model.safetensors (a pickled adapter_model.bin is not loaded)")
    spec, adapters = ours_from_peft(cfg, family, peft, load_file(weights))
    final, _parent = checkpoint_target(out)
    step = int(os.path.basename(final).split("-", 1)[1])  # step-000000, or the step-NNNNNN --out names
    run_dir = os.path.dirname(os.path.dirname(final))
    with torch.device("meta"):  # only the adapters are written: the base's weights are never allocated
        model = apply_lora(GPT(cfg), spec["rank"], spec["alpha"], spec["dropout"], spec["targets"])
    missing, unexpected = model.load_state_dict(adapters, strict=False, assign=True)
    assert not unexpected and not [k for k in missing if ".lora_" in k], (missing, unexpected)
    full = Config(model=cfg).to_dict()
    full["train"].update(init_from=base, finetune="lora", lora_rank=spec["rank"], lora_alpha=spec["alpha"],
                         lora_targets=spec["targets"])
    full["data"]["dir"] = os.path.dirname(final)  # no data folder: the tokenizer lives in the checkpoint
    here = final
    own = hf_chat_template(folder)  # a fine-tune on instruction data may carry its own template
    meta = {"config": full, "reason": "import", "parent": None, "params": sum(t.numel() for t in adapters.values()),
            **{k: base_meta[k] for k in CHAT_KEYS if base_meta.get(k) is not None},
            **({"chat_template": own} if isinstance(own, str) and own.strip() else {}),  # the adapter's own
            "lora": {**spec, "base": base, "base_relative": os.path.relpath(base, here)},
            "imported_from": {"format": "peft", "path": os.path.abspath(folder),
                              "base_model": peft.get("base_model_name_or_path")}}
    path = ckpt.save_checkpoint(run_dir, step, model, None, meta, os.path.join(base, layout.TOKENIZER))
    note_lora_child(base, run_dir)  # the base's run never prunes it
    return path
