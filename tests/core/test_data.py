"""Tests for `llm-train prepare` (core.data, core.corpora): tokenizers, shards, splits, errors, memory."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from core import corpora
from core.data import PrepareError, is_data_dir, load_tokenizer, open_split, prepare, read_meta

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
UNICODE = "héllo wörld ✓ — naïve café, 日本語テキスト, emoji 🙂\n"
TEXT = "".join(f"line {i}: the quick brown fox {i * 7} jumps. {UNICODE}" for i in range(300))


def write(path, text: str | bytes) -> str:
    path = str(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def all_ids(data_dir) -> list[int]:
    return open_split(data_dir, "train").tolist() + open_split(data_dir, "val").tolist()


def leftovers(parent) -> list[str]:
    return [n for n in os.listdir(parent) if re.search(r"\.(tmp|old)-\d+$", n)]


@pytest.fixture
def folder(tmp_path):
    """Eight small documents of growing size, with non-ASCII text."""
    root = tmp_path / "corpus"
    for i in range(8):
        write(root / f"doc{i}.txt", f"document {i}\n" + TEXT[: 500 + 400 * i])
    return str(root)


# --------------------------------------------------------------------------- tokenizers


@pytest.mark.parametrize("kind", ["bpe", "char", "byte"])
def test_round_trip_and_bins_match_tokenizer(tmp_path, kind):
    src = write(tmp_path / "one.txt", TEXT)
    out = str(tmp_path / "data")
    meta = prepare([src], out, tokenizer=kind, vocab_size=300 if kind == "bpe" else None)
    tok = load_tokenizer(out)
    assert tok.kind == kind and tok.vocab_size == meta["vocab_size"]
    for s in (UNICODE, "line 7: the quick brown fox\n\n  spaced  ", TEXT[:999]):
        ids = tok.encode(s)
        assert tok.decode(ids) == s
        assert "".join(tok.decode_pieces(ids)) == s
    # The shards hold exactly the file (single file: tail split), plus one separator for bpe.
    ids = all_ids(out)
    assert tok.decode(ids) == TEXT + ("<|endoftext|>" if kind == "bpe" else "")
    assert meta["split"]["method"] == "tail"
    if kind == "byte":
        assert ids == list(TEXT.encode("utf-8")) and meta["vocab_size"] == 256
    if kind == "char":  # the numpy fast path must give the tokenizer's own ids
        assert ids == tok.tokenizer.encode(TEXT).ids
        assert meta["vocab_size"] == len(set(TEXT)) + 1
        unk = tok.encode("Z€")  # neither character is in the corpus
        assert unk == [meta["unk_id"]] * 2 and tok.decode(unk) == "<unk><unk>"
    if kind == "bpe":
        assert ids[-1] == meta["eot_id"] == tok.eot_id
        assert len(tok.encode("the quick brown fox")) < len("the quick brown fox")  # merges learned


def test_decode_pieces_split_characters(tmp_path):
    out = str(tmp_path / "data")
    prepare([write(tmp_path / "a.txt", TEXT)], out, tokenizer="byte")
    tok = load_tokenizer(os.path.join(out, "tokenizer.json"))  # the file itself also works
    ids = tok.encode("a✓b")  # ✓ is 3 bytes, so 3 tokens
    assert tok.decode_pieces(ids) == ["a", "", "", "✓", "b"]
    assert tok.id_to_piece(ids[1]) == "\\xe2"
    assert tok.decode_pieces(ids[:2]) == ["a", "\ufffd"]  # a cut character, as decode() shows it
    assert tok.decode(ids[:2]) == "a\ufffd"
    assert tok.decode([10**6]) == "\ufffd" == tok.id_to_piece(10**6)  # padded-vocab ids


def test_bins_dtype_lengths_and_token_totals(tmp_path, folder):
    out = str(tmp_path / "data")
    meta = prepare([folder], out, tokenizer="bpe", vocab_size=300)
    tok = load_tokenizer(out)
    assert meta["dtype"] == "uint16" and meta["n_files"] == 8
    for split in ("train", "val"):
        path = os.path.join(out, f"{split}.bin")
        assert os.path.getsize(path) == 2 * meta[f"{split}_tokens"] > 0
        assert open_split(out, split).dtype == np.uint16
    # Every document is encoded once and followed by <|endoftext|>; small docs are a single piece.
    docs = sorted(os.listdir(folder))
    expected = sum(len(tok.encode(open(os.path.join(folder, d), encoding="utf-8").read())) + 1 for d in docs)
    assert meta["train_tokens"] + meta["val_tokens"] == expected
    assert meta["split"]["method"] == "documents" and meta["split"]["val_files"] >= 1
    assert all_ids(out).count(meta["eot_id"]) == 8
    assert meta["n_bytes"] == sum(os.path.getsize(os.path.join(folder, d)) for d in docs)
    assert abs(meta["bytes_per_token"] - meta["n_bytes"] / expected) < 1e-3
    assert read_meta(out) == meta and is_data_dir(out) and not is_data_dir(folder)


def test_uint32_when_vocab_exceeds_uint16(tmp_path):
    text = "".join(chr(c) for c in range(0x4E00, 0x4E00 + 70_000) if not 0xD800 <= c < 0xE000)
    out = str(tmp_path / "data")
    meta = prepare([write(tmp_path / "wide.txt", text)], out, tokenizer="char")
    assert meta["vocab_size"] > 65536 and meta["dtype"] == "uint32"
    assert open_split(out, "val").dtype == np.uint32
    assert load_tokenizer(out).decode(all_ids(out)) == text


def test_determinism_and_seed(tmp_path):
    root = tmp_path / "many"
    for i in range(20):
        write(root / f"{i:02d}.txt", f"file {i}\n" + TEXT[: 300 + 40 * i])
    outs = [str(tmp_path / n) for n in ("a", "b", "c")]
    for out, seed in zip(outs, (1, 1, 2), strict=True):
        prepare([str(root)], out, tokenizer="bpe", vocab_size=320, seed=seed)

    def read(out, name):
        with open(os.path.join(out, name), "rb") as f:
            return f.read()

    for name in ("train.bin", "val.bin", "tokenizer.json"):
        assert read(outs[0], name) == read(outs[1], name)
    assert read(outs[0], "val.bin") != read(outs[2], "val.bin")  # another seed picks other val files


def test_reader_pieces_reassemble_exactly(tmp_path, monkeypatch):
    # Tiny blocks/pieces/line limit so every boundary case of the streaming reader is hit quickly.
    monkeypatch.setattr(corpora, "BLOCK_BYTES", 64)
    monkeypatch.setattr(corpora, "MAX_LINE_BYTES", 300)
    long_line = "✓é" * 300  # 1500 bytes without a newline, multi-byte characters
    text = TEXT[:3000] + long_line + "\n\n" + UNICODE * 5 + long_line  # ends without a newline
    path = write(tmp_path / "t.txt", text)
    doc = corpora.Document(path, os.path.getsize(path), path=path)
    assert corpora.check_text_file(path) is None
    pieces = list(corpora.read_pieces(doc, piece=40))
    assert "".join(pieces) == text and len(pieces) > 50
    assert all(p.endswith("\n") for p in pieces[:10])  # cut after newlines where there are some
    for at in (1, 100, 2999, 3500, doc.size - 10, doc.size - 1):
        cut = corpora.find_cut(doc, at)
        assert 0 < cut < doc.size and cut >= at - 3
        head = "".join(corpora.read_pieces(doc, 0, cut, piece=40))
        tail = "".join(corpora.read_pieces(doc, cut, None, piece=40))
        assert head + tail == text


# --------------------------------------------------------------------------- built-in corpora


def test_synthetic_is_correct_and_deterministic(tmp_path):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    meta = prepare(["@synthetic:200K"], a, tokenizer="char", seed=7)
    prepare(["@synthetic:200K"], b, tokenizer="char", seed=7)
    assert all_ids(a) == all_ids(b)
    assert 190_000 < meta["n_bytes"] < 210_000 and meta["n_files"] == 4
    text = load_tokenizer(a).decode(all_ids(a))
    lines = text.splitlines()
    assert len(lines) > 1000
    for line in lines:
        task, _, rest = line.partition(": ")
        if task == "add":
            x, y, z = map(int, re.fullmatch(r"(\d+)\+(\d+)=(\d+)", rest).groups())
            assert x + y == z
        else:
            q, a_ = rest.split("|")
            assert a_ == {"copy": q, "reverse": q[::-1], "sort": "".join(sorted(q))}[task]
    assert corpora.synthetic_text(8, 0, 500) != corpora.synthetic_text(7, 0, 500)


def test_stdlib_limited(tmp_path):
    out = str(tmp_path / "data")
    meta = prepare(["@stdlib:200K"], out, tokenizer="byte")
    assert 200_000 <= meta["n_bytes"] < 2_000_000 and meta["n_files"] >= 2
    files = list(corpora.stdlib_files(200_000))
    assert all(f.endswith(".py") and f.startswith(corpora.stdlib_root()) for f in files)
    assert not any(part in ("site-packages", "test", "tests") for f in files for part in f.split(os.sep))
    assert meta["sources"][0]["files"] == len(files)


def test_folder_walk_and_globs(tmp_path):
    root = tmp_path / "c"
    for rel in ("a.txt", "b.md", "sub/c.txt", ".hidden/d.txt", "e.bin", "sub/deep/f.TXT"):
        write(root / rel, f"text of {rel}\n")
    write(root / "old_data/meta.json", '{"format": 1}')
    write(root / "old_data/train.bin", b"\x00\x01")
    found = lambda globs: sorted(os.path.relpath(p, root) for p in corpora.walk_folder(str(root), globs))  # noqa: E731
    assert found(None) == ["a.txt", "b.md", "sub/c.txt", "sub/deep/f.TXT"]
    assert found(["**/*.txt"]) == ["a.txt", "sub/c.txt"]
    assert found(["sub/*.txt", "*.md"]) == ["b.md", "sub/c.txt"]
    assert found(["*.bin"]) == ["e.bin"]
    meta = prepare([str(root)], str(tmp_path / "data"), tokenizer="byte", globs=["**/*.txt"])
    assert meta["n_files"] == 2 and meta["globs"] == ["**/*.txt"]


def test_progress_events(tmp_path, folder):
    events = []
    prepare([folder], str(tmp_path / "data"), tokenizer="char", progress=events.append)
    stages = [e["stage"] for e in events]
    assert stages[0] == "scan" and stages[-1] == "write"
    assert [s for i, s in enumerate(stages) if i == 0 or stages[i - 1] != s] == ["scan", "tokenizer", "encode", "write"]
    assert all(0 <= e["done"] <= e["total"] for e in events)
    assert any(e["stage"] == "encode" and e["done"] == e["total"] > 0 for e in events)


# --------------------------------------------------------------------------- bad input


def _bad_cases(tmp_path):
    good = write(tmp_path / "good.txt", TEXT)
    empty_dir = tmp_path / "empty_dir"
    write(empty_dir / "blank.txt", "")
    bin_dir = tmp_path / "bin_dir"
    write(bin_dir / "x.txt", b"abc\x00\x01\x02")
    write(bin_dir / "y.txt", b"\xff\xfe bad")
    binary = write(tmp_path / "blob.txt", b"hello\x00world")
    latin1 = write(tmp_path / "latin1.txt", "ok line\ncaf\xe9\n".encode("latin-1"))
    tiny = write(tmp_path / "tiny.txt", "a")
    return [
        ([str(tmp_path / "nope.txt")], {}, r"input not found: .*nope\.txt"),
        ([str(empty_dir)], {}, r"empty corpus.*empty_dir"),
        ([str(bin_dir)], {}, r"empty corpus.*bin_dir.*2 files skipped"),
        ([binary], {}, r"binary file \(NUL byte at offset 5\): .*blob\.txt"),
        ([latin1], {}, r"not UTF-8 text \(byte 0xe9 at offset 11\): .*latin1\.txt"),
        ([good], {"vocab_size": 100}, r"vocab_size 100 is too small for bpe"),
        ([good], {"vocab_size": 5, "tokenizer": "char"}, r"vocab_size 5 is too small for char.*distinct"),
        ([good], {"vocab_size": 2**21}, r"vocab_size 2097152 is too large"),
        ([good], {"val_fraction": 0.0}, r"val_fraction 0.0 must be in \(0, 0.5\]"),
        ([good], {"val_fraction": 0.7}, r"val_fraction 0.7"),
        ([good], {"val_fraction": float("nan")}, r"val_fraction nan"),
        ([good], {"tokenizer": "wordpiece"}, r"unknown tokenizer 'wordpiece'"),
        (["@wikipedia"], {}, r"unknown built-in corpus '@wikipedia'"),
        (["@synthetic:lots"], {}, r"bad size 'lots'"),
        ([tiny], {"tokenizer": "byte"}, r"corpus too small to split.*tiny\.txt"),
        ([], {}, r"non-empty list"),
    ]


def test_bad_inputs_name_the_problem_and_write_nothing(tmp_path):
    for i, (inputs, kwargs, pattern) in enumerate(_bad_cases(tmp_path)):
        out = tmp_path / "outs" / f"out{i}"
        with pytest.raises(PrepareError, match=pattern):
            prepare(inputs, str(out), **kwargs)
        assert not out.exists(), pattern
        assert not (tmp_path / "outs").exists(), pattern  # even the parent we created is gone


def test_refuses_output_that_is_not_a_data_dir(tmp_path, folder):
    busy = tmp_path / "busy"
    write(busy / "precious.txt", "keep me")
    a_file = write(tmp_path / "file.out", "keep me too")
    with pytest.raises(PrepareError, match=r"not a data folder.*busy"):
        prepare([folder], str(busy), tokenizer="byte")
    with pytest.raises(PrepareError, match=r"is a file.*file\.out"):
        prepare([folder], a_file, tokenizer="byte")
    assert os.listdir(busy) == ["precious.txt"] and open(a_file).read() == "keep me too"
    assert leftovers(tmp_path) == []
    (tmp_path / "empty").mkdir()  # an empty folder is fine to fill
    assert prepare([folder], str(tmp_path / "empty"), tokenizer="byte")["n_files"] == 8


def test_skips_bad_files_found_in_folders(tmp_path, folder):
    write(os.path.join(folder, "zz_image.txt"), b"\x89PNG\r\n\x1a\n\x00\x00")
    meta = prepare([folder], str(tmp_path / "data"), tokenizer="byte")
    assert meta["n_files"] == 8 and meta["skipped_files"] == 1
    assert "zz_image.txt" in meta["skipped_examples"][0] and meta["sources"][0]["skipped"] == 1


def test_atomic_replacement_of_data_dir(tmp_path, folder):
    out = str(tmp_path / "data")
    prepare([folder], out, tokenizer="byte")
    before = {n: open(os.path.join(out, n), "rb").read() for n in os.listdir(out)}

    def boom(event):
        if event["stage"] == "encode" and event["done"] > 0:
            raise RuntimeError("killed mid-encode")

    # A failure half-way leaves the old data folder exactly as it was.
    with pytest.raises(RuntimeError, match="mid-encode"):
        prepare([folder], out, tokenizer="char", progress=boom)
    with pytest.raises(PrepareError, match="vocab_size 10 is too small"):
        prepare([folder], out, tokenizer="bpe", vocab_size=10)
    assert {n: open(os.path.join(out, n), "rb").read() for n in os.listdir(out)} == before
    # A success replaces it completely.
    meta = prepare([folder], out, tokenizer="char")
    assert read_meta(out)["tokenizer"] == "char" == meta["tokenizer"]
    assert load_tokenizer(out).kind == "char"
    assert leftovers(tmp_path) == []


def test_readers_reject_non_data_dirs(tmp_path, folder):
    with pytest.raises(PrepareError, match=r"not a data folder.*corpus"):
        read_meta(folder)
    with pytest.raises(PrepareError, match=r"no tokenizer\.json in .*corpus"):
        load_tokenizer(folder)
    out = str(tmp_path / "data")
    prepare([folder], out, tokenizer="byte")
    with pytest.raises(PrepareError, match="split must be"):
        open_split(out, "test")
    with open(os.path.join(out, "val.bin"), "r+b") as f:
        f.truncate(3)
    with pytest.raises(PrepareError, match=r"val\.bin: expected \d+ tokens"):
        open_split(out, "val")


# --------------------------------------------------------------------------- streaming


def _peak_rss_kb(src: str, out: str, kind: str) -> int:
    """Peak RSS (kB) of a fresh interpreter running prepare on `src`.

    VmHWM, not ru_maxrss: Linux carries ru_maxrss across fork+exec, so a child would report the
    (bigger) pytest process's peak and hide any growth.
    """
    code = textwrap.dedent(f"""
        import re, resource, core.data as d
        d.TRAIN_SAMPLE_BYTES = 1_000_000  # BPE training memory is bounded by this sample, not tested here
        d.prepare([{src!r}], {out!r}, tokenizer={kind!r}, vocab_size={300 if kind == "bpe" else None})
        try:
            print(re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1))
        except OSError:
            print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    """)
    env = {**os.environ, "PYTHONPATH": ROOT}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    return int(res.stdout.split()[-1])


@pytest.mark.parametrize("kind,small_mb,big_mb", [("char", 3, 36), ("bpe", 8, 40)])
def test_memory_does_not_grow_with_corpus(tmp_path, kind, small_mb, big_mb):
    rng = np.random.default_rng(0)
    words = np.array("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split())
    block = "\n".join(" ".join(row) for row in rng.choice(words, size=(20_000, 8))) + "\n"  # ~1 MB
    files = {}
    for mb in (small_mb, big_mb):
        files[mb] = write(tmp_path / f"{mb}.txt", block * int(mb * 1e6 / len(block)))
    small = _peak_rss_kb(files[small_mb], str(tmp_path / "small"), kind)
    big = _peak_rss_kb(files[big_mb], str(tmp_path / "big"), kind)
    corpus_growth_kb = (os.path.getsize(files[big_mb]) - os.path.getsize(files[small_mb])) / 1024
    # Holding the text (1 byte/char) or the ids would add at least the corpus growth; allow a third.
    # (The small side is not tiny: the allocator and encode threads warm up over the first ~10 MB.)
    assert big - small < corpus_growth_kb / 3, (small, big, corpus_growth_kb)
    assert json.load(open(tmp_path / "big" / "meta.json"))["n_bytes"] == os.path.getsize(files[big_mb])
