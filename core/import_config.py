"""An imported model's hyper-parameters as our ModelConfig, in plain Python (no torch): Hugging Face's
config.json read by family (gpt2; llama, mistral, qwen2, qwen3), with a UsageError naming the key for what we
cannot build; and a PEFT LoRA adapter's adapter_config.json, refused by field where we cannot hold it. The
importers (core.interop) use it, and the studio's Import dialog says what a folder holds before the import
starts.
"""

from __future__ import annotations

import json
import numbers
import os

from core.config import ModelConfig
from core.errors import UsageError, quote
from core.layout import load_json


def positive_int(value, where: str, default=None) -> int:
    """A hyper-parameter read from an imported file's metadata as a positive integer; UsageError naming
    `where` (the file and the key) when it is missing or of another kind (a traceback otherwise)."""
    if value is None:
        value = default
    if value is None:
        raise UsageError(f"{where} is missing", where.rpartition(" ")[2])
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) <= 0:
        raise UsageError(f"{where} must be a positive integer, got {quote(value)}", where.rpartition(" ")[2])
    return int(value)


def model_config(fields: dict, where: str):
    """The ModelConfig of an imported model, validated like any config (e.g. n_embd a multiple of n_head);
    UsageError naming the source and the fields otherwise."""
    from core.config import ConfigError, from_dict

    try:
        return from_dict({"model": fields}).model
    except ConfigError as exc:
        raise UsageError(f"{where}: the model it describes is not one we can build: "
                         + "; ".join(p.message for p in exc.problems), "model") from None


def explicit_head_dim(head_size: int, width: int, heads: int) -> int | None:
    """model.head_dim for an imported model whose heads are `head_size` wide: None (n_embd / n_head) where
    that is what they are, else the size itself (Qwen3-0.6B: 16 heads of 128 over a width of 1024)."""
    return None if head_size == width // heads and not width % heads else head_size


SUPPORTED = {"gpt2": "gpt2", "llama": "llama", "mistral": "llama", "qwen2": "llama",  # model_type -> family
             "qwen3": "llama"}  # Qwen3: Llama's layout with a learned QK-norm and its own head size


def read_hf_config(folder: str, block_size: int | None = None) -> tuple[ModelConfig, str, dict]:
    """(our ModelConfig, layout family, raw config.json); UsageError naming the field for what we lack."""
    try:
        raw = load_json(os.path.join(folder, "config.json"), "config.json")
    except ValueError as exc:
        raise UsageError(f"not a Hugging Face model folder: {exc}") from None
    kind = raw.get("model_type")
    if kind not in SUPPORTED:
        named = ", ".join(map(str, raw.get("architectures") or []))
        raise UsageError(f"config.json: model_type {kind!r} ({named}) is not supported; supported: "
                         f"{', '.join(SUPPORTED)}", "model_type")
    cfg = _gpt2_config(raw) if kind == "gpt2" else _llama_config(raw, kind)
    if block_size:
        cfg["block_size"] = min(cfg["block_size"], block_size)
    return model_config(cfg, os.path.join(folder, "config.json")), SUPPORTED[kind], raw


def _int(raw: dict, key: str, default=None) -> int:
    return positive_int(raw.get(key), f"config.json: {key}", default)


def _refuse(field: str, value, why: str):
    raise UsageError(f"config.json: {field}={value!r} is not supported ({why})", field)


def _gpt2_config(raw: dict) -> dict:
    act = raw.get("activation_function", "gelu_new")
    if act not in ("gelu_new", "gelu_pytorch_tanh"):
        _refuse("activation_function", act, "supported: gelu_new, the tanh-approximated GELU")
    for key in ("scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn"):
        if raw.get(key):
            _refuse(key, raw[key], "plain GPT-2 attention only")
    if raw.get("scale_attn_weights") is False:
        _refuse("scale_attn_weights", False, "attention is always scaled by 1/sqrt(head size)")
    d = _int(raw, "n_embd")
    return dict(n_layer=_int(raw, "n_layer"), n_head=_int(raw, "n_head"), n_embd=d, vocab_size=_int(raw, "vocab_size"),
                block_size=_int(raw, "n_positions", raw.get("n_ctx") or 1024), bias=True, pos_encoding="learned",
                norm="layernorm", activation="gelu", intermediate_size=_int(raw, "n_inner", 4 * d),
                norm_eps=raw.get("layer_norm_epsilon", 1e-5), tie_embeddings=raw.get("tie_word_embeddings", True))


def rope_theta_of(raw: dict) -> float:
    """rope_theta from config.json (transformers 4 writes it at top level, 5 inside rope_parameters)."""
    params = raw.get("rope_parameters") or {}
    scaling = raw.get("rope_scaling") or {}
    for key, value in (("rope_parameters", params), ("rope_scaling", scaling)):
        if not isinstance(value, dict):  # a traceback (AttributeError) before
            raise UsageError(f"config.json: {key} must be an object, got {quote(value)}", key)
    kind = params.get("rope_type") or scaling.get("rope_type") or scaling.get("type") or "default"
    if kind != "default":
        _refuse("rope_scaling", kind, "only plain RoPE; scaled variants (llama3, yarn, linear, dynamic) are not")
    theta = params.get("rope_theta") or raw.get("rope_theta") or 10000.0
    if isinstance(theta, bool) or not isinstance(theta, numbers.Real) or not theta > 0:
        raise UsageError(f"config.json: rope_theta must be a positive number, got {quote(theta)}", "rope_theta")
    return float(theta)


def _llama_config(raw: dict, kind: str) -> dict:
    if raw.get("hidden_act", "silu") != "silu":
        _refuse("hidden_act", raw["hidden_act"], "supported: silu (SwiGLU)")
    d, nh = _int(raw, "hidden_size"), _int(raw, "num_attention_heads")
    nkv = _int(raw, "num_key_value_heads", nh)
    head_dim = _int(raw, "head_dim", d // nh)
    attn_bias, mlp_bias = bool(raw.get("attention_bias", False)), bool(raw.get("mlp_bias", False))
    if attn_bias != mlp_bias:
        _refuse("attention_bias", attn_bias, f"our bias switch covers attention and MLP together; mlp_bias is "
                f"{mlp_bias}")
    block = _int(raw, "max_position_embeddings", 2048)
    if kind == "mistral" and raw.get("sliding_window"):  # within one window sliding attention is full attention
        block = min(block, _int(raw, "sliding_window"))
    if kind in ("qwen2", "qwen3") and raw.get("use_sliding_window"):
        _refuse("use_sliding_window", True, "full attention only")
    return dict(n_layer=_int(raw, "num_hidden_layers"), n_head=nh, n_kv_head=nkv if nkv != nh else None, n_embd=d,
                vocab_size=_int(raw, "vocab_size"), block_size=block, bias=attn_bias, qkv_bias=(kind == "qwen2"),
                pos_encoding="rope", norm="rmsnorm", activation="swiglu",
                intermediate_size=_int(raw, "intermediate_size"), rope_theta=rope_theta_of(raw),
                norm_eps=raw.get("rms_norm_eps", 1e-6), tie_embeddings=raw.get("tie_word_embeddings", False),
                head_dim=explicit_head_dim(head_dim, d, nh),
                qk_norm=kind == "qwen3", qk_norm_weight=kind == "qwen3")


# ----------------------------------------------------------------------------------------------- GGUF
GGUF_ARCHITECTURES = {"gpt2": "gpt2", "llama": "llama", "qwen2": "llama", "qwen3": "llama"}  # arch -> family
FILE_TYPES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K", 11: "Q3_K_S",
              12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K",
              32: "BF16"}  # llama.cpp's LlamaFileType, general.file_type
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


def read_gguf_header(path: str) -> tuple[dict, list[tuple[str, tuple[int, ...]]]]:
    """(metadata, [(tensor name, shape)]) of a .gguf file, read with the standard library only (the Import
    dialog describes a file before the optional `gguf` package is at hand); arrays are kept as their length,
    except short ones. UsageError naming the file when it is not a GGUF v2/v3 file."""
    import mmap
    import struct

    try:
        with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            if buf[:4] != b"GGUF" or struct.unpack_from("<I", buf, 4)[0] not in (2, 3):
                raise UsageError(f"{path}: not a GGUF file (version 2 or 3)")
            pos = 8

            def take(fmt: str):
                nonlocal pos
                (value,) = struct.unpack_from(fmt, buf, pos)
                pos += struct.calcsize(fmt)
                return value

            def text() -> str:
                nonlocal pos
                n = take("<Q")
                pos += n
                return bytes(buf[pos - n:pos]).decode("utf-8", "replace")

            def value(kind: int):
                nonlocal pos
                if kind == 8:
                    return text()
                if kind != 9:
                    return take(_SCALARS[kind])
                item, count = take("<I"), take("<Q")
                if item not in (8, 9) and count > 64:  # a long array of numbers: skipped in one step
                    pos += struct.calcsize(_SCALARS[item]) * count
                    return count
                items = [value(item) for _ in range(count)]  # strings: each says its length
                return items if count <= 64 else count

            n_tensors, n_kv = take("<Q"), take("<Q")
            fields = {}
            for _ in range(n_kv):
                key = text()
                fields[key] = value(take("<I"))
            tensors = []
            for _ in range(n_tensors):
                name = text()
                shape = tuple(take("<Q") for _ in range(take("<I")))
                take("<I"), take("<Q")  # type, offset
                tensors.append((name, shape))
            return fields, tensors
    except (OSError, ValueError, KeyError, struct.error) as exc:
        raise UsageError(f"cannot read {path} as GGUF: {exc}") from None


# ------------------------------------------------------------------------ PEFT adapters
ADAPTER_CONFIG = "adapter_config.json"


def is_adapter(path: str) -> bool:
    """Whether `path` is a PEFT adapter folder (its adapter_config.json), not a model."""
    return os.path.isfile(os.path.join(path, ADAPTER_CONFIG))


def read_peft_config(folder: str) -> dict:
    """adapter_config.json of a LoRA adapter folder; UsageError naming the field it cannot take."""
    path = os.path.join(folder, ADAPTER_CONFIG)
    try:
        with open(path, encoding="utf-8") as fh:
            cfg = json.load(fh)
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: cannot read it ({exc})") from None
    if not isinstance(cfg, dict):
        raise UsageError(f"{path}: not a JSON object")
    refusals = [("peft_type", cfg.get("peft_type", "LORA") != "LORA", "only LoRA adapters can be imported"),
                ("use_dora", bool(cfg.get("use_dora")), "DoRA adapters are not supported"),
                ("bias", cfg.get("bias", "none") != "none", "adapters that train biases are not supported"),
                ("modules_to_save", bool(cfg.get("modules_to_save")),
                 "the adapter also trained whole layers, which a LoRA checkpoint cannot hold"),
                ("rank_pattern", bool(cfg.get("rank_pattern")), "per-module ranks are not supported"),
                ("alpha_pattern", bool(cfg.get("alpha_pattern")), "per-module alphas are not supported")]
    for field, bad, why in refusals:
        if bad:
            raise UsageError(f"{path}: {field}: {why}", field)
    if not isinstance(cfg.get("r"), int) or cfg["r"] < 1:
        raise UsageError(f"{path}: r: a rank >= 1 is needed, got {cfg.get('r')!r}", "r")
    return cfg
