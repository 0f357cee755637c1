"""Attention numbers for the attention panel: the attention set, its snapshot reader, the aggregates (mean
over heads, rollout) and the CSV text of a shown matrix. Pure numpy, no Qt.

An attention set is probs [n_layer, n_head, T, T] (row = the token attending, "from"; column = the token
attended to, "to"; rows sum to 1) plus the T token display pieces.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

import numpy as np

from studio.workspace.token_labels import visible


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
    """A training snapshot (RUN_DIR/attention/step-NNNNNN.npz: probs, tokens, ids); no pickles."""
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


def matrix_csv(matrix: np.ndarray, tokens: list[str]) -> str:
    """The matrix as CSV text with the tokens as header row and first column (rows: from, columns: to)."""
    labels = [f"{i}:{visible(t)}" for i, t in enumerate(tokens)]
    buf = io.StringIO(newline="")
    w = csv.writer(buf)
    w.writerow(["from \\ to", *labels])
    for label, row in zip(labels, matrix, strict=True):
        w.writerow([label, *(f"{v:.6g}" for v in row)])
    return buf.getvalue()
