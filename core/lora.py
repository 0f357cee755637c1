"""Fine-tuning set-up and LoRA: low-rank adapters on a frozen base model.

`build_model` makes the model a run trains: a fresh GPT (train.finetune none), or for full/lora the base
checkpoint's shape and weights (train.init_from, imported checkpoints included; a LoRA fine-tune as a base
gives its base with its adapters merged in), with adapters for lora.

A `LoRALinear` *is* the nn.Linear it replaces (same `weight`/`bias` parameters, so the base's state-dict
names are unchanged) plus `lora_A` (r x in) and `lora_B` (out x r, zero at the start, so training starts
from the base model exactly): y = x W^T + b + (alpha / r) * dropout(x) A^T B^T. The base parameters get
requires_grad False, so the optimizer (built from trainable parameters only) holds no state for them.

A LoRA checkpoint stores only the adapters (adapters.safetensors, small) and names its base in
meta.json["lora"]["base"]; `load_weights_any` and `load_model` rebuild base + adapters from it, and
`merge` folds the adapters into plain Linear layers (`llm-train merge`).
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import nn

from core import layout
from core.errors import CheckpointError, UsageError

ADAPTERS = "adapters.safetensors"
# train.lora_targets name -> attribute paths inside a Block
TARGET_MODULES = {"attn_qkv": ("attn.c_attn",), "attn_out": ("attn.c_proj",),
                  "mlp_in": ("mlp.c_fc", "mlp.c_gate"), "mlp_out": ("mlp.c_proj",)}


class LoRALinear(nn.Linear):
    """An nn.Linear sharing the base layer's parameters, plus a trainable low-rank update."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float, dropout: float):
        nn.Module.__init__(self)
        self.in_features, self.out_features = base.in_features, base.out_features
        self.weight, self.bias = base.weight, base.bias
        dev, dt = base.weight.device, base.weight.dtype
        self.lora_A = nn.Parameter(torch.empty(rank, base.in_features, device=dev, dtype=dt))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank, device=dev, dtype=dt))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # as peft: B = 0 keeps the start exact
        self.scale = alpha / rank
        self.lora_dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The scale goes on B (out x r) rather than on the (tokens x out) update, and the update is added in
        # place: the base product's backward does not need its output. Two passes over (tokens x out) fewer.
        update = F.linear(F.linear(self.lora_dropout(x), self.lora_A), self.lora_B * self.scale)
        return F.linear(x, self.weight, self.bias).add_(update)

    def merged(self) -> nn.Linear:
        out = nn.Linear(self.in_features, self.out_features, bias=self.bias is not None,
                        device=self.weight.device, dtype=self.weight.dtype)
        with torch.no_grad():
            out.weight.copy_(self.weight + self.scale * (self.lora_B @ self.lora_A))
            if self.bias is not None:
                out.bias.copy_(self.bias)
        return out


def _targets(model: nn.Module, targets: list[str]):
    for block in model.blocks:
        for name in targets:
            for path in TARGET_MODULES[name]:
                owner_path, _, attr = path.rpartition(".")
                owner = block.get_submodule(owner_path)
                if isinstance(getattr(owner, attr, None), nn.Linear):
                    yield owner, attr


def apply_lora(model: nn.Module, rank: int, alpha: float, dropout: float, targets: list[str]) -> nn.Module:
    """Freeze every parameter of `model` and put adapters on the target projections (in place)."""
    for p in model.parameters():
        p.requires_grad_(False)
    for owner, attr in list(_targets(model, targets)):
        setattr(owner, attr, LoRALinear(getattr(owner, attr), rank, alpha, dropout))
    model.lora_spec = {"rank": rank, "alpha": alpha, "dropout": dropout, "targets": list(targets)}
    return model


def frozen_to(model: nn.Module, dtype: torch.dtype) -> int:
    """Store the frozen projection matrices of the blocks in `dtype`, the run's autocast dtype; returns
    how many bytes that saves.

    Under bf16/fp16 autocast every matmul casts its fp32 weight to the autocast dtype, and for a frozen
    weight it does so again at every step (autocast caches only the casts of trainable leaves). The frozen
    fp32 copy is only ever read to be cast: keeping the cast instead computes the very same products (the
    cast is the same rounding), spares each step a read of the fp32 matrices and a write of their casts,
    and frees half the memory they took (a SmolLM-135M LoRA fine-tune: 2.1 -> 1.7 GB peak). The embedding
    (looked up, not cast), the norms (fp32 under autocast) and the biases (small) stay fp32. The model must
    then run under autocast: the trainer's steps, evaluations and samples all do."""
    saved = 0
    for module in model.blocks.modules():
        p = module.weight if isinstance(module, nn.Linear) else None
        if p is not None and not p.requires_grad and p.dtype != dtype:
            saved += p.numel() * (p.element_size() - dtype.itemsize)
            p.data = p.data.to(dtype)
    return saved


def is_lora(model: nn.Module) -> bool:
    return getattr(model, "lora_spec", None) is not None


def adapter_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().contiguous() for n, p in model.named_parameters() if ".lora_" in n}


def save_adapters(model: nn.Module, folder: str) -> None:
    from safetensors.torch import save_file

    save_file(adapter_state(model), os.path.join(folder, ADAPTERS))
    layout.give_default_mode(os.path.join(folder, ADAPTERS))


def merge(model: nn.Module) -> nn.Module:
    """Fold every adapter into its Linear (in place); the model becomes a plain GPT again."""
    for module in list(model.modules()):
        for attr, child in list(module.named_children()):
            if isinstance(child, LoRALinear):
                setattr(module, attr, child.merged())
    for p in model.parameters():
        p.requires_grad_(True)
    model.lora_spec = None
    return model


# ------------------------------------------------------------------------------------ checkpoints
def lora_meta(path: str) -> dict | None:
    return layout.read_checkpoint_meta(path).get("lora")


def load_weights_any(model: nn.Module, path: str, device, _chain: tuple[str, ...] = ()) -> None:
    """Weights of a plain checkpoint, or base + adapters of a LoRA checkpoint, into `model`."""
    from core import checkpoint as ckpt

    spec = lora_meta(path)
    if spec is None:
        ckpt.load_weights(model, path, device)
        return
    from safetensors.torch import load_file

    _load_base(model, layout.lora_base(path, spec), device, _chain + (os.path.realpath(path),))
    file = os.path.join(path, ADAPTERS)
    ckpt.verify_file(path, ADAPTERS)  # the checksum recorded when it was written
    try:
        tensors = load_file(file, device=str(device))
    except Exception as exc:  # safetensors raises its own error types for damaged headers and data
        raise CheckpointError(f"cannot load adapters from {file} (damaged?): {exc}") from None
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    missing = [k for k in missing if ".lora_" in k]
    if missing or unexpected:
        raise CheckpointError(f"adapters in {file} do not fit the model: missing {missing[:5]}, "
                              f"unexpected {unexpected[:5]}")


def _load_base(model: nn.Module, base: str, device, _chain: tuple[str, ...] = ()) -> None:
    """The base checkpoint's weights into a (possibly adapted) model; the adapters are left alone. A base that
    is itself a LoRA fine-tune gives its base's weights with its adapters merged (and so on down the chain)."""
    if os.path.realpath(base) in _chain:
        raise CheckpointError(f"the LoRA base chain loops back to {base}")
    problem = layout.checkpoint_problem(base)
    if problem:
        raise CheckpointError(f"the LoRA base: {problem}")
    from safetensors.torch import load_model as st_load_model

    from core import checkpoint as ckpt

    if lora_meta(base) is not None:  # a fine-tune of a fine-tune: the base's own adapters merged in
        merged = merge(load_model(base, device, _chain=_chain + (os.path.realpath(base),))[0])
        missing, unexpected = model.load_state_dict(merged.state_dict(), strict=False)
        if [k for k in missing if ".lora_" not in k] or unexpected:
            raise CheckpointError(f"weights of {base} do not fit the model: unexpected {unexpected[:5]}")
        return

    ckpt.verify_file(base, layout.WEIGHTS)
    try:  # load_model knows the tied (shared) tensors that the file stores once
        missing, unexpected = st_load_model(model, os.path.join(base, layout.WEIGHTS), strict=False,
                                            device=str(device))
    except Exception as exc:  # safetensors raises its own error types for damaged headers and data
        raise CheckpointError(f"cannot load the base weights of {base} (damaged?): {exc}") from None
    missing = [k for k in missing if ".lora_" not in k]
    if missing or unexpected:
        raise CheckpointError(f"weights of {base} do not fit the model: missing {missing[:5]}, "
                              f"unexpected {unexpected[:5]}")


def load_model(path: str, device="cpu", _chain: tuple[str, ...] = ()):
    """Any checkpoint's model (adapters kept, unmerged) in eval mode, and its meta.json."""
    from core import checkpoint as ckpt
    from core.model import GPT

    meta = layout.read_checkpoint_meta(path)
    model = GPT(ckpt.model_config(meta, path)).to(device)
    spec = meta.get("lora")
    if spec:
        apply_lora(model, spec["rank"], spec["alpha"], 0.0, spec["targets"])
    load_weights_any(model, path, device, _chain)
    return model.eval(), meta


def build_model(cfg, device: str, fresh: bool):
    """(cfg, model) for a run: a fresh GPT for finetune none; for full/lora the base's model config and
    (when `fresh`, i.e. not resuming) its weights, adapters on top for lora."""
    from core.model import GPT

    t = cfg.train
    if t.finetune == "none":
        model = GPT(cfg.model).to(device)
        model.grad_checkpointing = t.grad_checkpointing
        return cfg, model
    problem = layout.checkpoint_problem(t.init_from)
    if problem:
        raise UsageError(f"train.init_from: {problem}", "train.init_from")
    base_meta = layout.read_checkpoint_meta(t.init_from)
    from core import checkpoint as ckpt

    base_cfg = ckpt.model_config(base_meta, t.init_from)
    if cfg.model.vocab_size and base_cfg.vocab_size < cfg.model.vocab_size:
        raise UsageError(f"data.dir: the data's vocabulary ({cfg.model.vocab_size}) is larger than the base "
                         f"model's ({base_cfg.vocab_size}); prepare it with --tokenizer-from {t.init_from}",
                         "data.dir")
    base_cfg = replace(base_cfg, dropout=cfg.model.dropout)
    cfg = replace(cfg, model=base_cfg)
    model = GPT(base_cfg).to(device)
    model.grad_checkpointing = t.grad_checkpointing
    if t.finetune == "lora":
        apply_lora(model, t.lora_rank, t.lora_alpha, t.lora_dropout, t.lora_targets)
    if fresh:
        try:
            _load_base(model, t.init_from, device)
        except CheckpointError as exc:
            raise UsageError(str(exc), "train.init_from") from None
    return cfg, model


def note_lora_child(base: str, run_dir: str) -> None:
    """Record in the base checkpoint that the run at `run_dir` trains LoRA adapters on it, so that the base
    run's keep_checkpoints never prunes it (core.checkpoint.prune_checkpoints). A read-only base (a shared
    or imported model on a read-only disk) is left as it is: nothing there prunes it anyway."""
    run_dir = os.path.abspath(run_dir)
    if run_dir in layout.lora_children(base):
        return
    try:
        with open(os.path.join(base, layout.LORA_CHILDREN), "a", encoding="utf-8") as fh:
            fh.write(run_dir + "\n")
    except OSError:
        pass


CHAT_KEYS = ("chat_template", "eos_token", "eos_token_id", "bos_token", "bos_token_id")


def finetune_meta(tr) -> dict:
    """What a fine-tuned checkpoint's meta.json adds: the chat template and special tokens (from the
    base, then the SFT data), and for LoRA the adapter settings and the base checkpoint."""
    t, out = tr.cfg.train, {}
    if t.finetune != "none" and t.init_from:
        base = layout.read_checkpoint_meta(t.init_from)
        out.update({k: base[k] for k in CHAT_KEYS if base.get(k) is not None})
    if tr.data_meta.get("kind") == "sft":
        d = tr.data_meta
        out.update({k: v for k, v in (("chat_template", d.get("chat_template")), ("eos_token", d.get("eos_token")),
                                      ("eos_token_id", d.get("eos_id")), ("bos_token", d.get("bos_token")))
                    if v is not None})
        if d.get("template") == "builtin" and not out.get("chat_template"):
            out.update(_builtin_chat(tr.cfg.data.dir, out, d.get("builtin_template")))
    if is_lora(tr.raw_model):
        base = os.path.abspath(t.init_from)
        # every checkpoint folder of the run sits at the same depth: the path relative to one fits them all
        here = os.path.join(os.path.abspath(tr.cfg.run.dir), layout.CHECKPOINTS, layout.step_dir_name(0))
        out["lora"] = {**tr.raw_model.lora_spec, "base": base, "base_relative": os.path.relpath(base, here)}
    return out


def _builtin_chat(data_dir: str, meta: dict, template: str | None = None) -> dict:
    """A model fine-tuned on the built-in template records it (as its data folder wrote it: the markers its
    vocabulary spells) as its chat template; without an EOS token its answers end with the template's
    newline, which becomes the stop id when it is one token."""
    from core.sft import BUILTIN_TEMPLATE

    out: dict = {"chat_template": template or BUILTIN_TEMPLATE}
    end = _turn_end_id(data_dir) if meta.get("eos_token_id") is None else None
    if end is not None:
        out["eos_token_id"] = end
    return out


@functools.lru_cache(maxsize=4)
def _turn_end_id(data_dir: str) -> int | None:
    """The id of the built-in template's turn end when it is one token (read once per data folder, not at
    every checkpoint)."""
    from core.sft import BUILTIN_END
    from core.tokenizer import load_tokenizer

    ids = load_tokenizer(data_dir).encode(BUILTIN_END)
    return ids[0] if len(ids) == 1 else None
