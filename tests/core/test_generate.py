"""Generation: the KV cache changes nothing under greedy decoding, seeded sampling is reproducible, and the
sampling filters (temperature, top-k, top-p, repetition penalty) do what they say."""

from __future__ import annotations

import os

import pytest
import torch
from engine_helpers import write_config

from core import checkpoint as ckpt
from core.cli import main
from core.generate import (
    SampleParams,
    generate_steps,
    load_model,
    load_tokenizer_for,
    next_token_distribution,
)


@pytest.fixture(scope="module", params=["learned", "rope"])
def trained(request, tmp_path_factory, char_data) -> str:
    folder = tmp_path_factory.mktemp(f"gen-{request.param}")
    cfg = write_config(folder, char_data, model={"pos_encoding": request.param, "block_size": 48},
                       train={"max_steps": 40, "lr": 1e-2})
    assert main(["train", "--config", cfg]) == 0
    return ckpt.latest_checkpoint(os.path.join(folder, "runs", "r"))


@pytest.fixture(scope="module")
def model_tok(trained):
    model, meta = load_model(trained)
    return model, load_tokenizer_for(trained, meta)


def _run(model, ids, **kw) -> list:
    return list(generate_steps(model, ids, SampleParams(**kw)))


@pytest.mark.parametrize("prompt", ["add: 1", "the ", "\n"])
def test_greedy_is_identical_with_and_without_kv_cache(model_tok, prompt):
    model, tok = model_tok
    ids = tok.encode(prompt)
    n = model.cfg.block_size - len(ids)  # the whole window: the cache is never shifted
    cached = _run(model, ids, max_new_tokens=n, temperature=0.0, use_cache=True, top_alternatives=3)
    plain = _run(model, ids, max_new_tokens=n, temperature=0.0, use_cache=False, top_alternatives=3)
    assert [s.token_id for s in cached] == [s.token_id for s in plain]
    assert len(cached) == n
    for a, b in zip(cached, plain, strict=True):
        assert a.model_prob == pytest.approx(b.model_prob, abs=1e-5)
        assert [t for t, _ in a.top] == [t for t, _ in b.top]


def test_the_kv_cache_holds_what_the_request_can_add_not_the_whole_context(model_tok, monkeypatch):
    """A short reply allocates a short cache (an imported model's 128k-position context would otherwise be
    zero-filled per request), gives the tokens of the uncached path, and a long one still shifts."""
    from core import generate
    from core.model import KVCache

    model, tok = model_tok
    sizes = []
    real = KVCache.empty.__func__

    def spy(cls, cfg, batch, device, dtype, max_len=None):
        sizes.append(max_len)
        return real(cls, cfg, batch, device, dtype, max_len)

    monkeypatch.setattr(generate.KVCache, "empty", classmethod(spy))
    ids = tok.encode("add: 1")
    cached = _run(model, ids, max_new_tokens=5, temperature=0.0, use_cache=True)
    plain = _run(model, ids, max_new_tokens=5, temperature=0.0, use_cache=False)
    assert [s.token_id for s in cached] == [s.token_id for s in plain]
    assert sizes == [len(ids) + 5] and sizes[0] < model.cfg.block_size
    sizes.clear()
    long = _run(model, ids, max_new_tokens=2 * model.cfg.block_size, temperature=0.0)
    assert len(long) == 2 * model.cfg.block_size
    assert sizes[0] == model.cfg.block_size and len(sizes) > 1 and max(sizes) <= model.cfg.block_size


def test_generation_continues_past_the_context_window(model_tok):
    model, tok = model_tok
    steps = _run(model, tok.encode("add: "), max_new_tokens=3 * model.cfg.block_size, temperature=0.0)
    assert len(steps) == 3 * model.cfg.block_size


def test_seeded_sampling_is_reproducible_and_the_seed_matters(model_tok):
    model, tok = model_tok
    ids = tok.encode("the ")
    kw = dict(max_new_tokens=40, temperature=1.0, top_k=20, top_p=0.95, repetition_penalty=1.1)
    a = [s.token_id for s in _run(model, ids, seed=123, **kw)]
    b = [s.token_id for s in _run(model, ids, seed=123, **kw)]
    c = [s.token_id for s in _run(model, ids, seed=124, **kw)]
    assert a == b
    assert a != c


def test_steps_report_the_models_top_alternatives(model_tok):
    model, tok = model_tok
    for s in _run(model, tok.encode("add: "), max_new_tokens=10, temperature=0.0, top_alternatives=5):
        probs = [p for _, p in s.top]
        assert len(s.top) == 5 and probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
        assert s.top[0][0] == s.token_id and s.model_prob == pytest.approx(probs[0])  # greedy picks the top
        assert s.prob == 1.0  # ... from a one-hot sampling distribution


def test_sampling_filters():
    logits = torch.tensor([4.0, 3.0, 2.0, 1.0, 0.0, -1.0])
    greedy = next_token_distribution(logits, [], SampleParams(temperature=0.0))
    assert greedy.tolist() == [1.0, 0, 0, 0, 0, 0]
    top2 = next_token_distribution(logits, [], SampleParams(temperature=1.0, top_k=2))
    assert (top2[2:] == 0).all() and top2[:2].sum() == pytest.approx(1.0)
    full = torch.softmax(logits, -1)
    nucleus = next_token_distribution(logits, [], SampleParams(temperature=1.0, top_p=0.8))
    kept = int((nucleus > 0).sum())
    assert full[:kept - 1].sum() < 0.8 <= full[:kept].sum() + 1e-6  # smallest set reaching 0.8
    hot = next_token_distribution(logits, [], SampleParams(temperature=2.0))
    assert hot[0] < full[0] and hot[-1] > full[-1]
    penalised = next_token_distribution(logits, [0], SampleParams(temperature=1.0, repetition_penalty=2.0))
    assert penalised[0] < full[0] and penalised[1] > full[1]


def test_bfloat16_generation_keeps_weights_and_cache_in_bf16_and_tracks_fp32(trained, model_tok, capsys):
    """--dtype bfloat16: the model and its KV cache hold bf16 (half the bytes read per token), the model's
    probabilities stay within bf16 rounding of fp32's, and greedy decoding agrees on the first tokens."""
    from core.generate import inference_dtype
    from core.model import KVCache

    model, tok = model_tok
    bf, _ = load_model(trained, "cpu", torch.bfloat16)
    assert {p.dtype for p in bf.parameters()} == {torch.bfloat16}
    assert KVCache.empty(bf.cfg, 1, "cpu", next(bf.parameters()).dtype).k.dtype == torch.bfloat16
    ids = tok.encode("add: 1")
    ref = _run(model, ids, max_new_tokens=8, temperature=0.0, top_alternatives=1)
    low = _run(bf, ids, max_new_tokens=8, temperature=0.0, top_alternatives=1)
    assert [s.token_id for s in low[:4]] == [s.token_id for s in ref[:4]]
    assert abs(low[0].model_prob - ref[0].model_prob) < 0.05
    assert inference_dtype("float32", "cpu") == torch.float32 and inference_dtype("bfloat16", "cpu") == torch.bfloat16
    capsys.readouterr()
    assert main(["generate", "--checkpoint", trained, "--prompt", "add: 1", "--temperature", "0",
                 "--max-new-tokens", "4", "--dtype", "bfloat16"]) == 0
    assert capsys.readouterr().out.startswith("add: 1" + tok.decode([s.token_id for s in low[:4]])[:2])


def test_streamed_text_is_the_whole_decode_and_decodes_only_a_few_tokens_at_a_time():
    """`generate --stream` (StreamText): pieces written token by token add up to the whole decode of a
    multilingual byte-level text (characters split across tokens come out whole), and no decode sees more
    than a few tokens (decoding the whole output on every token was O(n^2))."""
    from interop_models import byte_bpe

    from core.commands.generate import StreamText

    raw = byte_bpe(300)
    text = "Grüße, naïve café — 日本語のテキスト, emoji 🙂🚀, Ελληνικά και русский. " * 3
    ids = raw.encode(text).ids
    sizes = []

    class Spy:
        def decode(self, part):
            sizes.append(len(part))
            return raw.decode(part)

    stream = StreamText(Spy())
    pieces = [stream.add(i) for i in ids]
    assert "".join(pieces) + stream.rest() == raw.decode(ids) == text
    assert max(sizes) <= 2 * StreamText.HOLD and len(ids) > 10 * StreamText.HOLD
    assert sum(1 for p in pieces if p) > len(ids) // 4  # it streams, not one piece at the end


def test_generate_stream_prints_what_generate_prints(trained, capsys):
    argv = ["generate", "--checkpoint", trained, "--prompt", "add: 1", "--temperature", "0",
            "--max-new-tokens", "30"]
    assert main(argv) == 0
    whole = capsys.readouterr().out
    assert main([*argv, "--stream"]) == 0
    assert capsys.readouterr().out == whole and len(whole) > len("add: 1") + 10


def test_cli_generate_stops_at_the_end_of_text_as_the_studios_worker_does(tmp_path, capsys):
    """Our BPE ends every document with <|endoftext|>: the studio's generation stopped there, the command line
    wrote on into the next invented document. A model rigged to always write it: nothing after the prompt."""
    from interop_models import byte_bpe

    from core.config import Config, ModelConfig
    from core.model import GPT

    tok = byte_bpe(300)
    tok.save(str(tmp_path / "tokenizer.json"))
    eot = tok.token_to_id("<|endoftext|>")
    cfg = ModelConfig(n_layer=1, n_head=2, n_embd=8, block_size=16, vocab_size=300, bias=True, tie_embeddings=False)
    model = GPT(cfg)
    with torch.no_grad():  # the final norm outputs its bias (ones), and only the head's row `eot` reads it
        model.ln_f.weight.zero_()
        model.ln_f.bias.fill_(1.0)
        model.lm_head.weight.zero_()
        model.lm_head.weight[eot] = 1.0
    path = ckpt.save_checkpoint(str(tmp_path / "run"), 1, model, {}, {"config": Config(model=cfg).to_dict()},
                                str(tmp_path / "tokenizer.json"))
    argv = ["generate", "--checkpoint", path, "--prompt", "hi", "--temperature", "0", "--max-new-tokens", "5",
            "--device", "cpu"]
    assert main(argv) == 0
    assert capsys.readouterr().out == "hi\n"
