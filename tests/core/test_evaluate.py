"""`llm-train eval`: perplexity against an independent computation, bits per byte by hand, BLEU and
ROUGE-L against the libraries, bad input."""

from __future__ import annotations

import json
import math
import os

import pytest
import torch
from engine_helpers import engine, events_of, write_config
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


def test_text_outside_a_character_vocabulary_is_counted_as_unknown(tmp_path):
    """A character model knows only its corpus's characters: the rest of a file becomes <unk> and is counted,
    so that a perplexity of mostly unknown tokens is not taken for a measurement of the text."""
    from core.config import ModelConfig
    from core.evaluate import evaluate_text
    from core.model import GPT

    (tmp_path / "corpus.txt").write_text("abc cab bca\n" * 50, encoding="utf-8")
    check(engine("prepare", "--input", "corpus.txt", "--out", "data", "--tokenizer", "char", cwd=tmp_path))
    meta = {"config": {"data": {"dir": str(tmp_path / "data")}}}
    model = GPT(ModelConfig(n_layer=1, n_head=2, n_embd=16, block_size=8, vocab_size=8)).eval()
    for text, unknown in (("abc cab\n" * 4, 0), ("abc XYZ cab\nÄbc\n", 4)):
        path = tmp_path / "held-out.txt"
        path.write_text(text, encoding="utf-8")
        got = evaluate_text(model, meta, str(tmp_path), str(path), "cpu", progress=False)
        assert got["unknown_tokens"] == unknown and got["tokens"] == len(text) - 1


def test_bleu_and_rouge_match_the_libraries():
    import sacrebleu
    from rouge_score import rouge_scorer

    from core.evaluate import scores

    gens = ["the cat sat on the mat", "a dog ran in the park today", "hello"]
    refs = ["the cat sat on the mat", "the dog ran in the big park", "goodbye"]
    got = scores(gens, refs)
    assert got["bleu"] == sacrebleu.corpus_bleu(gens, [refs]).score  # answers of 4+ words: the standard BLEU
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    assert got["rouge_l"] == pytest.approx(sum(scorer.score(r, g)["rougeL"].fmeasure
                                               for g, r in zip(gens, refs, strict=True)) / 3)
    assert got["exact_match"] == pytest.approx(1 / 3) and got["n"] == 3
    # by hand: "the cat sat" vs "the cat sat down": P = 1, R = 3/4, F = 6/7
    assert scores(["the cat sat"], ["the cat sat down"])["rouge_l"] == pytest.approx(6 / 7)
    assert scores(["a b c d"], ["a b c d"])["bleu"] == pytest.approx(100.0)
    # One-word answers have no 2-, 3- or 4-grams: the standard corpus BLEU is 0 even when every answer is
    # right; the effective order scores the orders they have, as sacrebleu's own option does.
    short_gens, short_refs = ["cba", "fed", "xyz", "ab"], ["cba", "fed", "xyw", "ab"]
    assert sacrebleu.corpus_bleu(short_gens, [short_refs]).score == 0.0
    short = scores(short_gens, short_refs)["bleu"]
    assert short == pytest.approx(75.0)  # unigram precision 3/4, no brevity penalty
    assert short == sacrebleu.metrics.BLEU(effective_order=True).corpus_score(short_gens, [short_refs]).score


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


def test_events_and_save_keep_the_result_in_the_checkpoint(byte_ckpt, tmp_path):
    """--events: start, progress up to the total, done with the figures and the saved path; --save: the
    result (generations included) in CHECKPOINT/eval, listed by core.layout, equal to what --json prints."""
    from core import layout

    folder, ckpt, _ = byte_ckpt
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"prompt": f"line {i}", "reference": f": the {i}"}) + "\n"
                             for i in range(3)), encoding="utf-8")
    before = layout.list_evaluations(ckpt)
    r = check(engine("eval", "--checkpoint", ckpt, "--pairs", str(pairs), "--max-new-tokens", "4",
                     "--events", "--save", cwd=folder))
    events = events_of(r.stdout)
    assert [e["event"] for e in events][0] == "start" and events[-1]["event"] == "done"
    progress = [e for e in events if e["event"] == "progress"]
    assert progress and progress[-1]["done"] == progress[-1]["total"] == 3 and progress[-1]["stage"] == "pairs"
    assert "eval #" not in r.stderr  # no bar on stderr when events speak
    done = events[-1]
    saved = done["path"]
    assert layout.list_evaluations(ckpt) == sorted(before + [saved]) and saved.startswith(
        os.path.join(ckpt, layout.EVALS))
    stored = json.loads(open(saved, encoding="utf-8").read())
    assert stored["kind"] == "pairs" and stored["n"] == 3 and len(stored["generations"]) == 3
    assert [g["reference"] for g in stored["generations"]] == [f": the {i}" for i in range(3)]
    assert "generations" not in done["result"] and done["result"]["bleu"] == stored["bleu"]
    plain = json.loads(check(engine("eval", "--checkpoint", ckpt, "--pairs", str(pairs), "--max-new-tokens",
                                    "4", "--json", cwd=folder)).stdout)
    assert plain["generations"] == stored["generations"] and plain["exact_match"] == stored["exact_match"]
    # the checkpoint with its eval/ folder is still exactly one checkpoint to every rule that reads it
    from core.checkpoint import verify

    assert layout.checkpoint_problem(ckpt) is None and verify(ckpt)["step"] == 1
    assert [p for _s, p in layout.list_checkpoints(os.path.join(folder, "runs", "r"))] == [ckpt]


def test_sampling_is_seeded_and_temperature_checked(byte_ckpt, tmp_path):
    folder, ckpt, _ = byte_ckpt
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"prompt": "line 3", "reference": "x"}) + "\n", encoding="utf-8")

    def gens(*extra):
        r = check(engine("eval", "--checkpoint", ckpt, "--pairs", str(pairs), "--max-new-tokens", "12",
                         "--json", *extra, cwd=folder))
        return json.loads(r.stdout)["generations"][0]["generation"]

    greedy = gens()
    assert gens("--temperature", "0") == greedy
    hot = [gens("--temperature", "5", "--seed", str(s)) for s in (1, 1, 2)]
    assert hot[0] == hot[1] and hot[0] != hot[2]  # at t=5 an untrained byte model spreads its choices wide
    r = engine("eval", "--checkpoint", ckpt, "--pairs", str(pairs), "--temperature", "-1", "--events")
    assert r.returncode == 2 and "--temperature" in events_of_last(r.stdout)["message"]


def events_of_last(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def test_evaluations_survive_pruning_rules_and_a_replaced_checkpoint(tmp_path):
    """The eval/ subfolder is no checkpoint and no leftover: pruning keeps or removes it with its checkpoint,
    and a checkpoint re-written at the same step keeps its evaluations."""
    from core import layout
    from core.checkpoint import prune_checkpoints, save_checkpoint

    run = tmp_path / "run"
    model = torch.nn.Linear(2, 2)
    paths = [save_checkpoint(str(run), s, model, {"x": torch.zeros(1)}, {}) for s in (1, 2, 3)]
    for p in paths:
        layout.atomic_write_json(layout.evaluation_path(p, "text", "corpus.txt"), {"kind": "text", "perplexity": 2.0})
    assert [p for _s, p in layout.list_checkpoints(str(run))] == paths
    assert all(layout.checkpoint_problem(p) is None for p in paths)
    prune_checkpoints(str(run), keep=2)
    assert [p for _s, p in layout.list_checkpoints(str(run))] == paths[1:] and not os.path.exists(paths[0])
    kept = layout.list_evaluations(paths[2])
    assert len(kept) == 1
    assert save_checkpoint(str(run), 3, model, {"x": torch.ones(1)}, {}) == paths[2]
    assert layout.list_evaluations(paths[2]) == kept and layout.checkpoint_problem(paths[2]) is None
    assert sorted(os.listdir(run / "checkpoints")) == ["step-000002", "step-000003"]
    from core.commands.eval import _save
    from core.errors import CheckpointError

    with pytest.raises(CheckpointError, match="gone"):  # pruned while evaluated: no eval/ folder recreated
        _save(paths[0], "text", "corpus.txt", {"created": 0.0})
    assert not os.path.exists(paths[0])


def test_evaluation_names_sort_by_time():
    from core import layout

    a = layout.evaluation_path("/c", "text", "/data/my corpus.txt", 0.0)
    assert os.path.basename(a) == "19700101-000000-text-my_corpus.json"
    with pytest.raises(ValueError):
        layout.evaluation_path("/c", "other", "x.txt")


def test_the_validation_split_scores_as_its_text_does(byte_ckpt, tmp_path):
    """`eval --data DIR` scores the split the run held out, whole, with the windows a text file gets: the
    same loss, tokens and bytes as the split's own text written to a file; a data set of another vocabulary
    or of instruction data is refused by name (exit code 2), nothing evaluated."""
    import numpy as np

    from core.data import open_split
    from core.evaluate import evaluate_split, evaluate_text

    folder, ckpt, _ = byte_ckpt
    data = os.path.join(str(folder), "data")
    model, meta = load_model(ckpt)
    val = bytes(np.asarray(open_split(data, "val")).astype(np.uint8))  # byte tokenizer: id == byte
    (tmp_path / "val.txt").write_bytes(val)
    split = evaluate_split(model, meta, ckpt, data, "cpu", progress=False)
    text = evaluate_text(model, meta, ckpt, str(tmp_path / "val.txt"), "cpu", progress=False)
    assert split["tokens"] == text["tokens"] == len(val) - 1 and split["bytes"] == text["bytes"] == len(val)
    assert split["loss"] == pytest.approx(text["loss"], rel=1e-6) and split["split"] == "val"
    r = check(engine("eval", "--checkpoint", ckpt, "--data", "data", "--json", "--save", cwd=folder))
    saved = json.load(open(json.loads(r.stdout)["saved"]))
    assert saved["kind"] == "text" and saved["split"] == "val" and saved["file"] == data
    assert saved["loss"] == pytest.approx(split["loss"], rel=1e-6)
    check(engine("prepare", "--input", "corpus.txt", "--out", "chars", "--tokenizer", "char", cwd=folder))
    r = engine("eval", "--checkpoint", ckpt, "--data", "chars", cwd=folder)
    assert r.returncode == 2 and "chars was tokenized with another vocabulary" in r.stderr, r.stderr
