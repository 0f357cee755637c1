"""`llm-train prepare --format sft`: masks, truncation, chat templates, bad lines named by file:line."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from engine_helpers import engine
from finetune_helpers import check, finetune_config, reverse_task


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sft")
    return folder, reverse_task(folder)


def test_mask_marks_only_the_completion(task):
    from core.sft import open_sft_split
    from core.tokenizer import load_tokenizer

    _, paths = task
    meta = json.load(open(os.path.join(paths["sft"], "meta.json")))
    assert meta["kind"] == "sft" and meta["train_examples"] + meta["val_examples"] == 180
    assert meta["truncated"] == 0 and meta["template"] == "builtin"
    tok = load_tokenizer(paths["sft"])
    split = open_sft_split(paths["sft"], "train")
    first = json.loads(open(paths["sft.jsonl"]).readline())
    texts = [(tok.decode(ids[mask == 1].tolist()), tok.decode(ids[mask == 0].tolist()))
             for ids, mask in (split.example(i) for i in range(len(split)))]
    assert (first["completion"] + "\n", f"<|user|>\n{first['prompt']}\n<|assistant|>\n") in texts


def test_truncation_is_counted(task):
    folder, paths = task
    check(engine("prepare", "--input", paths["sft.jsonl"], "--format", "sft", "--tokenizer-from", paths["base"],
                 "--block-size", "36", "--out", "short", cwd=folder))
    meta = json.load(open(os.path.join(str(folder), "short", "meta.json")))
    # 36 prompt chars + 4 completion chars: 37 tokens kept, so every completion is cut after 1 char
    assert meta["truncated"] == 180 and meta["dropped"] == 0 and meta["trained_tokens"] == 180


def test_chat_template_is_rendered_with_jinja(tmp_path):
    from core.sft import ChatFormat, encode_example

    template = ("{% for m in messages %}[{{ m.role }}]{{ m.content }}{% if m.role == 'assistant' %}"
                "{{ eos_token }}{% endif %}{% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}")
    fmt = ChatFormat({"chat_template": template, "eos_token": "#"})

    class Chars:
        def encode(self, text):
            return [ord(c) for c in text]

    msgs = [{"role": "system", "content": "s"}, {"role": "user", "content": "q"},
            {"role": "assistant", "content": "a1"}, {"role": "user", "content": "r"},
            {"role": "assistant", "content": "a2"}]
    ids, mask = encode_example(Chars(), fmt, msgs)
    assert "".join(map(chr, ids)) == "[system]s[user]q[assistant]a1#[user]r[assistant]a2#"
    assert "".join(chr(i) for i, m in zip(ids, mask, strict=True) if m) == "a1#a2#"


BAD = [("not json", "not JSON"), ('{"prompt": "x"}', "missing field 'completion'"),
       ('{"prompt": "x", "completion": ""}', "empty completion"),
       ('{"messages": [{"role": "robot", "content": "x"}]}', "unknown role 'robot'")]


@pytest.mark.parametrize(("line", "why"), BAD)
def test_bad_line_is_named_by_file_and_line(task, tmp_path, line, why):
    folder, paths = task
    data = tmp_path / "bad.jsonl"
    data.write_text('{"prompt": "a", "completion": "b"}\n\n' + line + "\n", encoding="utf-8")
    r = engine("prepare", "--input", str(data), "--format", "sft", "--tokenizer-from", paths["base"],
               "--out", str(tmp_path / "out"))
    assert r.returncode == 2
    assert f"{data}:3:" in r.stderr and why in r.stderr
    assert not os.path.exists(tmp_path / "out")
    assert [p for p in os.listdir(tmp_path) if p != "bad.jsonl"] == []


def test_text_that_is_not_utf8_is_named_by_file_and_line(task, tmp_path):
    folder, paths = task
    data = tmp_path / "latin1.jsonl"
    data.write_bytes(b'{"prompt": "a", "completion": "b"}\n\n{"prompt": "caf\xe9", "completion": "b"}\n')
    r = engine("prepare", "--input", str(data), "--format", "sft", "--tokenizer-from", paths["base"],
               "--out", str(tmp_path / "out"))
    assert r.returncode == 2
    assert f"{data}:3: not UTF-8" in r.stderr and "Traceback" not in r.stderr
    assert not os.path.exists(tmp_path / "out")


def test_tokenizer_from_for_plain_text(task):
    folder, paths = task
    check(engine("prepare", "--input", paths["corpus.txt"], "--tokenizer-from", paths["base"], "--out", "again",
                 cwd=folder))
    base_tok = open(os.path.join(paths["base"], "tokenizer.json")).read()
    assert open(os.path.join(str(folder), "again", "tokenizer.json")).read() == base_tok
    from core.data import open_split

    a, b = open_split(os.path.join(str(folder), "text"), "train"), open_split(os.path.join(str(folder), "again"),
                                                                              "train")
    assert np.array_equal(a, b)


def test_a_preparation_records_what_it_was_made_from(task, tmp_path):
    """meta.json's recipe (core.recipe) is what the studio computes from the file and the base before
    offering a data set prepared already: equal for the same bytes, base and cut, different otherwise."""
    from core.recipe import recipe

    _, paths = task
    meta = json.load(open(os.path.join(paths["sft"], "meta.json")))
    same = tmp_path / "copy.jsonl"  # the same bytes elsewhere: the same data set
    same.write_bytes(open(paths["sft.jsonl"], "rb").read())
    assert meta["recipe"] == recipe([paths["sft.jsonl"]], "sft", paths["base"]) == recipe([str(same)], "sft",
                                                                                          paths["base"])
    edited = tmp_path / "edited.jsonl"
    edited.write_bytes(same.read_bytes().replace(b"reverse: ", b"reverse:  ", 1))
    others = {recipe([str(edited)], "sft", paths["base"]), recipe([str(same)], "text", paths["base"]),
              recipe([str(same)], "sft", paths["base"], block_size=36),
              recipe([str(same)], "sft", paths["base"], val_fraction=0.2)}
    assert len(others) == 4 and meta["recipe"] not in others
    assert recipe([str(tmp_path)], "text", paths["base"]) is None  # a folder: its files can change unseen
    check(engine("prepare", "--input", str(same), "--tokenizer-from", paths["base"], "--out", "t", cwd=tmp_path))
    assert json.load(open(tmp_path / "t" / "meta.json"))["recipe"] == recipe([str(same)], "text", paths["base"])
    check(engine("prepare", "--input", str(same), "--tokenizer", "char", "--out", "own", cwd=tmp_path))
    assert json.load(open(tmp_path / "own" / "meta.json"))["recipe"] is None  # its own tokenizer: none


def test_instruction_data_is_not_scored_as_a_validation_split(task):
    """Its prompts are masked out of the loss: `eval --data` names the folder and points at --pairs."""
    folder, paths = task
    r = engine("eval", "--checkpoint", paths["base"], "--data", paths["sft"], cwd=folder)
    assert r.returncode == 2 and "is instruction data" in r.stderr and "--pairs" in r.stderr, r.stderr


def test_chat_templates_that_refuse_or_do_not_parse_are_data_errors_not_tracebacks():
    """SFT data and the pairs evaluation render through core.chat: a template's raise_exception (Mistral,
    Llama 2 and Gemma templates refuse a misplaced system message) and a template that does not parse
    become messages (exit 2 from the commands), not jinja tracebacks."""
    from core.errors import DataError
    from core.sft import ChatFormat

    refusing = ("{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
                "{% endif %}{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}")
    fmt = ChatFormat({"chat_template": refusing})
    assert fmt.render([{"role": "user", "content": "hi"}], True) == "[user]hi"
    with pytest.raises(DataError, match="System role not supported"):
        fmt.render([{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}], True)
    with pytest.raises(DataError, match="does not parse"):
        ChatFormat({"chat_template": "{% for m in messages %}"}).render([{"role": "user", "content": "x"}], True)


def test_a_list_of_eos_ids_ends_answers_at_any_of_them():
    """Llama 3 style generation configs record several end ids: each one ends an evaluated answer."""
    import torch

    from core.evaluate import greedy
    from core.sft import ChatFormat

    assert ChatFormat({"eos_token_id": [5, 7]}).stop_ids == {5, 7}
    assert ChatFormat({"eos_token_id": 3}).stop_ids == {3} and ChatFormat({}).stop_ids == set()

    from core.config import ModelConfig
    from core.model import GPT

    # a real model rigged so that its next token is always 7: the final norm outputs its bias (ones), and
    # only the head's row 7 reads it
    model = GPT(ModelConfig(n_layer=1, n_head=2, n_embd=8, block_size=8, vocab_size=10, bias=True,
                            tie_embeddings=False)).eval()
    with torch.no_grad():
        model.ln_f.weight.zero_()
        model.ln_f.bias.fill_(1.0)
        model.lm_head.weight.zero_()
        model.lm_head.weight[7] = 1.0
    assert greedy(model, [1, 2], 3, {5, 7}, "cpu") == []
    assert greedy(model, [1, 2], 3, {5}, "cpu") == [7, 7, 7]
    assert greedy(model, [1, 2], 12, {5}, "cpu") == [7] * 12  # past block_size: the cache shifts the context


def test_preview_marks_the_tokens_prepare_trains_and_writes_nothing(task, tmp_path):
    """`prepare --preview N`: the ids and trained marks of the first N lines are exactly what prepare
    stores for those examples (ids, mask); the pieces decode back to the ids' text; no file appears."""
    from core.sft import open_sft_split
    from core.tokenizer import load_tokenizer

    folder, paths = task
    before = sorted(os.listdir(folder))
    r = check(engine("prepare", "--input", paths["sft.jsonl"], "--format", "sft", "--tokenizer-from",
                     paths["base"], "--preview", "3", cwd=folder))
    assert sorted(os.listdir(folder)) == before
    shown = json.loads(r.stdout)
    assert shown["template"] == "builtin" and len(shown["examples"]) == 3
    stored = {}
    for split in ("train", "val"):
        data = open_sft_split(paths["sft"], split)
        for i in range(len(data)):
            ids, mask = data.example(i)
            stored[tuple(ids.tolist())] = mask.tolist()
    tok = load_tokenizer(paths["base"])
    for n, ex in enumerate(shown["examples"], start=1):
        assert ex["where"] == f"{paths['sft.jsonl']}:{n}"
        assert stored[tuple(ex["ids"])] == ex["trained"]
        assert "".join(ex["pieces"]) == tok.decode(ex["ids"])
        line = json.loads(open(paths["sft.jsonl"]).readlines()[n - 1])
        trained = "".join(p for p, t in zip(ex["pieces"], ex["trained"], strict=True) if t)
        assert trained == line["completion"] + "\n"


def test_preview_names_a_bad_line_and_text_preview_trains_every_token(task, tmp_path):
    folder, paths = task
    data = tmp_path / "bad.jsonl"
    data.write_text('{"prompt": "a", "completion": "b"}\n{"prompt": "x"}\n', encoding="utf-8")
    r = engine("prepare", "--input", str(data), "--format", "sft", "--tokenizer-from", paths["base"],
               "--preview", "5")
    assert r.returncode == 2 and f"{data}:2: missing field 'completion'" in r.stderr
    r = check(engine("prepare", "--input", paths["corpus.txt"], "--format", "text", "--tokenizer-from",
                     paths["base"], "--preview", "1", "--events"))
    done = json.loads(r.stdout.strip().splitlines()[-1])
    assert done["event"] == "done" and done["kind"] == "preview"
    ex = done["examples"][0]
    assert set(ex["trained"]) == {1} and "".join(ex["pieces"]).startswith("<|user|>\nreverse: ")
    r = engine("prepare", "--input", paths["corpus.txt"])
    assert r.returncode == 2 and "--out" in r.stderr


def test_sft_folder_preview_json_colours_trained_tokens(task):
    folder, paths = task
    shown = json.load(open(os.path.join(paths["sft"], "preview.json")))
    assert len(shown["ids"]) == len(shown["pieces"]) == len(shown["trained"]) > 0
    assert 0 < sum(shown["trained"]) < len(shown["trained"])
    assert "".join(p for p, t in zip(shown["pieces"], shown["trained"], strict=True) if not t).startswith("<|user|>")


def test_the_builtin_template_as_jinja_renders_what_training_saw():
    from core.chat import render_chat
    from core.sft import BUILTIN_TEMPLATE, MARKERS, PLAIN_MARKERS, _builtin, builtin_template

    assert builtin_template(MARKERS) == BUILTIN_TEMPLATE
    convo = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "q1"},
             {"role": "assistant", "content": "a1"}, {"role": "user", "content": "q2"}]
    for markers in (MARKERS, PLAIN_MARKERS):
        for eos in ("", "</s>"):
            meta = {"chat_template": builtin_template(markers), "eos_token": eos}
            for n in range(1, len(convo) + 1):
                for gen in (True, False):
                    assert render_chat(meta, convo[:n], gen) == _builtin(convo[:n], gen, eos, markers)
    assert _builtin(convo[1:3], False, "", PLAIN_MARKERS) == "user:\nq1\nassistant:\na1\n"


def test_a_vocabulary_without_the_markers_gets_plain_ones_end_to_end(tmp_path):
    """A character model of a corpus without '<', '|', '>' would see every marker as <unk>: its instruction
    data, the fine-tuned model's recorded chat template and its chat use `user:` markers instead."""
    from core import layout
    from core.chat import render_chat
    from core.sft import PLAIN_MARKERS, builtin_template, open_sft_split
    from core.tokenizer import load_tokenizer

    paths = reverse_task(tmp_path, markers=False)
    meta = json.load(open(os.path.join(paths["sft"], "meta.json")))
    assert meta["template"] == "builtin" and meta["builtin_template"] == builtin_template(PLAIN_MARKERS)
    tok = load_tokenizer(paths["sft"])
    ids, mask = open_sft_split(paths["sft"], "train").example(0)
    assert tok.unk_id not in ids.tolist()
    assert tok.decode(ids[mask == 0].tolist()).startswith("user:\nreverse: ")
    check(engine("train", "--config", finetune_config(tmp_path, paths, "ft", max_steps=2, warmup_steps=0),
                 cwd=tmp_path))
    ckpt = layout.latest_checkpoint(os.path.join(str(tmp_path), "ft"))
    ck_meta = layout.read_checkpoint_meta(ckpt)
    assert ck_meta["chat_template"] == builtin_template(PLAIN_MARKERS)
    prompt = render_chat(ck_meta, [{"role": "user", "content": "reverse: abc"}], True)
    assert prompt == "user:\nreverse: abc\nassistant:\n" and tok.unk_id not in tok.encode(prompt)
    check(engine("generate", "--checkpoint", ckpt, "--chat", "--prompt", "reverse: abc", "--temperature", "0",
                 "--max-new-tokens", "3", cwd=tmp_path))
