"""`llm-train eval`: perplexity against an independent computation, bits per byte by hand, BLEU and
ROUGE-L against the libraries, bad input."""

from __future__ import annotations

import json
import math
import os

import pytest
import torch
from engine_helpers import engine, write_config
from finetune_helpers import check

from core.generate import load_model


@pytest.fixture(scope="module")
def byte_ckpt(tmp_path_factory):
    """A byte-tokenizer checkpoint (one training step) and a text longer than its context."""
    folder = tmp_path_factory.mktemp("evalbyte")
    text = "".join(f"line {i}: the quick brown fox {i * 7 % 13}\n" for i in range(40))
    (folder / "corpus.txt").write_text(text, encoding="utf-8")
    check(engine("prepare", "--input", "corpus.txt", "--out", "data", "--tokenizer", "byte", cwd=folder))
    write_config(folder, "data", model={"block_size": 32}, train={"max_steps": 1, "warmup_steps": 0})
    check(engine("train", "--config", "run.yaml", cwd=folder))
    return folder, os.path.join(str(folder), "runs", "r", "checkpoints", "step-000001"), text


def test_perplexity_is_exp_of_the_mean_token_loss(byte_ckpt):
    folder, ckpt, text = byte_ckpt
    r = check(engine("eval", "--checkpoint", ckpt, "--text", "corpus.txt", "--json", cwd=folder))
    got = json.loads(r.stdout)
    assert "eval" in r.stderr  # the progress bar
    model, _ = load_model(ckpt)
    ids = list(text.encode("utf-8"))  # byte tokenizer: id == byte
    T, total, n = model.cfg.block_size, 0.0, 0
    with torch.no_grad():
        for start in range(0, len(ids) - 1, T):  # every token after the first, predicted once
            window = torch.tensor(ids[start:start + T + 1])
            _, loss, _ = model(window[None, :-1], window[None, 1:])
            total, n = total + float(loss) * (len(window) - 1), n + len(window) - 1
    assert got["tokens"] == n == len(ids) - 1
    assert got["loss"] == pytest.approx(total / n, rel=1e-5)
    assert got["perplexity"] == pytest.approx(math.exp(total / n), rel=1e-5)


def test_bits_per_byte_hand_computed(byte_ckpt, tmp_path):
    from core.evaluate import evaluate_text

    _, ckpt, _ = byte_ckpt
    model, meta = load_model(ckpt)
    with torch.no_grad():  # zero output layer: every next byte gets probability 1/256
        model.lm_head.weight.zero_()
    path = tmp_path / "hello.txt"
    path.write_text("héllo world\n", encoding="utf-8")  # 13 bytes (é is two), 12 predicted
    got = evaluate_text(model, meta, ckpt, str(path), "cpu", progress=False)
    assert got["bytes"] == 13 and got["tokens"] == 12
    assert got["loss"] == pytest.approx(math.log(256), rel=1e-6)
    assert got["bits_per_byte"] == pytest.approx(12 * 8 / 13, rel=1e-6)


def test_bleu_and_rouge_match_the_libraries():
    import sacrebleu
    from rouge_score import rouge_scorer

    from core.evaluate import scores

    gens = ["the cat sat on the mat", "a dog ran in the park today", "hello"]
    refs = ["the cat sat on the mat", "the dog ran in the big park", "goodbye"]
    got = scores(gens, refs)
    assert got["bleu"] == sacrebleu.corpus_bleu(gens, [refs]).score
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    assert got["rouge_l"] == pytest.approx(sum(scorer.score(r, g)["rougeL"].fmeasure
                                               for g, r in zip(gens, refs, strict=True)) / 3)
    assert got["exact_match"] == pytest.approx(1 / 3) and got["n"] == 3
    # by hand: "the cat sat" vs "the cat sat down": P = 1, R = 3/4, F = 6/7
    assert scores(["the cat sat"], ["the cat sat down"])["rouge_l"] == pytest.approx(6 / 7)
    assert scores(["x"], ["x"])["bleu"] == 0.0 and scores(["a b c d"], ["a b c d"])["bleu"] == pytest.approx(100.0)


def test_eval_bad_input_exit_2(byte_ckpt, tmp_path):
    folder, ckpt, _ = byte_ckpt
    bad = tmp_path / "pairs.jsonl"
    bad.write_text('{"prompt": "a", "reference": "b"}\n{"prompt": "a"}\n', encoding="utf-8")
    r = engine("eval", "--checkpoint", ckpt, "--pairs", str(bad))
    assert r.returncode == 2 and f"{bad}:2:" in r.stderr
    bad.write_bytes(b'{"prompt": "a", "reference": "b"}\n{"prompt": "\xff", "reference": "b"}\n')
    r = engine("eval", "--checkpoint", ckpt, "--pairs", str(bad))
    assert r.returncode == 2 and f"{bad}:2: not UTF-8" in r.stderr and "Traceback" not in r.stderr
    r = engine("eval", "--checkpoint", ckpt, "--text", str(tmp_path / "missing.txt"))
    assert r.returncode == 2 and "missing.txt" in r.stderr
