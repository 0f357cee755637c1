"""Instruction (SFT) data: `llm-train prepare --format sft`, and the padded batches training draws from it.

Input: JSON Lines, one example per line, either {"prompt": str, "completion": str} or
{"messages": [{"role": "system"|"user"|"assistant", "content": str}, ...]}. The base checkpoint's
tokenizer is used (copied into the data folder) and its chat template when it has one (rendered with
jinja2, like transformers' apply_chat_template); otherwise the built-in template

    <|system|>\\n{content}\\n   <|user|>\\n{content}\\n   <|assistant|>\\n{content}\\n   (+ eos when known)

or, for a base whose vocabulary cannot spell its markers (a character model of a corpus without '<', '|'
or '>': they would all be <unk>), the same template with plain markers: ``user:\\n{content}\\n``.

Only assistant / completion tokens are trained: every token carries a mask byte (1 = a trained target).
A data folder of kind "sft" holds, per split, ``S.bin`` (token ids, as a plain data folder),
``S.mask.bin`` (uint8, one per token) and ``S.idx.npy`` (int64 example start offsets, n + 1 of them);
meta.json adds kind, examples, truncated, dropped, block_size, the template and the eos id.
Examples longer than block_size + 1 tokens are truncated (counted); those left with no trained token are
dropped (counted). Everything is written into a temp folder and renamed into place.

Batches put one example per row, padded (targets -1 = ignored), so no example attends to another and the
loss (cross-entropy with ignore_index=-1) is the mean over trained tokens only.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import time
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from core import layout
from core.errors import DataError, UsageError
from core.recipe import recipe

ROLES = ("system", "user", "assistant")
BUILTIN_END = "\n"  # the built-in template closes every turn with a newline; eval stops at it


MARKERS = ("<|", "|>")   # around the role name: <|user|>
PLAIN_MARKERS = ("", ":")  # user: (for a vocabulary without the characters of MARKERS)


def builtin_template(markers: tuple[str, str] = MARKERS) -> str:
    """The built-in template as jinja, recorded in a model fine-tuned on it so that chat (generate --chat,
    the studio's chat mode, eval) renders conversations exactly as it was trained (a test checks they agree)."""
    a, b = markers
    return (f"{{% for m in messages %}}{a}{{{{ m.role }}}}{b}\n{{{{ m.content }}}}\n{{% endfor %}}"
            "{% if messages and messages[-1].role == 'assistant' %}{{ eos_token }}{% endif %}"
            f"{{% if add_generation_prompt %}}{a}assistant{b}\n{{% endif %}}")


BUILTIN_TEMPLATE = builtin_template()


def _builtin(messages: list[dict], add_generation_prompt: bool, eos: str, markers: tuple[str, str] = MARKERS) -> str:
    a, b = markers
    out = "".join(f"{a}{m['role']}{b}\n{m['content']}\n" for m in messages)
    if messages and messages[-1]["role"] == "assistant":
        out += eos
    return out + (f"{a}assistant{b}\n" if add_generation_prompt else "")


def builtin_markers(tok) -> tuple[str, str]:
    """MARKERS, or PLAIN_MARKERS where `tok` makes fewer <unk> of the three roles' markers with them."""
    unk = getattr(tok, "unk_id", None)
    if unk is None:
        return MARKERS

    def unknown(markers: tuple[str, str]) -> int:
        return tok.encode("\n".join(f"{markers[0]}{role}{markers[1]}" for role in ROLES)).count(unk)

    return PLAIN_MARKERS if unknown(PLAIN_MARKERS) < unknown(MARKERS) else MARKERS


class ChatFormat:
    """Renders messages with the checkpoint's chat template (jinja2) or the built-in one (its markers
    spelled in `tok`'s vocabulary, see builtin_markers)."""

    def __init__(self, meta: dict, tok=None):
        from core.chat import stop_ids, turn_end_id

        self.meta = meta
        self.template = meta.get("chat_template")
        self.markers = builtin_markers(tok) if not self.template else MARKERS
        self.eos_text = meta.get("eos_token") or ""
        self.bos_text = meta.get("bos_token") or ""
        self.eos_id = meta.get("eos_token_id", meta.get("eos_id"))  # as recorded (an int, or a list)
        self.stop_ids = stop_ids({"eos_token_id": self.eos_id})     # the ids that end an answer
        self.kind = "jinja" if self.template else "builtin"
        end = turn_end_id(meta, tok) if self.template and tok is not None else None
        if end is not None and end not in self.stop_ids:  # answers end there: recorded as an EOS too
            first = self.eos_id if isinstance(self.eos_id, list) else [self.eos_id]
            self.eos_id = [*(i for i in first if i is not None), end]
            self.stop_ids.add(end)

    def render(self, messages: list[dict], add_generation_prompt: bool) -> str:
        """core.chat's rendering (sandboxed, raise_exception, compiled once); DataError when it refuses."""
        if self.kind == "builtin":
            return _builtin(messages, add_generation_prompt, self.eos_text, self.markers)
        from core.chat import render_chat

        try:
            return render_chat(self.meta, messages, add_generation_prompt)
        except DataError:
            raise
        except UsageError as exc:
            raise DataError(str(exc)) from None

    def segments(self, messages: list[dict]) -> list[tuple[str, bool]]:
        """(text, trained) pieces whose concatenation is the rendered conversation."""
        out, done = [], 0
        for i, m in enumerate(messages):
            if m["role"] != "assistant":
                continue
            prefix = self.render(messages[:i], True)
            full = self.render(messages[:i + 1], False)
            if not (full.startswith(prefix) and len(prefix) >= done):
                raise DataError("the chat template does not render conversations incrementally; "
                                "cannot tell which tokens are the assistant's")
            out += [(prefix[done:], False), (full[len(prefix):], True)]
            done = len(full)
        return [(t, trained) for t, trained in out if t]

    def prompt(self, text: str) -> str:
        """A user prompt ready for generation (the pairs evaluation)."""
        return self.render([{"role": "user", "content": text}], True)


def parse_line(line: str, where: str) -> list[dict]:
    """One JSONL line -> messages; DataError naming file:line for anything malformed."""
    try:
        obj = json.loads(line)
    except ValueError as exc:
        raise DataError(f"{where}: not JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise DataError(f"{where}: expected a JSON object")
    if "messages" in obj:
        msgs = obj["messages"]
        if not isinstance(msgs, list) or not msgs:
            raise DataError(f"{where}: 'messages' must be a non-empty list")
        for m in msgs:
            if not isinstance(m, dict) or not isinstance(m.get("content"), str):
                raise DataError(f"{where}: every message needs a string 'content'")
            if m.get("role") not in ROLES:
                raise DataError(f"{where}: unknown role {m.get('role')!r} (use {', '.join(ROLES)})")
        if not any(m["role"] == "assistant" and m["content"] for m in msgs):
            raise DataError(f"{where}: no non-empty assistant message (nothing to train)")
        return [{"role": m["role"], "content": m["content"]} for m in msgs]
    for key in ("prompt", "completion"):
        if not isinstance(obj.get(key), str):
            raise DataError(f"{where}: missing field {key!r} (or use 'messages')")
    if not obj["completion"]:
        raise DataError(f"{where}: empty completion")
    return [{"role": "user", "content": obj["prompt"]}, {"role": "assistant", "content": obj["completion"]}]


def encode_example(tok, fmt: ChatFormat, messages: list[dict]) -> tuple[list[int], list[int]]:
    """(ids, mask) of one conversation; mask 1 marks trained tokens (eos included when known)."""
    ids: list[int] = []
    mask: list[int] = []
    for text, trained in fmt.segments(messages):
        piece = tok.encode(text)
        ids += piece
        mask += [int(trained)] * len(piece)
    if fmt.kind == "builtin" and fmt.stop_ids and not fmt.eos_text:
        ids.append(min(fmt.stop_ids))
        mask.append(1)
    return ids, mask


def base_meta(checkpoint: str) -> dict:
    """The base checkpoint's meta.json (with a tokenizer.json beside it); DataError if unusable."""
    problem = layout.checkpoint_problem(checkpoint)
    if problem:
        raise DataError(f"--tokenizer-from: {problem}")
    if not os.path.isfile(os.path.join(checkpoint, layout.TOKENIZER)):
        raise DataError(f"--tokenizer-from: the checkpoint has no {layout.TOKENIZER}: {checkpoint}")
    return layout.read_checkpoint_meta(checkpoint)


def _base(option: str, tokenizer_from: str | None, block_size: int | None):
    """(tokenizer, chat format, block size) of the base checkpoint; DataError naming `option` without one."""
    from core.tokenizer import load_tokenizer

    if not tokenizer_from:
        raise DataError(f"{option} needs --tokenizer-from CHECKPOINT (the base model)")
    meta_in = base_meta(tokenizer_from)
    block = block_size or int(meta_in["config"]["model"]["block_size"])
    tok = load_tokenizer(tokenizer_from)
    return tok, ChatFormat(meta_in, tok), block


def _write_split(folder: str, split: str, rows: list[tuple[list[int], list[int]]], dtype) -> int:
    ids = np.concatenate([np.asarray(r[0], dtype) for r in rows])
    mask = np.concatenate([np.asarray(r[1], np.uint8) for r in rows])
    offsets = np.cumsum([0] + [len(r[0]) for r in rows]).astype(np.int64)
    ids.tofile(os.path.join(folder, f"{split}.bin"))
    mask.tofile(os.path.join(folder, f"{split}.mask.bin"))
    np.save(os.path.join(folder, f"{split}.idx.npy"), offsets)
    return int(ids.size)


def iter_examples(inputs: list[str], tok, fmt: ChatFormat, max_len: int):
    """(where, ids, mask, truncated) of every example of every input file, encoded and cut to max_len."""
    for path in inputs:
        for where, line in layout.jsonl_lines(path):
            ids, mask = encode_example(tok, fmt, parse_line(line, where))
            yield where, ids[:max_len], mask[:max_len], len(ids) > max_len


def read_examples(inputs: list[str], tok, fmt: ChatFormat, max_len: int) -> tuple[list, int, int]:
    """Every example of every input file, encoded; (rows, truncated, dropped)."""
    rows, truncated, dropped = [], 0, 0
    for _where, ids, mask, cut in iter_examples(inputs, tok, fmt, max_len):
        truncated += cut
        if not any(mask[1:]):  # nothing left to predict
            dropped += 1
            continue
        rows.append((ids, mask))
    return rows, truncated, dropped


def prepare_sft(inputs: list[str], out: str, tokenizer_from: str, block_size: int | None = None,
                val_fraction: float = 0.1, seed: int = 1337) -> dict:
    """Build an SFT data folder `out`; returns its meta (also meta.json). DataError on bad input."""
    from core.data import FORMAT, _install, _out_state

    tok, fmt, block = _base("--format sft", tokenizer_from, block_size)
    out = os.path.abspath(out)
    _out_state(out)
    t0 = time.monotonic()
    made_from = recipe(list(inputs), "sft", tokenizer_from, block, val_fraction, seed)  # before reading them
    rows, truncated, dropped = read_examples(list(inputs), tok, fmt, block + 1)
    if len(rows) < 2:
        raise DataError(f"need at least 2 usable examples (found {len(rows)}) in {', '.join(inputs)}")
    order = np.random.default_rng(seed).permutation(len(rows))
    n_val = max(1, int(round(len(rows) * val_fraction)))
    split_rows = {"val": [rows[i] for i in sorted(order[:n_val])],
                  "train": [rows[i] for i in sorted(order[n_val:])]}
    dtype = np.uint16 if tok.vocab_size <= 1 << 16 else np.uint32
    os.makedirs(os.path.dirname(out), exist_ok=True)
    tmp = f"{out}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    os.mkdir(tmp)
    try:
        shutil.copyfile(os.path.join(tokenizer_from, layout.TOKENIZER), os.path.join(tmp, layout.TOKENIZER))
        counts = {s: _write_split(tmp, s, r, dtype) for s, r in split_rows.items()}
        meta = {"format": FORMAT, "kind": "sft", "tokenizer": tok.kind, "vocab_size": tok.vocab_size,
                "dtype": np.dtype(dtype).name, "train_tokens": counts["train"], "val_tokens": counts["val"],
                "train_examples": len(split_rows["train"]), "val_examples": len(split_rows["val"]),
                "trained_tokens": int(sum(sum(m[1:]) for _, m in rows)), "truncated": truncated,
                "dropped": dropped, "block_size": block, "template": fmt.kind,
                "builtin_template": builtin_template(fmt.markers) if fmt.kind == "builtin" else None,
                "chat_template": fmt.template, "eos_token": fmt.eos_text or None, "eos_id": fmt.eos_id,
                "bos_token": fmt.bos_text or None, "eot_id": fmt.eos_id, "base": os.path.abspath(tokenizer_from),
                "sources": [os.path.abspath(p) for p in inputs], "seed": seed, "val_fraction": val_fraction,
                "recipe": made_from,
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "seconds": round(time.monotonic() - t0, 2)}
        layout.atomic_write_json(os.path.join(tmp, layout.DATA_META), meta, indent=1, fsync=True)
        layout.atomic_write_json(os.path.join(tmp, layout.PREVIEW), _preview_rows(split_rows["val"], tok))
        _install(tmp, out)
        return meta
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


PREVIEW_TOKENS = 400  # tokens of the validation split kept in DATA_DIR/preview.json


def _preview_rows(rows: list[tuple[list[int], list[int]]], tok, n_tokens: int = PREVIEW_TOKENS) -> dict:
    """preview.json of an SFT folder: the first examples' tokens as display pieces plus `trained` (1 for a
    trained target), so the studio can colour trained and masked tokens without a tokenizer."""
    ids: list[int] = []
    trained: list[int] = []
    for row_ids, row_mask in rows:
        if ids and len(ids) + len(row_ids) > n_tokens:
            break
        ids += [int(i) for i in row_ids]
        trained += [int(m) for m in row_mask]
    ids, trained = ids[:n_tokens], trained[:n_tokens]
    return {"ids": ids, "pieces": tok.decode_pieces(ids), "trained": trained}


def preview(inputs: list[str], tokenizer_from: str, fmt: str = "sft", examples: int = 6,
            block_size: int | None = None, text_bytes: int = 4096) -> dict:
    """What `prepare --format FMT --tokenizer-from C` would make of the first examples, written nowhere:
    {"format", "template", "examples": [{"where", "ids", "pieces", "trained", "truncated"}], "block_size",
    "unknown" (tokens that are the vocabulary's <unk>: characters a char-level base cannot represent)}.
    sft: the first `examples` lines (a bad one raises DataError naming file:line, as prepare would);
    text: the first `text_bytes` of the first file, every token trained."""
    tok, chat, block = _base("--preview", tokenizer_from, block_size)
    out: list[dict] = []
    if fmt == "text":
        path = inputs[0]
        try:
            with open(path, "rb") as fh:
                text = fh.read(text_bytes).decode("utf-8", errors="ignore")
        except OSError as exc:
            raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
        ids = tok.encode(text)
        out.append({"where": f"{path}:1", "ids": ids, "pieces": tok.decode_pieces(ids), "trained": [1] * len(ids),
                    "truncated": False})
    else:
        for where, ids, mask, cut in itertools.islice(iter_examples(inputs, tok, chat, block + 1), examples):
            out.append({"where": where, "ids": ids, "pieces": tok.decode_pieces(ids), "trained": mask,
                        "truncated": cut})
        if not out:
            raise DataError(f"no examples in {', '.join(inputs)}")
    from core.tokenizer import UNK

    unk = tok.tokenizer.token_to_id(UNK)
    unknown = sum(ex["ids"].count(unk) for ex in out) if unk is not None else 0
    return {"format": fmt, "template": chat.kind if fmt == "sft" else None, "block_size": block,
            "vocab_size": tok.vocab_size, "examples": out, "unknown": unknown}


# ------------------------------------------------------------------------------------ training side
@dataclass
class SftSplit:
    """One split of an SFT data folder: flat ids and mask, example offsets."""

    ids: np.ndarray
    mask: np.ndarray
    offsets: np.ndarray

    def __len__(self) -> int:  # examples, not tokens
        return len(self.offsets) - 1

    def example(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        return self.ids[a:b], self.mask[a:b]


def open_sft_split(data_dir: str, split: str) -> SftSplit:
    from core.data import open_split

    ids = open_split(data_dir, split)
    try:
        mask = np.memmap(os.path.join(data_dir, f"{split}.mask.bin"), dtype=np.uint8, mode="r")
        offsets = np.load(os.path.join(data_dir, f"{split}.idx.npy"), allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"damaged SFT data folder ({exc}): {data_dir}") from None
    if len(mask) != len(ids) or offsets[-1] != len(ids):
        raise DataError(f"damaged SFT data folder (ids, mask and offsets disagree): {data_dir}")
    return SftSplit(ids, mask, offsets)


def targets(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Next-token targets of one example: ids[1:] where trained, -1 (ignored) elsewhere."""
    return np.where(np.asarray(mask[1:]) > 0, np.asarray(ids[1:], np.int64), -1)


class SftBatches:
    """Random examples, one per row, right-padded to the longest in the batch (the same interface as
    core.trainer_setup.Batches: draw -> indices, fetch -> (x, y); the state is `gen`)."""

    def __init__(self, data: SftSplit, block_size: int, batch_size: int, seed: int, device: str):
        import torch

        if len(data) < 1:
            raise DataError("data.dir: the SFT split has no examples")
        self.data, self.T, self.B, self.device = data, block_size, batch_size, device
        self.gen = torch.Generator().manual_seed(seed)

    def draw(self, n_micro: int):
        import torch

        return torch.randint(len(self.data), (n_micro, self.B), generator=self.gen)

    def fetch(self, idx):
        import torch

        rows = [self.data.example(i) for i in idx.tolist()]
        T = min(self.T, max(len(ids) for ids, _ in rows) - 1)
        x = np.zeros((len(rows), T), np.int64)
        y = np.full((len(rows), T), -1, np.int64)
        for r, (ids, mask) in enumerate(rows):
            n = min(T, len(ids) - 1)
            x[r, :n] = ids[:n]
            y[r, :n] = targets(ids[:n + 1], mask[:n + 1])
        return torch.from_numpy(x).to(self.device), torch.from_numpy(y).to(self.device)
