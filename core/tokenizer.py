"""The tokenizer of a data folder (or checkpoint) with the few calls the engine and the studio need.

Split from core.data so inference (generate, serve) loads without the preparation machinery.
"""

from __future__ import annotations

import codecs
import json
import os

from tokenizers import Tokenizer

from core.corpora import PrepareError

EOT = "<|endoftext|>"
UNK = "<unk>"


def byte_chars() -> list[str]:
    """GPT-2's byte -> printable char table that HF's ByteLevel pre-tokenizer and decoder use."""
    table = {b: chr(b) for b in (*range(33, 127), *range(161, 173), *range(174, 256))}
    extra = (b for b in range(256) if b not in table)
    table.update({b: chr(256 + n) for n, b in enumerate(extra)})
    return [table[b] for b in range(256)]


def tokenizer_kind(spec: dict) -> str:
    """'char', 'byte' or 'bpe': which of `prepare`'s tokenizers a tokenizer.json (parsed) is, from its structure
    (every other, an imported model's, is handled as byte-level BPE)."""
    pre = spec.get("pre_tokenizer") or {}
    if (spec.get("decoder") or {}).get("type") == "Fuse":
        return "char"
    if pre.get("type") == "ByteLevel" and not pre.get("use_regex", True):
        return "byte"
    return "bpe"


class TokenizerWrapper:
    """The data folder's tokenizer with the few calls the engine and the GUI need.

    Every id maps to a fixed byte string (its piece); `decode` joins those bytes and decodes UTF-8 with
    replacement, so `''.join(decode_pieces(ids)) == decode(ids)` exactly, also for ids that cut a
    multi-byte character in half. Special tokens decode to their text ('<|endoftext|>', '<unk>').
    Ids outside the vocabulary (a model with a padded embedding table) decode to U+FFFD.
    """

    def __init__(self, tok: Tokenizer, kind: str):
        self.tokenizer, self.kind = tok, kind
        self.vocab_size: int = tok.get_vocab_size()
        self.eot_id: int | None = tok.token_to_id(EOT)
        unk = getattr(tok.model, "unk_token", None)  # what text outside the vocabulary becomes (BPE, WordPiece)
        self.unk_id: int | None = tok.token_to_id(unk) if isinstance(unk, str) else None
        special = {i: t.content for i, t in tok.get_added_tokens_decoder().items()}
        self._special_ids = set(special)
        byte_of = {c: b for b, c in enumerate(byte_chars())}
        self._bytes: list[bytes] = []
        for i in range(self.vocab_size):
            piece = tok.id_to_token(i) or ""
            if i in special or kind == "char":
                self._bytes.append(special.get(i, piece).encode("utf-8"))
            else:  # byte-level token: printable stand-in chars -> the raw bytes they stand for
                self._bytes.append(bytes(byte_of[c] for c in piece))

    @classmethod
    def from_file(cls, path: str) -> TokenizerWrapper:
        """Load a tokenizer.json written by `prepare`; the kind is read from its structure."""
        try:
            tok = Tokenizer.from_file(path)
        except Exception as exc:  # tokenizers raises plain Exception for missing/corrupt files
            raise PrepareError(f"cannot load tokenizer ({exc}): {path}") from None
        return cls(tok, tokenizer_kind(json.loads(tok.to_str())))

    def _piece(self, i: int) -> bytes:
        return self._bytes[i] if 0 <= i < self.vocab_size else "\ufffd".encode()

    def text_bytes(self, i: int) -> int:
        """How many bytes of text token `i` stands for (0 for a special token such as <|endoftext|>)."""
        return 0 if i in self._special_ids else len(self._piece(i))

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def decode(self, ids: list[int]) -> str:
        return b"".join(self._piece(int(i)) for i in ids).decode("utf-8", errors="replace")

    def id_to_piece(self, i: int) -> str:
        """Display text of one token; bytes that are not whole characters show as \\xNN."""
        return self._piece(int(i)).decode("utf-8", errors="backslashreplace")

    def decode_pieces(self, ids: list[int]) -> list[str]:
        """One string per token, concatenating to `decode(ids)`: a character split across tokens is
        shown on the token that completes it (the earlier ones get '')."""
        dec = codecs.getincrementaldecoder("utf-8")(errors="replace")
        out = [dec.decode(self._piece(int(i))) for i in ids]
        tail = dec.decode(b"", final=True)
        if out and tail:
            out[-1] += tail
        return out


def load_tokenizer(data_dir: str) -> TokenizerWrapper:
    """The tokenizer of a data folder (or any folder holding tokenizer.json, or the file itself)."""
    path = data_dir if os.path.isfile(data_dir) else os.path.join(data_dir, "tokenizer.json")
    if not os.path.isfile(path):
        raise PrepareError(f"no tokenizer.json in {data_dir}")
    return TokenizerWrapper.from_file(path)
