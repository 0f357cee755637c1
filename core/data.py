"""Corpus -> tokenizer + flat token files: the `llm-train prepare` step, and the readers of its output.

A data folder (DATA_DIR) holds:

* ``tokenizer.json`` - a HF `tokenizers` file (``Tokenizer.from_file``) of one of three kinds:
  ``bpe`` (byte-level BPE, any unicode, with an ``<|endoftext|>`` separator), ``char`` (one token per
  distinct character of the corpus plus ``<unk>``) or ``byte`` (256 ids, id == byte value).
* ``train.bin`` / ``val.bin`` - flat token ids, native-endian ``uint16`` when the vocabulary has at most
  65536 ids, else ``uint32``, no header: ``numpy.memmap`` them (see `open_split`).
* ``meta.json`` - what was done, see `prepare`.

Stages (each reported to the `progress` callback): scan (list inputs, validate every file as UTF-8),
tokenizer (train/build it), encode (append ids to the .bin files), write (rename into place).
Memory does not grow with the corpus: files are validated, sampled and encoded as 64 KB pieces cut at
newlines (`core.corpora.read_pieces`); BPE is trained with `train_from_iterator` on a bounded sample
(TRAIN_SAMPLE_BYTES, the first share of every document, recorded as meta["tokenizer_sample_bytes"]);
pieces are encoded in small batches by `encode_batch_fast` on a thread pool (char and byte by an
equivalent numpy lookup) and appended to the .bin files. Everything is written into a temp folder next
to DATA_DIR and renamed into place at the end, so a failure or kill never leaves a half-written folder;
an existing data folder is swapped out only then, any other existing path is refused.

Validation split (deterministic from the seed): documents (files) are visited in a seeded shuffled
order and a document goes wholly to val if it still fits into the val budget (val_fraction of all
bytes). If that fills less than half the budget (a single file, or only a few big ones), every document
is split instead: its last val_fraction of bytes, from the next line start on, go to val (the usual
"tail of the token stream" split). For bpe each document is followed by `<|endoftext|>`; char and byte
have no separator token (documents are simply concatenated), keeping their vocabularies minimal.

No torch here (numpy + tokenizers only) and never Qt.
"""

from __future__ import annotations

import os
import shutil
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timezone

import numpy as np
import tokenizers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from core import layout
from core.corpora import (
    Document,
    PrepareError,
    find_cut,
    gather,
    plan_split,
    read_pieces,
)
from core.errors import quote
from core.layout import is_data_dir  # noqa: F401 (re-exported: the one data-folder rule)
from core.recipe import recipe
from core.tokenizer import EOT, UNK, TokenizerWrapper, byte_chars, load_tokenizer  # noqa: F401 (re-exported)

__all__ = ["PrepareError", "TokenizerWrapper", "is_data_dir", "load_tokenizer", "open_split", "prepare",
           "read_meta"]

FORMAT = 1
KINDS = ("bpe", "char", "byte")
DEFAULT_BPE_VOCAB = 4096
MAX_VOCAB = 1 << 20
TRAIN_SAMPLE_BYTES = 100_000_000  # BPE training memory/time grows with its sample, so it is bounded
BATCH_BYTES_PER_THREAD = 256 << 10  # text per encode thread per batch: keeps cores busy, bounds RAM
_REQUIRED_META = ("format", "vocab_size", "dtype", "train_tokens", "val_tokens", "tokenizer")


class _Reporter:
    """Rate-limits progress callbacks (the GUI needs a few updates a second, not one per piece)."""

    def __init__(self, callback: Callable[[dict], None] | None, interval_s: float = 0.2):
        self.callback, self.interval_s, self.last = callback, interval_s, 0.0

    def __call__(self, stage: str, done: float, total: float, force: bool = False) -> None:
        now = time.monotonic()
        if self.callback is not None and (force or now - self.last >= self.interval_s):
            self.last = now
            self.callback({"stage": stage, "done": int(min(done, total)), "total": int(total)})


# --------------------------------------------------------------------------- tokenizers


def _sample(docs: list[Document], limit: int, report: _Reporter, counter: list[int]) -> Iterator[str]:
    """Text pieces for tokenizer training: the first min(1, limit/total) of every document."""
    total = sum(d.size for d in docs)
    share = min(1.0, limit / total)
    ends = [d.size if share >= 1 else find_cut(d, int(d.size * share)) for d in docs]
    goal = sum(ends)
    report("tokenizer", 0, goal, force=True)
    for doc, end in zip(docs, ends, strict=True):
        for text in read_pieces(doc, 0, end):
            counter[0] += len(text.encode("utf-8"))
            report("tokenizer", counter[0], goal)
            yield text


def _build_tokenizer(kind: str, docs: list[Document], vocab_size: int | None,
                     report: _Reporter) -> tuple[Tokenizer, int]:
    """Train/build the tokenizer; returns it and the number of corpus bytes it was built from."""
    counter = [0]
    if kind == "byte":
        chars = byte_chars()
        tok = Tokenizer(models.BPE(vocab={c: b for b, c in enumerate(chars)}, merges=[]))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
        tok.decoder = decoders.ByteLevel()
        return tok, 0
    if kind == "char":  # the vocabulary must cover every character, so this reads the whole corpus
        seen: set[str] = set()
        for text in _sample(docs, sum(d.size for d in docs), report, counter):
            seen.update(text)
        if vocab_size is not None and vocab_size < len(seen) + 1:
            raise PrepareError(f"vocab_size {vocab_size} is too small for char: the corpus has "
                               f"{len(seen)} distinct characters (+1 for {UNK})")
        vocab = {c: i for i, c in enumerate(sorted(seen))}
        vocab[UNK] = len(vocab)
        tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=UNK))  # no merges: 1 char = 1 id
        tok.decoder = decoders.Fuse()  # concatenate, no spaces between tokens
        return tok, counter[0]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)  # no invented leading space
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size or DEFAULT_BPE_VOCAB, min_frequency=2,
                                  special_tokens=[EOT], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_sample(docs, TRAIN_SAMPLE_BYTES, report, counter), trainer)
    report("tokenizer", counter[0], counter[0], force=True)
    return tok, counter[0]


# --------------------------------------------------------------------------- encoding


def _batch_encoder(tok: Tokenizer, kind: str, dtype: type) -> Callable[[list[str]], list[np.ndarray]]:
    """texts -> one id array per text. char and byte take a numpy shortcut giving the very same ids
    as the tokenizer (tests check it): their Encodings would cost ~100 bytes of RAM per character."""
    if kind == "byte":  # id == byte value by construction
        return lambda texts: [np.frombuffer(t.encode("utf-8"), np.uint8).astype(dtype) for t in texts]
    if kind == "char":  # ids are the ranks of the sorted characters, then <unk>
        unk = tok.token_to_id(UNK)
        points = np.array(sorted(ord(c) for c in tok.get_vocab() if c != UNK), np.uint32)

        def chars(texts: list[str]) -> list[np.ndarray]:
            out = []
            for t in texts:
                x = np.frombuffer(t.encode("utf-32-le"), np.uint32)
                rank = np.searchsorted(points, x)
                known = points[np.minimum(rank, len(points) - 1)] == x
                out.append(np.where(known, rank, unk).astype(dtype))
            return out

        return chars
    # The ids are copied out inside the worker thread so each batch's Encodings are freed early.
    return lambda texts: [np.asarray(e.ids, dtype)
                          for e in tok.encode_batch_fast(texts, add_special_tokens=False)]


def _encode(encode: Callable[[list[str]], list[np.ndarray]], docs: list[Document],
            plan: list[list[tuple]], files: dict, dtype: type, eot_id: int | None,
            report: _Reporter) -> dict[str, int]:
    """Encode every segment in order, appending ids to files['train'|'val']; returns token counts.

    Each batch is split across a small thread pool (`encode_batch_fast` releases the GIL), so the
    GIL-bound work - reading the next batch, copying ids out of Encodings - overlaps with encoding
    instead of leaving cores idle between calls. At most two batches are in flight, bounding memory.
    """
    counts = {"train": 0, "val": 0}
    jobs: list[tuple[str, str | None]] = []  # (split, text) or (split, None) meaning "an EOT here"
    in_flight: deque[tuple[list, list[Future]]] = deque()
    eot = np.array([eot_id if eot_id is not None else 0], dtype)
    total, done, pending = sum(d.size for d in docs), 0, 0
    workers = max(1, min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                         else os.cpu_count() or 1))

    def write(batch: list[tuple[str, str | None]], futures: list[Future]) -> None:
        arrays = (a for f in futures for a in f.result())  # .result(): waits for the worker threads
        parts: dict[str, list[np.ndarray]] = {"train": [], "val": []}
        for split, text in batch:
            parts[split].append(eot if text is None else next(arrays))
        for split, arrays in parts.items():
            if arrays:
                ids = np.concatenate(arrays)
                files[split].write(ids.tobytes())
                counts[split] += int(ids.size)

    def submit(pool: ThreadPoolExecutor) -> None:
        texts = [t for _, t in jobs if t is not None]
        step = -(-len(texts) // workers) or 1  # contiguous slices keep the order of the pieces
        futures = [pool.submit(encode, texts[k:k + step]) for k in range(0, len(texts), step)]
        in_flight.append((list(jobs), futures))
        jobs.clear()
        while len(in_flight) > 1:
            write(*in_flight.popleft())

    report("encode", 0, total, force=True)
    with ThreadPoolExecutor(workers, thread_name_prefix="encode") as pool:
        for doc, segments in zip(docs, plan, strict=True):
            for split, start, end in segments:
                for text in read_pieces(doc, start, end):
                    jobs.append((split, text))
                    pending += len(text)
                    if pending >= BATCH_BYTES_PER_THREAD * workers:
                        submit(pool)
                        done, pending = done + pending, 0
                        report("encode", done, total)
            if eot_id is not None:
                jobs.append((segments[-1][0], None))
        submit(pool)
        while in_flight:
            write(*in_flight.popleft())
    report("encode", total, total, force=True)
    return counts


# --------------------------------------------------------------------------- output folder


def _out_state(out: str) -> str:
    """'new' | 'empty' | 'replace' for the output path; PrepareError if it must not be touched."""
    if os.path.islink(out):
        raise PrepareError(f"output is a symbolic link, refusing to replace it: {out}")
    if not os.path.exists(out):
        return "new"
    if not os.path.isdir(out):
        raise PrepareError(f"output exists and is a file, not a data folder: {out}")
    if layout.is_data_dir(out):
        return "replace"
    if os.listdir(out):
        raise PrepareError(f"output folder exists and is not a data folder (has no meta.json), "
                           f"refusing to overwrite it: {out}")
    return "empty"


def _install(tmp: str, out: str) -> None:
    """Move the finished temp folder onto `out`; an old data folder is swapped out, then deleted."""
    state = _out_state(out)  # again: the world may have changed during a long prepare
    if state == "empty":
        os.rmdir(out)
    if state != "replace":
        os.rename(tmp, out)
        return
    old = f"{out}.old-{os.getpid()}"
    os.rename(out, old)
    try:
        os.rename(tmp, out)
    except BaseException:
        os.rename(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _check_args(inputs: list[str], kind: str, vocab_size: int | None, val_fraction: float,
                max_bytes: int | None) -> None:
    """Reject bad arguments before anything is read or written."""
    if isinstance(inputs, str) or not inputs:
        raise PrepareError(f"inputs must be a non-empty list of paths or @corpora, got {inputs!r}")
    if kind not in KINDS:
        raise PrepareError(f"unknown tokenizer {kind!r} (choose from {', '.join(KINDS)})")
    if vocab_size is not None:
        low = {"bpe": 257, "byte": 256, "char": 2}[kind]
        why = {"bpe": "256 bytes + <|endoftext|>", "byte": "one id per byte value", "char": "1 char + <unk>"}
        if not isinstance(vocab_size, int) or isinstance(vocab_size, bool):
            raise PrepareError(f"vocab_size must be an integer, got {vocab_size!r}")
        if vocab_size < low:
            raise PrepareError(f"vocab_size {vocab_size} is too small for {kind}: needs at least {low} "
                               f"({why[kind]})")
        if vocab_size > MAX_VOCAB:
            raise PrepareError(f"vocab_size {vocab_size} is too large (at most {MAX_VOCAB})")
    if not (isinstance(val_fraction, (int, float)) and 0 < val_fraction <= 0.5):
        raise PrepareError(f"val_fraction {val_fraction!r} must be in (0, 0.5]")
    if max_bytes is not None and (not isinstance(max_bytes, int) or max_bytes <= 0):
        raise PrepareError(f"max_bytes {max_bytes!r} must be a positive integer")


def _write_splits(folder: str, encode: Callable[[list[str]], list[np.ndarray]], docs: list[Document],
                  plan: list[list[tuple]], dtype: type, eot_id: int | None, report: _Reporter) -> dict:
    """train.bin and val.bin in `folder`, synced to disk; the token count of each split."""
    files = {s: open(os.path.join(folder, f"{s}.bin"), "ab") for s in layout.SPLITS}
    try:
        counts = _encode(encode, docs, plan, files, dtype, eot_id, report)
        for f in files.values():
            f.flush()
            os.fsync(f.fileno())  # data on disk before the rename makes it visible
    finally:
        for f in files.values():
            f.close()
    return counts


def _missing_parents(out: str) -> list[str]:
    """The folders above `out` that do not exist yet, deepest first."""
    created, parent = [], os.path.dirname(out)
    while not os.path.exists(parent):
        created.append(parent)
        parent = os.path.dirname(parent)
    return created


def _remove_empty(folders: list[str]) -> None:
    """Remove folders we created, deepest first; stops at the first one someone else has put files into."""
    for d in folders:
        try:
            os.rmdir(d)
        except OSError:
            break


def _base_tokenizer(checkpoint: str) -> tuple[Tokenizer, str, int | None]:
    """(tokenizer, kind, end-of-text id) of a base checkpoint (--tokenizer-from): continued pre-training on
    one's own text with the base model's vocabulary; an imported one names its own eos id."""
    from core.sft import base_meta

    meta = base_meta(checkpoint)
    wrapper = load_tokenizer(checkpoint)
    eot = meta.get("eos_token_id", wrapper.eot_id if wrapper.kind == "bpe" else None)
    return wrapper.tokenizer, wrapper.kind, eot


def _made_from(inputs: list[str], tokenizer_from: str | None, val_fraction: float, seed: int,
               globs: list[str] | None, max_bytes: int | None) -> str | None:
    """core.recipe's digest of a preparation with a base's tokenizer from whole files; else None."""
    if not tokenizer_from or globs or max_bytes is not None:
        return None
    return recipe(inputs, "text", tokenizer_from, None, val_fraction, seed)


def prepare(inputs: list[str], out: str, tokenizer: str = "bpe", vocab_size: int | None = None,
            val_fraction: float = 0.1, seed: int = 1337, globs: list[str] | None = None,
            progress: Callable[[dict], None] | None = None, *, max_bytes: int | None = None,
            tokenizer_from: str | None = None) -> dict:
    """Build DATA_DIR `out` from `inputs` (files, folders, '@stdlib[:SIZE]', '@synthetic[:SIZE]').

    tokenizer: 'bpe' (vocab_size default 4096, min 257), 'char' (vocab_size ignored unless too small),
    'byte' (always 256). globs replace the default extensions for folders, e.g. ['**/*.txt'].
    max_bytes stops gathering once that many corpus bytes are taken (whole files, in input order).
    progress gets {'stage': 'scan'|'tokenizer'|'encode'|'write', 'done': bytes, 'total': bytes}.
    Returns the meta dict also written to meta.json: format, tokenizer, vocab_size, dtype,
    train_tokens, val_tokens, eot_id/eot_token (bpe, else None), unk_id (char), sources (per input:
    kind, files, bytes, skipped), n_files, n_bytes, skipped_files, skipped_examples, bytes_per_token,
    split {method 'documents'|'tail', val_fraction, seed, val_files}, tokenizer_sample_bytes, globs,
    max_bytes, seed, created (UTC ISO), seconds, versions, recipe (_made_from).
    Raises PrepareError naming the bad path or value; then nothing is written, an existing `out` untouched.
    """
    tokenizer = base[1] if (base := _base_tokenizer(tokenizer_from) if tokenizer_from else None) else tokenizer
    _check_args(inputs, tokenizer, vocab_size, val_fraction, max_bytes)
    inputs = [os.fspath(spec) for spec in inputs]
    out = os.path.abspath(out)
    _out_state(out)
    report = _Reporter(progress)
    t0 = time.monotonic()
    made_from = _made_from(inputs, tokenizer_from, val_fraction, seed, globs, max_bytes)  # before reading them
    docs, sources, skipped = gather(inputs, globs, seed, max_bytes, report)
    split_method, plan = plan_split(docs, val_fraction, seed)

    created = _missing_parents(out)  # parents we create are removed again on failure
    os.makedirs(os.path.dirname(out), exist_ok=True)
    tmp = f"{out}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)  # a leftover of a killed run that had our pid
    os.mkdir(tmp)
    try:
        tok, sample_bytes = (base[0], 0) if base else _build_tokenizer(tokenizer, docs, vocab_size, report)
        tok.save(os.path.join(tmp, layout.TOKENIZER))
        n_vocab = tok.get_vocab_size()
        dtype = np.uint16 if n_vocab <= 1 << 16 else np.uint32
        eot_id = base[2] if base else (tok.token_to_id(EOT) if tokenizer == "bpe" else None)
        counts = _write_splits(tmp, _batch_encoder(tok, tokenizer, dtype), docs, plan, dtype, eot_id, report)
        if counts["train"] == 0 or counts["val"] == 0:
            raise PrepareError(f"corpus too small to split: {counts['train']} train and {counts['val']} "
                               f"val tokens from {sum(d.size for d in docs)} bytes in {', '.join(inputs)}")
        n_bytes = sum(d.size for d in docs)
        meta = {
            "format": FORMAT,
            "tokenizer": tokenizer,
            "vocab_size": n_vocab,
            "dtype": np.dtype(dtype).name,
            "train_tokens": counts["train"],
            "val_tokens": counts["val"],
            "eot_id": eot_id,
            "eot_token": EOT if eot_id is not None else None,
            "unk_id": tok.token_to_id(UNK) if tokenizer == "char" else None,
            "sources": sources,
            "n_files": len(docs),
            "n_bytes": n_bytes,
            "skipped_files": len(skipped),
            "skipped_examples": skipped[:20],
            "bytes_per_token": round(n_bytes / (counts["train"] + counts["val"]), 4),
            "split": {"method": split_method, "val_fraction": val_fraction, "seed": seed,
                      "val_files": sum(1 for segs in plan if segs[0][0] == "val")},
            "tokenizer_sample_bytes": sample_bytes,
            "globs": globs,
            "max_bytes": max_bytes,
            "seed": seed,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "seconds": round(time.monotonic() - t0, 2),
            "versions": {"tokenizers": tokenizers.__version__, "numpy": np.__version__},
            "recipe": made_from,
        }
        layout.atomic_write_json(os.path.join(tmp, layout.DATA_META), meta, indent=1, fsync=True)
        report("write", 0, n_bytes, force=True)
        _install(tmp, out)
        report("write", n_bytes, n_bytes, force=True)
        return meta
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        _remove_empty(created)
        raise


# --------------------------------------------------------------------------- readers


def read_meta(data_dir: str) -> dict:
    """meta.json of a data folder, validated; PrepareError naming the folder if it is not one."""
    path = os.path.join(data_dir, layout.DATA_META)
    if not os.path.exists(path):
        raise PrepareError(f"not a data folder (no meta.json; run `llm-train prepare`): {data_dir}")
    try:
        meta = layout.load_json(path, "data meta.json")
    except ValueError as exc:
        raise PrepareError(str(exc)) from None
    if any(k not in meta for k in _REQUIRED_META):
        missing = [k for k in _REQUIRED_META if k not in meta]
        raise PrepareError(f"meta.json lacks {', '.join(missing)}: {path}")
    if meta["format"] != FORMAT:
        raise PrepareError(f"meta.json format {meta['format']!r} is not supported (expected {FORMAT}): {path}")
    if meta["dtype"] not in ("uint16", "uint32") or meta["tokenizer"] not in KINDS:
        raise PrepareError(f"meta.json has bad dtype {quote(meta['dtype'])} or tokenizer "
                           f"{quote(meta['tokenizer'])}: {path}")
    for key in ("vocab_size", "train_tokens", "val_tokens"):
        value, low = meta[key], 1 if key == "vocab_size" else 0
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value < 2**40:
            raise PrepareError(f"meta.json: {key} must be an integer >= {low}, got {quote(value)}: {path}")
    return meta


CHECKED = ".checked.json"  # per split: the file's (size, mtime_ns) when its largest token id was found


def check_folder(data_dir: str, meta: dict) -> None:
    """What training needs beyond meta.json, checked before the first step (issue 14 item 10): the
    tokenizer loads and has meta's vocab_size, and every token id is below it. The largest id of a split
    is a streaming max, chunk by chunk (a large file is never read into memory at once), remembered in
    DATA_DIR/.checked.json with the file's size and modification time: a start or resume of a run on an
    unchanged 10B-token folder reads a few bytes instead of 20 GB per process (review finding 17); a
    rewritten split is scanned again. A folder that cannot be written is scanned every time."""
    tok_path = os.path.join(data_dir, "tokenizer.json")
    tok = load_tokenizer(data_dir)  # PrepareError naming the file when missing or unreadable
    if tok.vocab_size != meta["vocab_size"]:
        raise PrepareError(f"{tok_path} has {tok.vocab_size} tokens but meta.json says vocab_size "
                           f"{meta['vocab_size']}: the folder is mixed up; prepare it again")
    checked = layout.read_json(os.path.join(data_dir, CHECKED))  # {} when missing or damaged: scan again
    changed = False
    for split in layout.SPLITS:
        ids = open_split(data_dir, split)  # sizes checked against meta.json
        st = os.stat(os.path.join(data_dir, split + ".bin"))
        key = [st.st_size, st.st_mtime_ns]
        seen = checked.get(split)
        if isinstance(seen, dict) and seen.get("key") == key and type(seen.get("max_id")) is int:
            top = seen["max_id"]
        else:
            top = scan_max_id(ids)
            checked[split], changed = {"key": key, "max_id": top}, True
        if top >= meta["vocab_size"]:
            raise PrepareError(f"{os.path.join(data_dir, split + '.bin')}: token id {top} is not below "
                               f"vocab_size {meta['vocab_size']} (damaged, or from another tokenizer)")
    if changed:
        try:
            layout.atomic_write_json(os.path.join(data_dir, CHECKED), checked)
        except OSError:  # a read-only data folder (shared, or on a mounted image): scan again next time
            pass


def scan_max_id(ids: np.ndarray, chunk: int = 1 << 24) -> int:
    """The largest token id of a split, chunk by chunk."""
    return max(int(ids[i:i + chunk].max()) for i in range(0, len(ids), chunk))


def open_split(data_dir: str, split: str) -> np.memmap:
    """train.bin or val.bin as a read-only flat memmap of token ids (dtype from meta.json)."""
    if split not in layout.SPLITS:
        raise PrepareError(f"split must be 'train' or 'val', got {split!r}")
    meta = read_meta(data_dir)
    path = os.path.join(data_dir, f"{split}.bin")
    dtype = np.dtype(meta["dtype"])
    n = meta[f"{split}_tokens"]
    size = os.path.getsize(path) if os.path.isfile(path) else -1
    if size != n * dtype.itemsize or n == 0:
        raise PrepareError(f"{path}: expected {n} tokens ({n * dtype.itemsize} bytes), found {size} bytes")
    return np.memmap(path, dtype=dtype, mode="r", shape=(n,))
