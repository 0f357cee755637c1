"""GGUF export of a model trained on `prepare`'s tokenizers, char and byte (the demo's kind) as well as BPE:
llama.cpp's byte-level BPE vocabulary is built so that it gives our ids (char: merges join each multi-byte
character's bytes), checked with transformers' GGUF loader (same logits, same ids, same text back) and with our
own import of the file. (llama.cpp itself, through llama-cpp-python, agreed on ids, text and logits: see the
README's Benchmarks notes; it is not a test dependency.)"""

from __future__ import annotations

import gguf
import pytest
import torch
import transformers

from core.checkpoint import save_checkpoint
from core.cli import main
from core.config import Config, ModelConfig
from core.data import prepare
from core.generate import load_model, load_tokenizer_for
from core.layout import latest_checkpoint
from core.model import GPT
from core.tokenizer import EOT, TokenizerWrapper

# 1-, 2-, 3- and 4-byte UTF-8 characters, some sharing lead bytes (é ï, — “ ”) and some sharing two (𝄞 𝄢)
CORPUS = "Café naïve — “quoted” 5 €, 你好 🙂 𝄞𝄢 clef.\nPlain ASCII line two!\n"
TEXT = "naïve “clef” — 你好 🙂, Café 𝄢 5 €\nPlain"
ROPE = {"pos_encoding": "rope", "norm": "rmsnorm", "activation": "swiglu", "bias": False}


@pytest.fixture(scope="module", params=[("char", "gpt2"), ("char", "llama"), ("byte", "llama"), ("bpe", "gpt2")],
                ids=["char-gpt2", "char-llama", "byte-llama", "bpe-gpt2"])
def own(request, tmp_path_factory):
    kind, arch = request.param
    folder = tmp_path_factory.mktemp(f"gguf-{kind}-{arch}")
    (folder / "corpus.txt").write_text(CORPUS * 20, encoding="utf-8")
    prepare([str(folder / "corpus.txt")], str(folder / "data"), tokenizer=kind, seed=1,
            vocab_size=300 if kind == "bpe" else None)
    tok_path = str(folder / "data" / "tokenizer.json")
    tok = TokenizerWrapper.from_file(tok_path)
    # transformers' GGUF loader sizes GPT-2's position table from its default (1024)
    cfg = ModelConfig(n_layer=2, n_head=2, n_embd=32, block_size=1024 if arch == "gpt2" else 64,
                      vocab_size=tok.vocab_size, **({} if arch == "gpt2" else ROPE))
    torch.manual_seed(0)
    model = GPT(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.2 * torch.randn_like(p))
    ckpt = save_checkpoint(str(folder / "run"), 5, model, {}, {"config": Config(model=cfg).to_dict()}, tok_path)
    assert main(["export", "--checkpoint", ckpt, "--format", "gguf", "--out", str(folder / "m.gguf")]) == 0
    return kind, folder, model, tok


def test_transformers_gguf_loader_gives_our_ids_text_and_logits(own):
    kind, folder, model, tok = own
    hf_tok = transformers.AutoTokenizer.from_pretrained(str(folder), gguf_file="m.gguf")
    ids = tok.encode(TEXT)
    assert tok.unk_id not in ids  # every character is in the vocabulary
    assert hf_tok(TEXT, add_special_tokens=False)["input_ids"] == ids
    assert hf_tok.decode(ids) == TEXT == tok.decode(ids)
    hf = transformers.AutoModelForCausalLM.from_pretrained(str(folder), gguf_file="m.gguf").eval()
    with torch.no_grad():
        theirs, ours = hf(torch.tensor([ids])).logits, model(torch.tensor([ids]))[0]
    vocab = tok.vocab_size
    torch.testing.assert_close(theirs[..., :vocab], ours, atol=1e-4, rtol=0)
    if kind == "char":  # the byte pieces appended for the merges score as <unk> does: never above it
        extra = theirs[..., vocab:]
        assert extra.shape[-1] > 0
        torch.testing.assert_close(extra, ours[..., tok.unk_id:tok.unk_id + 1].expand_as(extra), atol=1e-4, rtol=0)
    else:
        assert theirs.shape[-1] == vocab


def test_vocabulary_metadata_is_what_llama_cpp_needs(own):
    kind, folder, _, tok = own
    fields = {k: f.contents() for k, f in gguf.GGUFReader(str(folder / "m.gguf")).fields.items()}
    assert fields["tokenizer.ggml.model"] == "gpt2" and fields["tokenizer.ggml.pre"] == "gpt-2"
    # llama.cpp refuses a "gpt2" vocabulary without the merges key, even where there is nothing to merge
    assert "tokenizer.ggml.merges" in fields
    tokens = fields["tokenizer.ggml.tokens"]
    eos = fields["tokenizer.ggml.eos_token_id"]  # never llama.cpp's default 11, an ordinary token of ours
    if kind == "byte":
        assert fields["tokenizer.ggml.merges"] == [] and len(tokens) == 256
        assert eos == 0  # the NUL byte
    elif kind == "bpe":  # the end of a document, as GPT-2's files have it
        assert tokens[eos] == EOT and eos == tok.eot_id and len(fields["tokenizer.ggml.merges"]) > 0
    else:
        assert "Ã ©" in fields["tokenizer.ggml.merges"]  # é = C3 A9 in GPT-2's printable-byte alphabet
        assert tokens[tok.encode("é")[0]] == "Ã©" and tokens[tok.encode(" ")[0]] == "Ġ"
        assert eos == tok.unk_id == fields["tokenizer.ggml.unknown_token_id"]


def test_our_import_of_the_file_gives_the_same_ids_and_logits(own):
    _, folder, model, tok = own
    assert main(["import", str(folder / "m.gguf"), "--out", str(folder / "back")]) == 0
    path = latest_checkpoint(str(folder / "back"))
    back, meta = load_model(path)
    back_tok = load_tokenizer_for(path, meta)
    ids = tok.encode(TEXT)
    assert back_tok.encode(TEXT) == ids and back_tok.decode(ids) == TEXT
    with torch.no_grad():
        torch.testing.assert_close(back(torch.tensor([ids]))[0][..., :tok.vocab_size],
                                   model(torch.tensor([ids]))[0], atol=1e-5, rtol=0)


def test_the_run_hint_keeps_llama_cpp_within_learned_positions():
    """llama.cpp pads its context to 256 at least and has no sliding window for learned positions: past the
    model's table it stops with an assertion (seen with llama-cpp-python on the demo's 64-token export), so
    the hint bounds the new tokens; a RoPE model gets its trained context."""
    from core.interop import run_hint

    learned = run_hint("gguf", "/a b/m.gguf", {"block_size": 64, "pos_encoding": "learned"})
    assert learned.startswith("llama.cpp: llama-cli -m '/a b/m.gguf' -n 32 ") and "64 positions" in learned
    assert run_hint("gguf", "m.gguf", {"block_size": 512, "pos_encoding": "rope"}).startswith(
        "llama.cpp: llama-cli -m m.gguf -c 512 ")
    assert "from_pretrained('out')" in run_hint("hf", "out", {})
