"""PrepareRequest: what `llm-train prepare` is asked to do, and its command-line arguments. Pure Python
(no Qt), so the command-line demo builder uses it too.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from core.errors import UsageError

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class PrepareRequest:
    """What to prepare: input paths (or @builtin corpora), the output folder and the tokenizer."""

    sources: tuple[str, ...]
    out: str
    tokenizer: str = "bpe"
    vocab_size: int | None = None       # BPE only
    val_fraction: float | None = None   # None: the engine's default
    format: str = "text"                # "text" | "sft" (instruction data, JSON Lines)
    tokenizer_from: str | None = None   # a base checkpoint: its tokenizer (and chat template) instead of a new one

    def arguments(self) -> list[str]:
        """`llm-train prepare` arguments (without the subcommand), events on."""
        args = ["--input", *self.sources, "--out", self.out]
        if self.tokenizer_from:
            args += ["--format", self.format, "--tokenizer-from", self.tokenizer_from]
        else:
            args += ["--tokenizer", self.tokenizer]
            if self.tokenizer == "bpe" and self.vocab_size:
                args += ["--vocab-size", str(self.vocab_size)]
        if self.val_fraction is not None:
            args += ["--val-fraction", f"{self.val_fraction:g}"]
        return [*args, "--events"]

    @property
    def name(self) -> str:
        return os.path.basename(self.out)


def make_request(data_root: str | None, sources: list[str], name: str, tokenizer: str = "bpe",
                 vocab_size: int | None = None, val_fraction: float | None = None) -> PrepareRequest:
    """A request for WORKSPACE/data/<name>; UsageError (with the field) when the choices are not ready."""
    name = name.strip()
    if not data_root:
        raise UsageError("Open a workspace first.", field="workspace")
    if not sources:
        raise UsageError("Add at least one source: files, a folder, or a built-in corpus such as @synthetic.",
                         field="sources")
    if not NAME_RE.match(name):
        raise UsageError("Name the data set with letters, digits, '.', '_' or '-' (it becomes a folder "
                         "name).", field="name")
    return PrepareRequest(tuple(sources), os.path.join(data_root, name), tokenizer, vocab_size, val_fraction)
