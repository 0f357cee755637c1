"""Saved evaluations of checkpoints (`llm-train eval --save` writes CHECKPOINT/eval/*.json, see core.layout):
typed reads, the figures a run list and a comparison show, and the words for them. Pure Python, no Qt.

A result file is written by the engine and never changed afterwards, so a read is cached by the file's
(mtime, size): the run list asks for the figures of every run on each refresh. A file that is damaged or
not a result is left out (it cannot crash the studio).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field

from core import layout

TEXT_FIGURES = ("loss", "perplexity", "bits_per_byte", "tokens", "bytes", "unknown_tokens", "unknown_percent")
PAIRS_FIGURES = ("bleu", "rouge_l", "exact_match", "n")
# the comparison table's columns, in order, from the latest evaluation of each kind
COMPARE_COLUMNS = ("eval_step", "eval_perplexity", "eval_bits_per_byte", "eval_bleu", "eval_rouge_l",
                   "eval_exact_match")
_CACHE_SIZE = 256
MAX_RESULT_BYTES = 64 << 20  # thousands of generations fit; a bigger file is no result of ours


@dataclass(frozen=True)
class Generation:
    prompt: str
    reference: str
    generation: str

    @property
    def exact(self) -> bool:
        """The engine's exact match: equal after stripping whitespace."""
        return self.generation.strip() == self.reference.strip()


@dataclass(frozen=True)
class Evaluation:
    path: str
    kind: str                       # "text" | "pairs"
    created: float                  # seconds since the epoch
    step: int | None                # the checkpoint's step
    file: str                       # the evaluated file
    figures: dict = field(default_factory=dict)   # TEXT_FIGURES or PAIRS_FIGURES present as numbers
    options: dict = field(default_factory=dict)   # pairs: max_new_tokens, raw, temperature, seed
    generations: tuple[Generation, ...] = ()
    split: str = ""                 # "val" where `file` is a data set and its validation split was scored

    def when(self) -> str:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(self.created)) if self.created else "–"

    def file_name(self) -> str:
        name = os.path.basename(self.file) or "–"
        return f"{name} ({'validation' if self.split == 'val' else self.split} split)" if self.split else name

    def unknown_percent(self) -> float:
        """The share (%) of a text evaluation's tokens that are the tokenizer's unknown token (text outside
        the model's vocabulary: its figures then say little about the file), as the engine worked it out; 0
        when none or not recorded."""
        return self.figures.get("unknown_percent", 0.0)

    def headline(self) -> str:
        """'perplexity 12.34 · 1.234 bits/byte · 4,096 tokens (3.1% unknown)' or
        'BLEU 41.2 · ROUGE-L 0.612 · exact match 40% · n=10'."""
        f = self.figures
        if self.kind == "text":
            unknown = self.unknown_percent()
            return " · ".join(x for x in (
                f"perplexity {f['perplexity']:.4g}" if "perplexity" in f else "",
                f"{f['bits_per_byte']:.4g} bits/byte" if "bits_per_byte" in f else "",
                f"{int(f['tokens']):,} tokens" if "tokens" in f else "") if x) + (
                f" ({unknown:.1f}% unknown to its vocabulary)" if unknown >= 0.05 else
                " (a few unknown to its vocabulary)" if unknown else "")
        return " · ".join(x for x in (
            f"BLEU {f['bleu']:.1f}" if "bleu" in f else "",
            f"ROUGE-L {f['rouge_l']:.3f}" if "rouge_l" in f else "",
            f"exact match {100 * f['exact_match']:.0f}%" if "exact_match" in f else "",
            f"n={int(f['n'])}" if "n" in f else "") if x)

    def decoding(self) -> str:
        """How a pairs evaluation answered: 'greedy, up to 64 new tokens, chat template'."""
        o = self.options
        if self.kind != "pairs" or not o:
            return ""
        t = o.get("temperature") or 0
        how = "greedy" if not t else f"sampled at temperature {t:g} (seed {o.get('seed', 0)})"
        return (f"{how}, up to {o.get('max_new_tokens', '?')} new tokens, "
                f"{'raw prompts' if o.get('raw') else 'chat template'}")


def _number(value) -> float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


def _parse(path: str, data: dict) -> Evaluation | None:
    kind = data.get("kind")
    if kind not in layout.EVAL_KINDS:
        return None
    names = TEXT_FIGURES if kind == "text" else PAIRS_FIGURES
    figures = {k: v for k in names if (v := _number(data.get(k))) is not None}
    gens = data.get("generations") if kind == "pairs" else []
    if not isinstance(gens, list):
        return None
    rows = tuple(Generation(g["prompt"], g["reference"], g["generation"]) for g in gens
                 if isinstance(g, dict) and all(isinstance(g.get(k), str) for k in ("prompt", "reference",
                                                                                      "generation")))
    step = data.get("step")
    options = data.get("options")
    return Evaluation(path, kind, _number(data.get("created")) or 0.0,
                      step if isinstance(step, int) and not isinstance(step, bool) else None,
                      data.get("file") if isinstance(data.get("file"), str) else "", figures,
                      options if isinstance(options, dict) else {}, rows,
                      data.get("split") if isinstance(data.get("split"), str) else "")


_cache: dict[str, tuple[tuple[int, int], Evaluation | None]] = {}


def read_evaluation(path: str) -> Evaluation | None:
    """The result in `path`, or None when it is missing, damaged or not an evaluation result."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    key = (st.st_mtime_ns, st.st_size)
    hit = _cache.get(path)
    if hit is not None and hit[0] == key:
        return hit[1]
    data = layout.read_json(path) if st.st_size <= MAX_RESULT_BYTES else {}
    result = _parse(path, data) if data else None
    if len(_cache) >= _CACHE_SIZE:
        _cache.clear()
    _cache[path] = (key, result)
    return result


def checkpoint_evaluations(checkpoint: str) -> list[Evaluation]:
    """A checkpoint's saved evaluations, newest first."""
    found = (read_evaluation(p) for p in reversed(layout.list_evaluations(checkpoint)))
    return [e for e in found if e is not None]


def latest_of_each_kind(checkpoint: str) -> dict[str, Evaluation]:
    """{'text': newest text evaluation, 'pairs': newest pairs evaluation} of a checkpoint (kinds missing
    when there is none)."""
    out: dict[str, Evaluation] = {}
    for e in checkpoint_evaluations(checkpoint):
        out.setdefault(e.kind, e)
    return out


def run_figures(run_dir: str) -> dict:
    """The run list's evaluation figures: from the newest text and pairs evaluations of the run's latest
    checkpoint. Keys eval_perplexity, eval_bits_per_byte, eval_bleu, eval_rouge_l, eval_exact_match (None
    when unknown), eval_step and eval_tip (the words for a tooltip)."""
    out: dict = dict.fromkeys(COMPARE_COLUMNS)
    out["eval_tip"] = ""
    ckpt = layout.latest_checkpoint(run_dir)
    latest = latest_of_each_kind(ckpt) if ckpt else {}
    if not latest:
        return out
    out["eval_step"] = layout.checkpoint_step(ckpt)
    text, pairs = latest.get("text"), latest.get("pairs")
    if text is not None:
        out["eval_perplexity"] = text.figures.get("perplexity")
        out["eval_bits_per_byte"] = text.figures.get("bits_per_byte")
    if pairs is not None:
        out["eval_bleu"] = pairs.figures.get("bleu")
        out["eval_rouge_l"] = pairs.figures.get("rouge_l")
        out["eval_exact_match"] = pairs.figures.get("exact_match")
    out["eval_tip"] = "\n".join(f"step {out['eval_step']} · {e.file_name()} ({e.when()}): {e.headline()}"
                                for e in (text, pairs) if e is not None)
    return out
