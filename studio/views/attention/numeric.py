"""Attention numbers for the views: loading, aggregates (mean over heads, rollout), export. Pure numpy.

An attention set is probs [n_layer, n_head, T, T] (row = the token attending, "from"; column = the token
attended to, "to"; rows sum to 1) plus the T token display pieces.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass, field

import numpy as np

SNAPSHOT_RE = re.compile(r"^step-(\d+)\.npz$")


@dataclass
class AttentionSet:
    probs: np.ndarray                       # [n_layer, n_head, T, T] float32
    tokens: list[str]                       # T display pieces
    label: str = ""                         # where it came from (checkpoint, snapshot step)
    token_ids: list[int] = field(default_factory=list)

    @property
    def n_layer(self) -> int:
        return int(self.probs.shape[0])

    @property
    def n_head(self) -> int:
        return int(self.probs.shape[1])

    @property
    def T(self) -> int:  # noqa: N802 (the usual name for sequence length)
        return int(self.probs.shape[-1])


def load_npz(path: str, label: str = "") -> AttentionSet:
    """A training snapshot (RUN_DIR/attention/step-NNNNNN.npz: probs, tokens, ids)."""
    with np.load(path, allow_pickle=False) as z:
        probs = np.asarray(z["probs"], dtype=np.float32)
        tokens = [str(t) for t in z["tokens"]] if "tokens" in z else [str(i) for i in range(probs.shape[-1])]
        ids = [int(i) for i in z["ids"]] if "ids" in z else []
    check_shape(probs, len(tokens))
    return AttentionSet(probs, tokens, label, ids)


def check_shape(probs: np.ndarray, n_tokens: int) -> None:
    if probs.ndim != 4 or probs.shape[-1] != probs.shape[-2] or probs.shape[-1] != n_tokens:
        raise ValueError(f"attention array has shape {list(probs.shape)}; expected [n_layer, n_head, T, T] "
                         f"with T = {n_tokens} tokens")


def mean_over_heads(probs: np.ndarray) -> np.ndarray:
    """[L, H, T, T] -> [L, T, T]."""
    return probs.mean(axis=1)


def rollout(probs: np.ndarray) -> np.ndarray:
    """Attention rollout (Abnar & Zuidema 2020), [L, H, T, T] -> [L, T, T]: entry l is how much each token
    draws on each input token after layers 0..l, with heads averaged, the residual connection modelled as
    an identity added to each layer's map, rows renormalised, and the layers multiplied through."""
    mean = probs.astype(np.float64).mean(axis=1)
    eye = np.eye(mean.shape[-1])
    out = np.empty_like(mean)
    acc = eye
    for layer in range(mean.shape[0]):
        a = mean[layer] + eye
        a /= a.sum(axis=-1, keepdims=True)
        acc = a @ acc
        out[layer] = acc
    return out.astype(np.float32)


def list_snapshots(run_dir: str) -> list[tuple[int, str]]:
    """(step, path) of RUN_DIR/attention/step-*.npz, oldest first."""
    folder = os.path.join(run_dir, "attention")
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    out = []
    for name in names:
        m = SNAPSHOT_RE.match(name)
        if m:
            out.append((int(m.group(1)), os.path.join(folder, name)))
    return sorted(out)


def visible(piece: str) -> str:
    """A token as a label: whitespace made visible, control characters escaped."""
    out = piece.replace(" ", "␣").replace("\n", "⏎").replace("\t", "⇥").replace("\r", "␍")
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in out) or "∅"


def save_csv(path: str, matrix: np.ndarray, tokens: list[str]) -> None:
    """The shown matrix with the tokens as header row and first column (rows: from, columns: to)."""
    labels = [f"{i}:{visible(t)}" for i, t in enumerate(tokens)]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["from \\ to", *labels])
        for label, row in zip(labels, matrix, strict=True):
            w.writerow([label, *(f"{v:.6g}" for v in row)])
