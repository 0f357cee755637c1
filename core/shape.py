"""What a trained checkpoint fixes: the model's shape, which a resume or a fork must keep.

Torch-free, so that the studio checks an edited config against a run's checkpoint as the user types,
with the same fields and words the engine uses when it refuses one (core.trainer_setup.check_same_shape).
"""

from __future__ import annotations

from core.config import ModelConfig, Problem

SHAPE_FIELDS = ("n_layer", "n_head", "n_embd", "block_size", "vocab_size", "bias", "pos_encoding", "norm",
                "activation", "mlp_ratio", "tie_embeddings", "n_kv_head", "rope_theta", "norm_eps", "qkv_bias",
                "intermediate_size", "head_dim", "qk_norm_weight")
ENGINE_RULE = "the model shape cannot change when resuming or forking"


def shape_problems(new: ModelConfig, old: dict, source: str, *, unset_vocab_ok: bool = False,
                   rule: str = ENGINE_RULE) -> list[Problem]:
    """One Problem per shape field of `new` that differs from `old` (a checkpoint meta's config.model).
    `unset_vocab_ok`: a config whose vocab_size is empty (from the data) is not compared on it; the
    engine compares after filling it in from the data. `rule` ends each message."""
    problems, defaults = [], ModelConfig()  # a field an older checkpoint did not record has its default
    for name in SHAPE_FIELDS:
        a, b = getattr(new, name), old.get(name, getattr(defaults, name))
        if name == "vocab_size" and a is None and unset_vocab_ok:
            continue
        if a != b:
            problems.append(Problem(f"model.{name}", f"model.{name}: {a!r} differs from {b!r} in the checkpoint "
                                    f"{source}; {rule}"))
    return problems
