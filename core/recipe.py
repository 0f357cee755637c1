"""What a data set prepared with a base model's tokenizer was made from, as one digest (stdlib only).

`llm-train prepare --tokenizer-from BASE` records it in meta.json as "recipe": the bytes of every input file,
the base's tokenizer.json, what of the base's meta shapes the chat rendering (template, BOS/EOS), the
format, the split and, for instruction data, the context examples are cut to. Two preparations with one
recipe write the same data set, so the studio's Fine-tune dialog offers the one already prepared instead
of a copy (tasks-chat-sft-2, -3, ...). Folders and built-in corpora get no recipe (their file lists can
change unseen); nor does a data set whose tokenizer was trained on its own text.
"""

from __future__ import annotations

import hashlib
import json
import os

from core import layout

VERSION = 1
CHAT_KEYS = ("chat_template", "eos_token", "eos_token_id", "eos_id", "bos_token", "bos_token_id")
def recipe(inputs: list[str], fmt: str, tokenizer_from: str, block_size: int | None = None,
           val_fraction: float = 0.1, seed: int = 1337) -> str | None:
    """The digest of a preparation with the base checkpoint `tokenizer_from`'s tokenizer; None where it is
    not known for sure (an input that is not a plain file, a base without tokenizer.json or meta.json)."""
    if not inputs or not all(isinstance(p, str) and os.path.isfile(p) for p in inputs):
        return None
    try:
        base = layout.read_checkpoint_meta(tokenizer_from)
        tok = layout.file_sha256(os.path.join(tokenizer_from, layout.TOKENIZER))
        files = [layout.file_sha256(p) for p in inputs]
    except (OSError, ValueError):  # CheckpointError is a ValueError
        return None
    if fmt == "sft" and block_size is None:  # prepare_sft's default: the base model's context
        config = base.get("config")
        model = config.get("model") if isinstance(config, dict) else None
        block_size = model.get("block_size") if isinstance(model, dict) else None
    what = {"v": VERSION, "format": fmt, "files": files, "tokenizer": tok,
            "chat": {k: base.get(k) for k in CHAT_KEYS},
            "block_size": block_size if fmt == "sft" else None,
            "val_fraction": float(val_fraction), "seed": int(seed)}
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()
