"""Which model configs the Hugging Face and GGUF exports can carry, in plain Python (no torch): the exporters
(core.interop) refuse the others with these messages, and the estimate (core.estimate, the studio's config
editor) says so before a run trains.

learned positions + LayerNorm + GELU  -> GPT-2
RoPE + RMSNorm + SwiGLU              -> Llama (Qwen2 when only q/k/v have biases)
the same with QK-norm, no biases      -> Qwen3 (a parameter-free QK-norm is written with weights of one)
Anything else (sinusoidal positions, QK-norm elsewhere, ReLU, mixed families) has no architecture there;
ONNX, which traces our own model, carries every config.
"""

from __future__ import annotations

from core.errors import UsageError

__all__ = ["check_exportable", "export_formats", "export_problems"]


def export_problems(cfg) -> list[tuple[str, str]]:
    """(message, field) for each part of a model config that Hugging Face and GGUF cannot carry; [] when none."""
    out = []
    learned = cfg.pos_encoding == "learned"
    # exported as Llama, QK-norm was dropped without a word: other logits (5.5 apart on a tiny model)
    if cfg.qk_norm and cfg.pos_encoding != "rope":
        out.append(("model.qk_norm: QK-norm is carried by Qwen3 only, which uses rope (GPT-2 has none); "
                    "export this model to ONNX, which keeps it", "model.qk_norm"))
    elif cfg.qk_norm and (cfg.bias or cfg.qkv_bias):
        field = "model.bias" if cfg.bias else "model.qkv_bias"
        out.append((f"{field}: Qwen3, the architecture with QK-norm, has no biases here; export this model to "
                    "ONNX, which keeps them", field))
    if cfg.pos_encoding == "sinusoidal":
        out.append(("model.pos_encoding: sinusoidal positions have no equivalent in the supported "
                    "architectures (GPT-2: learned; Llama/Qwen2/Qwen3: rope)", "model.pos_encoding"))
        return out
    if learned and cfg.head_dim not in (None, cfg.n_embd // cfg.n_head):
        out.append(("model.head_dim: GPT-2's heads are n_embd/n_head wide", "model.head_dim"))
    wants = (("norm", cfg.norm, "layernorm"), ("activation", cfg.activation, "gelu")) if learned else \
        (("norm", cfg.norm, "rmsnorm"), ("activation", cfg.activation, "swiglu"))
    family = "with learned positions has no equivalent (GPT-2 uses" if learned else \
        "with rope has no equivalent (Llama/Qwen use"
    out += [(f"model.{field}: {value} {family} {want})", f"model.{field}") for field, value, want in wants
            if value != want]
    if learned and cfg.n_kv_head not in (None, cfg.n_head):
        out.append(("model.n_kv_head: GPT-2 has no grouped-query attention", "model.n_kv_head"))
    return out


def check_exportable(cfg) -> str:
    """The layout family ("gpt2" or "llama") of a config, or a UsageError naming the first field that has none."""
    problems = export_problems(cfg)
    if problems:
        raise UsageError(*problems[0])
    return "gpt2" if cfg.pos_encoding == "learned" else "llama"


def export_formats(cfg) -> tuple[str, str]:
    """(the formats a model of this config exports to, why not Hugging Face and GGUF: "" when it does)."""
    problems = export_problems(cfg)
    if problems:
        return "ONNX", "; ".join(message for message, _field in problems)
    return "Hugging Face, GGUF, ONNX", ""
