"""GGUF's embedded vocabulary <-> a Hugging Face tokenizer.json, id for id.

GGUF (tokenizer.ggml.*) keeps a byte-level BPE vocabulary as: `model` "gpt2", `pre` (the name of the
pre-tokenizer split, e.g. gpt-2, llama-bpe, qwen2, smollm), `tokens` (NORMAL ones in GPT-2's printable-byte
form, CONTROL and USER_DEFINED ones as plain text), `token_type` per token, `merges` ("a b" strings) and the
special ids. The same facts make an HF BPE tokenizer with a ByteLevel pre-tokenizer/decoder and the specials
as added tokens, so both produce the same ids.
"""

from __future__ import annotations

import json

from core.errors import UsageError
from core.tokenizer import UNK, byte_chars, tokenizer_kind

NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6

# The splits llama.cpp names by `tokenizer.ggml.pre`, as HF pre-tokenizers (before the byte mapping).
_LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
           r"\s*[\r\n]+|\s+(?!\S)|\s+")
_QWEN2 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
          r"\s*[\r\n]+|\s+(?!\S)|\s+")
_BYTE_LEVEL = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
_BYTE_ONLY = {**_BYTE_LEVEL, "use_regex": False}


def _split(regex: str) -> dict:
    return {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": False}, _BYTE_ONLY]}


PRE_TOKENIZERS = {
    "gpt-2": _BYTE_LEVEL, "default": _BYTE_LEVEL,
    "llama-bpe": _split(_LLAMA3), "llama3": _split(_LLAMA3),
    "qwen2": _split(_QWEN2),
    "smollm": {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": True}, _BYTE_LEVEL]},
}


def tokenizer_json_from_gguf(fields: dict) -> str:
    """tokenizer.json text from the tokenizer.ggml.* values of a GGUF file (a dict key -> value)."""
    model = fields.get("tokenizer.ggml.model")
    if model != "gpt2":
        raise UsageError(f"GGUF tokenizer.ggml.model {model!r} is not supported (supported: gpt2, the byte-level "
                         f"BPE of GPT-2, Llama 3, SmolLM, Qwen2)", "tokenizer.ggml.model")
    pre_name = fields.get("tokenizer.ggml.pre") or "default"
    if pre_name not in PRE_TOKENIZERS:
        raise UsageError(f"GGUF tokenizer.ggml.pre {pre_name!r} is not supported (supported: "
                         f"{', '.join(PRE_TOKENIZERS)})", "tokenizer.ggml.pre")
    if not fields.get("tokenizer.ggml.tokens"):
        raise UsageError("GGUF metadata tokenizer.ggml.tokens is missing: the file has no vocabulary to rebuild the "
                         "tokenizer from", "tokenizer.ggml.tokens")
    tokens = list(fields["tokenizer.ggml.tokens"])
    types = list(fields.get("tokenizer.ggml.token_type") or [NORMAL] * len(tokens))
    if len(types) != len(tokens):
        raise UsageError(f"GGUF metadata tokenizer.ggml.token_type has {len(types)} entries for {len(tokens)} "
                         f"tokens", "tokenizer.ggml.token_type")
    vocab, added = {}, []
    for i, (tok, kind) in enumerate(zip(tokens, types, strict=True)):
        if kind in (CONTROL, USER_DEFINED):
            added.append({"id": i, "content": tok, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": kind == USER_DEFINED, "special": kind == CONTROL})
        vocab[tok] = i  # added tokens keep their vocab entry too, as HF's converters write them
    merges = [m.split(" ", 1) for m in fields.get("tokenizer.ggml.merges") or []]
    spec = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None,
        "pre_tokenizer": PRE_TOKENIZERS[pre_name],
        "post_processor": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                           "use_regex": False},
        "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges":
                  pre_name in ("llama-bpe", "llama3"), "vocab": vocab, "merges": merges},
    }
    return json.dumps(spec, ensure_ascii=False)


def pre_name_of(spec: dict) -> str | None:
    """The llama.cpp pre-tokenizer name whose split this tokenizer.json uses, or None."""
    pre = spec.get("pre_tokenizer")
    for name, known in PRE_TOKENIZERS.items():
        if pre == known:
            return name
    if isinstance(pre, dict) and pre.get("type") == "ByteLevel" and pre.get("use_regex", True):
        return "gpt-2"  # trim_offsets / add_prefix_space=False variants split the same way
    if isinstance(pre, dict) and pre.get("type") == "Sequence" and len(pre.get("pretokenizers", [])) == 2:
        first = pre["pretokenizers"][0]
        regex = (first.get("pattern") or {}).get("Regex")
        for name, known in (("llama-bpe", _LLAMA3), ("qwen2", _QWEN2)):
            if first.get("type") == "Split" and regex == known:
                return name
    return None


def gguf_vocab_from_tokenizer(spec: dict, vocab_size: int) -> dict:
    """tokens, token types, merges, the pre-tokenizer name for GGUF, and the rows to append to the embedding
    and output matrices (`extra_rows`: source row per extra token), from a byte-level BPE tokenizer.json or
    one of `prepare`'s char and byte tokenizers; UsageError for a tokenizer llama.cpp cannot reproduce."""
    kind = tokenizer_kind(spec)
    if kind != "bpe":
        return _own_vocab(spec, kind, vocab_size)
    model = spec.get("model") or {}
    pre = pre_name_of(spec)
    if model.get("type") != "BPE" or not model.get("merges") or pre is None:
        raise UsageError("the checkpoint's tokenizer is not a byte-level BPE with a split llama.cpp knows "
                         f"(supported pre-tokenizers: {', '.join(PRE_TOKENIZERS)}), nor a char or byte "
                         "tokenizer of `llm-train prepare`", "tokenizer")
    by_id = {i: t for t, i in model["vocab"].items()}
    kinds = {i: NORMAL for i in by_id}
    for a in spec.get("added_tokens") or []:
        by_id[a["id"]] = a["content"]
        kinds[a["id"]] = CONTROL if a.get("special") else USER_DEFINED
    tokens, types = [], []
    for i in range(vocab_size):
        tokens.append(by_id.get(i, f"[PAD{i}]"))
        types.append(kinds.get(i, UNUSED))
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    return {"tokens": tokens, "types": types, "merges": merges, "pre": pre, "extra_rows": []}


def _own_vocab(spec: dict, kind: str, vocab_size: int) -> dict:
    """`prepare`'s char or byte tokenizer as the byte-level BPE llama.cpp runs ("gpt2"), giving the same ids.

    byte: the 256 byte tokens already are GPT-2's printable-byte alphabet; no merges. char: each character
    becomes its UTF-8 bytes in that alphabet, and merges join the bytes of every multi-byte character of the
    vocabulary (and only those: a merge always starts at a lead byte, so it never crosses characters). The
    parts a merge joins must be tokens too (the byte pieces, the first 2 or 3 bytes of a longer character):
    they are appended after the vocabulary with the rows of `<unk>`, since only a character outside the
    vocabulary ends on one, and that is what `<unk>` means (in llama.cpp such a character gives those, or
    nothing where its bytes are not tokens; for us, `<unk>`).
    Neither tokenizer has an end-of-text token, and llama.cpp's default for this vocabulary type (id 11) is a
    character here: `eos` names one the model never writes (`<unk>`; for byte, the NUL byte)."""
    by_id = {i: t for t, i in (spec.get("model") or {}).get("vocab", {}).items()}
    alphabet = byte_chars()
    tokens, types, merges, partial = [], [], {}, {}
    unk = next((i for i, t in by_id.items() if t == UNK), None)
    for i in range(vocab_size):
        text = by_id.get(i)
        if text is None:
            tokens.append(f"[PAD{i}]")
            types.append(UNUSED)
        elif kind == "byte" or text == UNK:
            tokens.append(text)
            types.append(UNKNOWN if text == UNK else NORMAL)
        else:
            pieces = [alphabet[b] for b in text.encode("utf-8")]
            tokens.append("".join(pieces))
            types.append(NORMAL)
            for n in range(1, len(pieces)):
                merges.setdefault(f"{''.join(pieces[:n])} {pieces[n]}", n)
                partial.update(dict.fromkeys(("".join(pieces[:n]), pieces[n])))
    if partial and unk is None:
        raise UsageError("the checkpoint's character tokenizer has characters of 2 or more UTF-8 bytes but no "
                         f"{UNK} token to stand for their partial byte strings in GGUF", "tokenizer")
    tokens += list(partial)
    types += [NORMAL] * len(partial)
    return {"tokens": tokens, "types": types, "merges": sorted(merges, key=merges.get), "pre": "gpt-2",
            "extra_rows": [unk] * len(partial), "unk": unk, "eos": unk if kind == "char" else 0}
