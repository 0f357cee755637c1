"""Where training text comes from: files, folders and the built-in demo corpora.

`core.data.prepare` turns every input into a list of `Document`s. A document is one file on disk or one
generated text; it is never held in memory as a whole. Readers here stream a document as `str` pieces
cut after a newline, so a corpus of any size passes through in bounded memory.

Built-in corpora (an input spec starting with ``@``, optionally with a size limit ``@name:SIZE`` such
as ``@stdlib:5M``):

* ``@stdlib``: the ``.py`` sources of this interpreter's standard library (found with ``sysconfig``,
  nothing is downloaded), without ``site-packages`` and test folders. Real code, a few tens of MB.
* ``@synthetic``: small deterministic tasks whose attention patterns are easy to read, one per line:
  ``copy: abcde|abcde``, ``reverse: abcde|edcba``, ``sort: dbca|abcd``, ``add: 123+456=579``.
  About 1.5 MB by default, in 64 KB documents, fully determined by the seed.

This module is pure Python (no numpy, no tokenizers, no torch) and never imports Qt: the studio uses it to
write the demo workspace's examples.
"""

from __future__ import annotations

import codecs
import io
import os
import random
import re
import sysconfig
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from core.errors import DataError

# Extensions taken from folders when no globs are given: text people write, code, markup, data.
DEFAULT_EXTENSIONS = frozenset(
    ".txt .text .md .markdown .rst .tex .org .adoc .html .htm .xml .css .json .jsonl .yaml .yml .toml "
    ".ini .cfg .csv .tsv .py .pyi .c .h .cc .cpp .hpp .cs .java .kt .go .rs .js .ts .jsx .tsx .rb .php "
    ".pl .lua .sh .bash .sql .r .jl .swift .scala .hs .ml .el .vim .srt".split()
)
# Folders never entered while walking: VCS/tool state and caches are not corpus text.
SKIP_DIRS = frozenset({"__pycache__", "node_modules", "site-packages", "dist-packages"})
# Test suites in the stdlib contain deliberately broken/odd encodings and dominate by size.
STDLIB_SKIP_DIRS = SKIP_DIRS | {"test", "tests", "idle_test", "idlelib"}
# Half-written or aside-moved outputs of a concurrent/crashed prepare (see core.data).
_TEMP_OUT = re.compile(r"\.(tmp|old)-\d+$")

BLOCK_BYTES = 1 << 20  # read granularity from disk
PIECE_BYTES = 64 << 10  # size of one text piece handed to the tokenizer (the unit of parallelism)
MAX_LINE_BYTES = 4 << 20  # a "line" longer than this is cut at a character boundary instead
SYNTHETIC_BYTES = 1_500_000
SYNTHETIC_DOC_BYTES = 64 << 10


class PrepareError(DataError):
    """Bad input for `prepare`; the message names the offending path or value (the CLI exits 2)."""


@dataclass(frozen=True)
class Document:
    """One unit of the corpus: a file, or a generated text rebuilt on demand (deterministic, cheap)."""

    name: str  # file path, or "@synthetic#0003" for generated text
    size: int  # length in bytes of the UTF-8 text
    path: str | None = None
    make_text: Callable[[], str] | None = None

    def open(self) -> BinaryIO:
        if self.path is not None:
            return open(self.path, "rb")
        assert self.make_text is not None
        return io.BytesIO(self.make_text().encode("utf-8"))


# --------------------------------------------------------------------------- reading


def check_text_file(path: str) -> str | None:
    """Why `path` is not usable UTF-8 text (naming the byte offset), or None if it is.

    Reads the whole file in blocks: a bad byte deep inside a file must be found here, before the
    tokenizer is trained, not halfway through writing the shards.
    """
    base, carry = 0, b""
    with open(path, "rb") as f:
        while True:
            block = f.read(BLOCK_BYTES)
            data = carry + block
            nul = data.find(b"\x00")
            if nul >= 0:  # valid UTF-8, but no text file has NULs: this is a binary file
                return f"binary file (NUL byte at offset {base + nul})"
            try:
                _, used = codecs.utf_8_decode(data, "strict", not block)
            except UnicodeDecodeError as exc:
                return f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {base + exc.start})"
            base, carry = base + used, data[used:]
            if not block:
                return None


def find_cut(doc: Document, at: int) -> int:
    """A byte offset near `at` where `doc` can be split: just after the next newline, else a char start.

    Used for the tail validation split and for the bounded tokenizer sample.
    """
    if at <= 0:
        return 0
    if at >= doc.size:
        return doc.size
    with doc.open() as f:
        f.seek(at)
        pos = at
        while pos < doc.size - 1:
            block = f.read(BLOCK_BYTES)
            if not block:
                break
            k = block.find(b"\n")
            if k >= 0 and pos + k < doc.size - 1:
                return pos + k + 1
            pos += len(block)
        # No newline before the end: cut inside the line, backing up to a UTF-8 lead byte.
        lo = max(0, at - 3)
        f.seek(lo)
        near = f.read(at - lo + 1)
    cut = at
    while cut > lo and (near[cut - lo] & 0xC0) == 0x80:
        cut -= 1
    return cut


def read_pieces(doc: Document, start: int = 0, end: int | None = None,
                piece: int = PIECE_BYTES) -> Iterator[str]:
    """Stream bytes [start, end) of `doc` as str pieces of about `piece` bytes, each cut after a newline.

    Cutting at newlines keeps multi-byte characters whole and keeps the tokenizer's pre-tokenization
    (which splits around whitespace) nearly identical to encoding the document in one go.
    `start` and `end` must be cut points (see `find_cut`). Memory: at most ~BLOCK + MAX_LINE bytes.
    """
    end = doc.size if end is None else min(end, doc.size)
    with doc.open() as f:
        f.seek(start)
        pos, base, carry = start, start, b""
        while True:
            block = f.read(min(BLOCK_BYTES, end - pos)) if pos < end else b""
            pos += len(block)
            final = not block
            data = carry + block
            i = 0
            while i < len(data):
                k = data.find(b"\n", i + piece - 1)
                if k >= 0:
                    j = k + 1
                elif final:
                    j = len(data)
                elif len(data) - i >= MAX_LINE_BYTES:
                    j = i + piece  # a giant line (minified file): cut at a character boundary
                    while j > i + 1 and (data[j] & 0xC0) == 0x80:
                        j -= 1
                else:
                    break  # need more bytes to find the end of this line
                try:
                    yield data[i:j].decode("utf-8")
                except UnicodeDecodeError as exc:  # validated earlier, so the file changed under us
                    raise PrepareError(f"not UTF-8 text: {doc.name} (offset {base + i + exc.start})") from None
                i = j
            base += i
            carry = data[i:]
            if final:
                return


# --------------------------------------------------------------------------- folders and globs


def glob_regex(pattern: str) -> re.Pattern[str]:
    """Compile a glob over '/'-separated relative paths: `*` and `?` stay in one folder, `**/` spans any.

    A pattern without a '/' matches the file name at any depth (like .gitignore): `*.txt` == `**/*.txt`.
    """
    p = pattern.replace("\\", "/")
    p = p[2:] if p.startswith("./") else p
    if "/" not in p:
        p = "**/" + p
    out, i = [], 0
    while i < len(p):
        if p.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif p.startswith("**", i):
            out.append(".*")
            i += 2
        elif p[i] == "*":
            out.append("[^/]*")
            i += 1
        elif p[i] == "?":
            out.append("[^/]")
            i += 1
        elif p[i] == "[" and "]" in p[i + 2:]:
            j = p.index("]", i + 2)
            body = p[i + 1:j]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body).replace("\\", "\\\\") + "]")
            i = j + 1
        else:
            out.append(re.escape(p[i]))
            i += 1
    return re.compile("".join(out))


def _skip_dir(parent: str, name: str, skip: frozenset[str]) -> bool:
    if name.startswith(".") or name in skip or _TEMP_OUT.search(name):
        return True
    # A prepared data folder inside the input folder: its tokenizer.json/meta.json are not corpus text.
    d = os.path.join(parent, name)
    return os.path.isfile(os.path.join(d, "meta.json")) and os.path.isfile(os.path.join(d, "train.bin"))


def walk_folder(root: str, globs: list[str] | None = None,
                skip: frozenset[str] = SKIP_DIRS) -> Iterator[str]:
    """Files under `root` in a stable (sorted) order, matching `globs` or DEFAULT_EXTENSIONS.

    Hidden files and folders, caches and prepared data folders are skipped. Symlinked folders are not
    followed (no cycles); symlinked files are read.
    """
    patterns = [glob_regex(g) for g in globs] if globs else None
    for parent, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not _skip_dir(parent, d, skip))
        rel_parent = os.path.relpath(parent, root).replace(os.sep, "/")
        for name in sorted(files):
            if name.startswith("."):
                continue
            if patterns is None:
                if os.path.splitext(name)[1].lower() not in DEFAULT_EXTENSIONS:
                    continue
            else:
                rel = name if rel_parent == "." else f"{rel_parent}/{name}"
                if not any(p.fullmatch(rel) for p in patterns):
                    continue
            path = os.path.join(parent, name)
            if os.path.isfile(path):
                yield path


# --------------------------------------------------------------------------- built-in corpora

BUILTINS = ("@stdlib", "@synthetic")


def parse_size(text: str) -> int:
    """'1500000', '500K', '2M', '1G' (powers of 1000) -> bytes; PrepareError naming the value."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)[bB]?\s*", text)
    if not m:
        raise PrepareError(f"bad size {text!r} (expected e.g. 500K, 2M, 1G)")
    n = int(float(m.group(1)) * {"": 1, "k": 10**3, "m": 10**6, "g": 10**9}[m.group(2).lower()])
    if n <= 0:
        raise PrepareError(f"bad size {text!r}: must be positive")
    return n


def parse_builtin(spec: str) -> tuple[str, int | None]:
    """'@stdlib:5M' -> ('@stdlib', 5000000); PrepareError for an unknown name."""
    name, _, size = spec.partition(":")
    if name not in BUILTINS:
        raise PrepareError(f"unknown built-in corpus {spec!r} (choose from {', '.join(BUILTINS)})")
    return name, parse_size(size) if size else None


def stdlib_root() -> str:
    return sysconfig.get_paths()["stdlib"]


def stdlib_files(max_bytes: int | None = None) -> Iterator[str]:
    """The standard library's own .py files, sorted, stopping once `max_bytes` have been listed."""
    total = 0
    for path in walk_folder(stdlib_root(), ["*.py"], skip=STDLIB_SKIP_DIRS):
        if max_bytes is not None and total >= max_bytes:
            return
        total += os.path.getsize(path)
        yield path


_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def synthetic_line(rng: random.Random) -> str:
    """One task line; the answer after '|' or '=' is a pure function of the question before it."""
    task = rng.randrange(4)
    if task == 3:
        a, b = rng.randrange(1000), rng.randrange(1000)
        return f"add: {a}+{b}={a + b}\n"
    s = "".join(rng.choice(_LETTERS) for _ in range(rng.randint(3, 8)))
    answer = (s, s[::-1], "".join(sorted(s)))[task]
    return f"{('copy', 'reverse', 'sort')[task]}: {s}|{answer}\n"


def synthetic_pairs(seed: int, n: int) -> list[tuple[str, str]]:
    """`n` (question, answer) pairs of the same tasks, seeded: ('reverse: abc', 'cba'), ('add: 1+2', '3').
    The demo workspace's instruction and evaluation examples, in its corpus's own characters."""
    rng = random.Random(f"synthetic-pairs-{seed}")
    out = []
    for _ in range(n):
        line = synthetic_line(rng).rstrip("\n")
        cut = line.rindex("=" if line.startswith("add: ") else "|")
        out.append((line[:cut], line[cut + 1:]))
    return out


def synthetic_text(seed: int, index: int, n_bytes: int = SYNTHETIC_DOC_BYTES) -> str:
    """Document `index` of the synthetic corpus: lines until `n_bytes`, seeded by (seed, index)."""
    rng = random.Random(f"synthetic-{seed}-{index}")  # str seeds hash with SHA-512: stable everywhere
    lines, size = [], 0
    while size < n_bytes:
        line = synthetic_line(rng)
        lines.append(line)
        size += len(line)  # ASCII only, so characters == bytes
    return "".join(lines)


def synthetic_documents(seed: int, n_bytes: int = SYNTHETIC_BYTES) -> list[Document]:
    """The @synthetic corpus as ~64 KB documents totalling about `n_bytes` (>= one line)."""
    docs = []
    for i in range(max(1, -(-n_bytes // SYNTHETIC_DOC_BYTES))):
        want = min(SYNTHETIC_DOC_BYTES, n_bytes - i * SYNTHETIC_DOC_BYTES)

        def make(i: int = i, want: int = want) -> str:
            return synthetic_text(seed, i, want)

        docs.append(Document(f"@synthetic#{i:04d}", len(make()), make_text=make))
    return docs


# --------------------------------------------------------------------------- gathering and splitting


def gather(inputs: list[str], globs: list[str] | None, seed: int, max_bytes: int | None,
            report: Callable[..., None]) -> tuple[list[Document], list[dict], list[str]]:
    """Inputs -> validated documents, per-input source records, and 'path: reason' of skipped files.

    Explicitly named files must be UTF-8 text (PrepareError otherwise); files met while walking a folder
    or a built-in corpus are skipped when binary or undecodable, and counted.
    """
    candidates: list[tuple[dict, Document, bool]] = []  # (source, doc, found_by_walking)
    sources: list[dict] = []
    seen: set[str] = set()
    for spec in inputs:
        src = {"input": spec, "kind": "file", "files": 0, "bytes": 0, "skipped": 0}
        sources.append(src)
        if spec.startswith("@"):
            name, limit = parse_builtin(spec)
            src["kind"] = "builtin"
            if name == "@synthetic":
                candidates += [(src, d, True) for d in synthetic_documents(seed, limit or SYNTHETIC_BYTES)]
                continue
            paths, walked = stdlib_files(limit), True
        elif os.path.isdir(spec):
            src["kind"] = "folder"
            paths, walked = walk_folder(spec, globs), True
        elif os.path.isfile(spec):
            paths, walked = iter([spec]), False
        elif os.path.exists(spec):
            raise PrepareError(f"input is neither a regular file nor a folder: {spec}")
        else:
            raise PrepareError(f"input not found: {spec}")
        for path in paths:
            real = os.path.realpath(path)
            if real not in seen:  # a file named directly and again inside a named folder counts once
                seen.add(real)
                candidates.append((src, Document(path, os.path.getsize(path), path=path), walked))

    total = sum(d.size for _, d, _ in candidates)
    total = min(total, max_bytes) if max_bytes is not None else total
    docs, skipped, done = [], [], 0
    report("scan", 0, total, force=True)
    for src, doc, walked in candidates:
        if max_bytes is not None and done >= max_bytes:
            break
        if doc.size == 0:
            continue
        try:
            why = check_text_file(doc.path) if doc.path is not None else None
        except OSError as exc:  # e.g. no permission: same rule as a binary file
            why = f"unreadable ({exc.strerror})"
        if why is not None:
            if not walked:
                raise PrepareError(f"{why}: {doc.path}")
            skipped.append(f"{doc.path}: {why}")
            src["skipped"] += 1
            continue
        docs.append(doc)
        src["files"] += 1
        src["bytes"] += doc.size
        done += doc.size
        report("scan", done, total)
    report("scan", total, total, force=True)
    if not docs:
        what = f" matching {globs}" if globs else ""
        extra = f"; {len(skipped)} files skipped as binary, not UTF-8 or unreadable" if skipped else ""
        raise PrepareError(f"empty corpus: no non-empty text files{what} in {', '.join(inputs)}{extra}")
    return docs, sources, skipped


def plan_split(docs: list[Document], val_fraction: float, seed: int) -> tuple[str, list[list[tuple]]]:
    """Per document, the (split, start, end) byte segments to encode, in order. See module docstring."""
    total = sum(d.size for d in docs)
    budget = val_fraction * total
    order = list(range(len(docs)))
    random.Random(seed).shuffle(order)
    val, used = set(), 0
    for i in order:
        if used + docs[i].size <= budget:
            val.add(i)
            used += docs[i].size
    if len(docs) >= 2 and used >= budget / 2:
        return "documents", [[("val" if i in val else "train", 0, d.size)] for i, d in enumerate(docs)]
    plan = []
    for d in docs:
        cut = find_cut(d, d.size - max(1, round(d.size * val_fraction)))
        plan.append([seg for seg in (("train", 0, cut), ("val", cut, d.size)) if seg[2] > seg[1]])
    return "tail", plan
