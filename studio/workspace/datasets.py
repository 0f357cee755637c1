"""Prepared data sets as the Data tab shows them: DATA_DIR/meta.json and preview.json read and put into
words. Pure Python (no Qt); which folders count as data sets is core.layout's rule (list_data_dirs).
"""

from __future__ import annotations

import os
from datetime import datetime

from core import layout
from core.config import human_bytes

DETAIL_KEYS = ("folder", "tokenizer", "vocab", "train", "val", "bpt", "files", "sources", "created")
NO_PREVIEW = "No preview: this data folder has no preview.json (prepared by an older engine?)."


def data_sets(data_root: str) -> list[str]:
    """Names of the prepared data folders under `data_root` (a workspace's data/), sorted."""
    return [os.path.basename(path) for path in layout.list_data_dirs(data_root)]


def read_meta(data_dir: str) -> dict:
    """DATA_DIR/meta.json, or {} when it is missing or unreadable."""
    return layout.read_json(os.path.join(data_dir, layout.DATA_META))


def read_preview(data_dir: str) -> tuple[list[int], list[str], list[int] | None] | None:
    """(token ids, display pieces, trained marks or None) from DATA_DIR/preview.json; None when there is no
    usable preview. SFT data sets mark each token 1 (trained) or 0 (masked prompt)."""
    preview = layout.read_json(os.path.join(data_dir, layout.PREVIEW))
    ids, pieces, trained = preview.get("ids"), preview.get("pieces"), preview.get("trained")
    if not isinstance(ids, list) or not isinstance(pieces, list):
        return None
    if not (isinstance(trained, list) and len(trained) == len(ids) and all(t in (0, 1) for t in trained)):
        trained = None
    return ids, pieces, trained


def sft_sample_prompt(data_dir: str) -> str:
    """The prompt of an instruction data set's first validation example, as its template renders it (the
    masked tokens before its first trained one, from preview.json): what a fine-tune answers in its samples
    at each evaluation, so the Samples tab shows the answer forming. '' when there is none."""
    preview = read_preview(data_dir)
    if preview is None or preview[2] is None or 1 not in preview[2]:
        return ""
    _ids, pieces, trained = preview
    return "".join(pieces[:trained.index(1)])


def describe_source(source) -> str:
    """One line per meta["sources"] entry ({input, kind, files, bytes, skipped} or a plain string)."""
    if not isinstance(source, dict):
        return str(source)
    parts = [str(source.get("kind", ""))] if source.get("kind") else []
    files, size = source.get("files"), source.get("bytes")  # numbers only: meta.json may be damaged
    if isinstance(files, int):
        parts.append(f"{files:,} file{'s' if files != 1 else ''}")
    if isinstance(size, int):
        parts.append(human_bytes(size))
    if source.get("skipped"):
        parts.append(f"{source['skipped']} skipped")
    name = source.get("input") or source.get("path") or "?"
    return f"{name}  ({', '.join(parts)})" if parts else str(name)


def detail_rows(data_dir: str | None, meta: dict | None = None) -> dict[str, str]:
    """The Data tab's detail rows (DETAIL_KEYS) for a data folder, "—" where meta.json says nothing."""
    rows = dict.fromkeys(DETAIL_KEYS, "—")
    if data_dir is None:
        return rows
    meta = read_meta(data_dir) if meta is None else meta

    def count(key: str) -> str:
        value = meta.get(key)
        return f"{value:,}" if isinstance(value, int) else "—"

    tokenizer = meta.get("tokenizer")
    tokenizer = tokenizer.get("kind", "?") if isinstance(tokenizer, dict) else tokenizer
    bpt = meta.get("bytes_per_token")
    n_bytes = meta.get("n_bytes")
    rows.update(folder=data_dir, tokenizer=str(tokenizer or "—"), vocab=count("vocab_size"),
                train=count("train_tokens"), val=count("val_tokens"),
                bpt=f"{bpt:.2f}" if isinstance(bpt, (int, float)) else "—",
                files=count("n_files") + (f"  ({human_bytes(n_bytes)})" if isinstance(n_bytes, int) else ""),
                sources="\n".join(describe_source(s) for s in _list(meta.get("sources"))) or "—",
                created=human_date(meta.get("created")))
    if meta.get("kind") == "sft":  # instruction data: examples and trained tokens instead of files
        tr, va = meta.get("train_examples"), meta.get("val_examples")
        parts = [f"{tr + va:,} examples ({tr:,} train + {va:,} val)"] if isinstance(tr, int) and isinstance(va, int) \
            else []
        parts += [f"{meta[k]:,} {label}" for k, label in (("trained_tokens", "trained tokens"),
                                                          ("truncated", "truncated"), ("dropped", "dropped"))
                  if isinstance(meta.get(k), int)]
        rows["files"] = " · ".join(parts) or "—"
    return rows


def human_date(value) -> str:
    """'23 Nov 2026, 20:36' (local time) for an ISO timestamp; anything else as it is, or '—'."""
    if not value:
        return "—"
    try:
        when = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    when = when.astimezone() if when.tzinfo is not None else when
    return f"{when.day} {when:%b %Y, %H:%M}"


def token_total(meta: dict) -> int:
    """Train plus validation tokens of a data set's meta.json."""
    return sum(v for v in (meta.get("train_tokens"), meta.get("val_tokens")) if isinstance(v, int))


def _list(value) -> list:
    return value if isinstance(value, list) else []
