"""`llm-train eval`: how well a checkpoint predicts a text file, and how well it answers prompts.

Text: the file is read in ~64 KB pieces cut at newlines, encoded, and cut into windows of block_size + 1
tokens that overlap by one token, so every token after the first is predicted exactly once with up to
block_size tokens of context. loss = mean negative log-likelihood (nats) over predicted tokens,
perplexity = exp(loss), bits_per_byte = total NLL / ln 2 / the file's UTF-8 bytes (comparable across
tokenizers). unknown_tokens counts the tokens that are the tokenizer's unknown token (text outside a
character vocabulary), unknown_percent their share: where there are many, the figures say little about the text. A progress bar goes to
stderr, or (done, total) goes to a callback (`--events`).

Pairs: {"prompt", "reference"} JSON lines; each prompt is rendered with the checkpoint's chat template (or
the built-in one, core.sft; --raw uses it as is) and answered greedily (or sampled at --temperature with
--seed) until eos (or the built-in template's end of turn). BLEU is sacrebleu's corpus BLEU with effective
order (n-gram orders no answer is long enough for are left out, as sacrebleu does for sentence BLEU: the
standard score is the same whenever some answer has 4 or more words, and 0 for every set of shorter
answers, a correct one-word answer included), ROUGE-L the
mean rouge-score F-measure, exact match the share of answers equal to their reference after stripping
whitespace.
"""

from __future__ import annotations

import json
import math
import os
import sys

import torch

from core.errors import DataError, UsageError
from core.layout import jsonl_lines

PIECE_BYTES = 64 << 10
WINDOWS_PER_BATCH = 8


def _pieces(path: str):
    """(text, bytes) pieces of a UTF-8 file cut at line ends."""
    try:
        fh = open(path, encoding="utf-8", newline="")
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}") from None
    with fh:
        buf: list[str] = []
        size = 0
        try:
            for line in fh:
                buf.append(line)
                size += len(line)
                if size >= PIECE_BYTES:
                    text = "".join(buf)
                    yield text, len(text.encode("utf-8"))
                    buf, size = [], 0
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        if buf:
            text = "".join(buf)
            yield text, len(text.encode("utf-8"))


class _Bar:
    """A progress bar on stderr, or with `report` a call report(done, total) per percent moved."""

    def __init__(self, total: int, report=None):
        self.total, self.last, self.report = max(1, total), -1, report

    def __call__(self, done: int) -> None:
        pct = int(100 * done / self.total)
        if pct != self.last:
            self.last = pct
            if self.report is not None:
                self.report(done, self.total)
            else:
                print(f"\reval {'#' * (pct // 4):<25} {pct:3d}%", end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.report is None:
            print(file=sys.stderr, flush=True)


def _bar(total: int, progress) -> _Bar | None:
    """progress: True (stderr bar), False (none) or a callable(done, total)."""
    if progress is False or progress is None:
        return None
    return _Bar(total, None if progress is True else progress)


@torch.no_grad()
def _window_nll(model, windows: list[list[int]], device) -> tuple[float, int]:
    """Summed NLL (nats) and predicted-token count of some windows (padded with ignored targets)."""
    T = max(len(w) for w in windows) - 1
    x = torch.zeros((len(windows), T), dtype=torch.long)
    y = torch.full((len(windows), T), -1, dtype=torch.long)
    for r, w in enumerate(windows):
        x[r, :len(w) - 1] = torch.tensor(w[:-1])
        y[r, :len(w) - 1] = torch.tensor(w[1:])
    count = int((y >= 0).sum())
    if not count:
        return 0.0, 0
    # The model's own loss (the mean over the targets), in chunks where the logits would be large: a batch
    # of 2048-token windows of a 49k-vocabulary model would otherwise hold gigabytes of logits.
    _, loss, _ = model(x.to(device), y.to(device))
    return float(loss) * count, count


def evaluate_text(model, meta: dict, ckpt_path: str, text_file: str, device, progress=True) -> dict:
    from core.generate import load_tokenizer_for

    tok = load_tokenizer_for(ckpt_path, meta)
    T = model.cfg.block_size
    total_bytes = os.path.getsize(text_file) if os.path.isfile(text_file) else 0
    bar = _bar(total_bytes, progress)
    nll, count, n_bytes, buf, pending, unknown = 0.0, 0, 0, [], [], 0
    unk_id = getattr(tok, "unk_id", None)

    def flush(windows):
        nonlocal nll, count
        if windows:
            a, b = _window_nll(model, windows, device)
            nll, count = nll + a, count + b
            windows.clear()

    for text, size in _pieces(text_file):
        ids = tok.encode(text)
        unknown += ids.count(unk_id) if unk_id is not None else 0
        buf += ids
        n_bytes += size
        while len(buf) >= T + 1:
            pending.append(buf[:T + 1])
            buf = buf[T:]
            if len(pending) >= WINDOWS_PER_BATCH:
                flush(pending)
        if bar:
            bar(n_bytes)
    if len(buf) >= 2:
        pending.append(buf)
    flush(pending)
    if bar:
        bar.close()
    if count == 0:
        raise DataError(f"{text_file}: too short to evaluate (needs at least 2 tokens)")
    loss = nll / count
    return {"loss": loss, "perplexity": math.exp(loss), "bits_per_byte": nll / math.log(2) / n_bytes,
            "tokens": count, "bytes": n_bytes, "unknown_tokens": unknown,
            "unknown_percent": 100 * unknown / (count + 1),  # of every token read (the first is not predicted)
            "checkpoint": ckpt_path,
            "file": os.path.abspath(text_file)}


def evaluate_split(model, meta: dict, ckpt_path: str, data_dir: str, device, progress=True) -> dict:
    """A prepared data set's validation split scored as a text file is (the same windows): the figures of
    the text the run held out, whole, where training's evaluations sample `eval_steps` batches of it. The
    data set must be tokenized as the checkpoint is; bytes are the tokens' own (separators not counted)."""
    import numpy as np

    from core.data import open_split, read_meta
    from core.generate import load_tokenizer_for
    from core.tokenizer import load_tokenizer

    data_meta = read_meta(data_dir)  # PrepareError (a DataError) naming the folder
    if data_meta.get("kind") == "sft":
        raise UsageError(f"{data_dir} is instruction data (prompts masked out of the loss): evaluate the model "
                         f"on question/answer pairs instead (--pairs)", "--data")
    tok = load_tokenizer_for(ckpt_path, meta)
    if json.loads(load_tokenizer(data_dir).tokenizer.to_str()) != json.loads(tok.tokenizer.to_str()):
        raise UsageError(f"{data_dir} was tokenized with another vocabulary than the checkpoint's: its token ids "
                         f"mean other text to this model (prepare it with --tokenizer-from the checkpoint)", "--data")
    ids = open_split(data_dir, "val")
    piece_bytes = np.array([tok.text_bytes(i) for i in range(tok.vocab_size)] + [0])
    T, n = model.cfg.block_size, len(ids)
    bar = _bar(n, progress)
    nll, count, windows = 0.0, 0, []
    for start in range(0, n - 1, T):  # windows of T + 1 tokens overlapping by one, as evaluate_text's
        windows.append(ids[start:start + T + 1].astype(np.int64).tolist())
        if len(windows) >= WINDOWS_PER_BATCH or start + T >= n - 1:
            a, b = _window_nll(model, windows, device)
            nll, count, windows = nll + a, count + b, []
            if bar:
                bar(min(n, start + T + 1))
    if bar:
        bar.close()
    unk = tok.unk_id
    unknown = int((np.asarray(ids) == unk).sum()) if unk is not None else 0
    n_bytes = int(piece_bytes[np.minimum(np.asarray(ids, dtype=np.int64), tok.vocab_size)].sum())
    loss = nll / count
    return {"loss": loss, "perplexity": math.exp(loss), "bits_per_byte": nll / math.log(2) / max(1, n_bytes),
            "tokens": count, "bytes": n_bytes, "unknown_tokens": unknown, "unknown_percent": 100 * unknown / n,
            "checkpoint": ckpt_path, "file": os.path.abspath(data_dir), "split": "val"}


def read_pairs(path: str) -> list[tuple[str, str]]:
    pairs = []
    for where, line in jsonl_lines(path):
        try:
            obj = json.loads(line)
        except ValueError as exc:
            raise DataError(f"{where}: not JSON ({exc})") from None
        if not isinstance(obj, dict) or not all(isinstance(obj.get(k), str) for k in ("prompt", "reference")):
            raise DataError(f"{where}: expected {{\"prompt\": str, \"reference\": str}}")
        pairs.append((obj["prompt"], obj["reference"]))
    if not pairs:
        raise DataError(f"{path}: no pairs")
    return pairs


def greedy(model, ids: list[int], max_new: int, stop_ids: set[int], device, temperature: float = 0.0,
           generator: torch.Generator | None = None) -> list[int]:
    """The answer's token ids, decoded with the KV cache (core.generate): argmax each step (temperature 0),
    else sampled from softmax(logits / t) with a seed drawn from `generator`; stops before a stop id."""
    from core.generate import SampleParams, generate_steps

    seed = int(torch.randint(0, 2**31 - 1, (), generator=generator)) if temperature > 0 else 0
    out: list[int] = []
    for step in generate_steps(model, ids, SampleParams(max_new_tokens=max_new, temperature=temperature,
                                                        seed=seed)):
        if step.token_id in stop_ids:
            break
        out.append(step.token_id)
    return out


def scores(generations: list[str], references: list[str]) -> dict:
    """BLEU (sacrebleu corpus), ROUGE-L (mean F), exact match; UsageError naming the package if missing."""
    try:
        import sacrebleu
        from rouge_score import rouge_scorer
    except ImportError as exc:
        raise UsageError(f"eval --pairs needs the Python package {exc.name!r}, a dependency of this program that "
                         f"is not installed: pip install sacrebleu rouge-score") from None
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    rouge = [scorer.score(r, g)["rougeL"].fmeasure for g, r in zip(generations, references, strict=True)]
    exact = [g.strip() == r.strip() for g, r in zip(generations, references, strict=True)]
    bleu = sacrebleu.metrics.BLEU(effective_order=True)
    return {"bleu": bleu.corpus_score(generations, [references]).score,
            "rouge_l": sum(rouge) / len(rouge), "exact_match": sum(exact) / len(exact), "n": len(exact)}


def evaluate_pairs(model, meta: dict, ckpt_path: str, pairs_file: str, device, max_new: int = 128,
                   raw: bool = False, progress=True, temperature: float = 0.0, seed: int = 0) -> dict:
    from core.generate import load_tokenizer_for
    from core.sft import BUILTIN_END, ChatFormat

    scores([""], [""])  # a missing package is named before any generation
    tok = load_tokenizer_for(ckpt_path, meta)
    fmt = ChatFormat(meta, tok)
    pairs = read_pairs(pairs_file)
    bar = _bar(len(pairs), progress)
    generator = torch.Generator().manual_seed(seed)
    gens = []
    for k, (prompt, ref) in enumerate(pairs):
        text = prompt if raw else fmt.prompt(prompt)
        out = tok.decode(greedy(model, tok.encode(text), max_new, fmt.stop_ids, device, temperature, generator))
        if fmt.kind == "builtin" and not raw:
            out = out.split(BUILTIN_END)[0]
        gens.append({"prompt": prompt, "reference": ref, "generation": out})
        if bar:
            bar(k + 1)
    if bar:
        bar.close()
    result = scores([g["generation"] for g in gens], [g["reference"] for g in gens])
    return {**result, "generations": gens, "checkpoint": ckpt_path, "file": os.path.abspath(pairs_file)}
