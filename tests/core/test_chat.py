"""Chat on imported models: the meta's chat template renders like transformers' apply_chat_template,
`llm-train generate --chat` wraps the prompt as one user message and stops at the model's EOS, and the
serve worker's `generate` accepts `chat`/`messages` the same way. Tiny models built offline."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from interop_models import tiny_hf_model
from test_serve import Serve

from core.chat import render_chat, stop_ids
from core.cli import main
from core.errors import UsageError
from core.generate import SampleParams, generate_steps, load_model, load_tokenizer_for
from core.layout import atomic_write_json

# Hand-made, Llama-2 style: BOS from the meta, a system block, and a refusal through raise_exception.
TEMPLATE = ("{{ bos_token }}{% if messages[0]['role'] == 'system' %}<<SYS>>{{ messages[0]['content'] }}"
            "<</SYS>>\n{% set rest = messages[1:] %}{% else %}{% set rest = messages %}{% endif %}"
            "{% for m in rest %}{% if (m['role'] == 'user') != (loop.index0 % 2 == 0) %}"
            "{{ raise_exception('roles must alternate user/assistant') }}{% endif %}"
            "{% if m['role'] == 'user' %}[INST] {{ m['content'] | trim }} [/INST]"
            "{% else %} {{ m['content'] }}{{ eos_token }}{% endif %}\n{% endfor %}"
            "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("chat")
    hf = tiny_hf_model("llama", str(folder / "hf"))
    assert main(["import", str(folder / "hf"), "--out", str(folder / "imp")]) == 0
    ckpt = str(folder / "imp" / "checkpoints" / "step-000000")
    model, meta = load_model(ckpt)
    return hf, ckpt, model, meta, load_tokenizer_for(ckpt, meta)


def _with_meta(ckpt: str, **fields) -> None:
    path = os.path.join(ckpt, "meta.json")
    with open(path, encoding="utf-8") as fh:
        meta = json.load(fh)
    atomic_write_json(path, {**meta, **fields})


def test_render_matches_transformers_apply_chat_template(imported):
    from transformers import AutoTokenizer

    hf, ckpt, _, meta, _ = imported
    tok = AutoTokenizer.from_pretrained(os.path.dirname(os.path.dirname(os.path.dirname(ckpt))) + "/hf")
    conv = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": " hi there "},
            {"role": "assistant", "content": "hello"}, {"role": "user", "content": "Grüße 🙂"}]
    for template in (meta["chat_template"], TEMPLATE):
        tok.chat_template = template
        want = tok.apply_chat_template(conv, tokenize=False, add_generation_prompt=True)
        got = render_chat({**meta, "chat_template": template}, conv)
        assert got == want and "Grüße 🙂" in got
    assert render_chat({**meta, "chat_template": TEMPLATE}, conv).startswith("<|im_start|><<SYS>>Be brief.")
    with pytest.raises(UsageError, match="alternate"):
        render_chat({**meta, "chat_template": TEMPLATE}, [{"role": "assistant", "content": "x"}])
    with pytest.raises(UsageError, match="no chat template"):
        render_chat({"config": {}}, conv)
    with pytest.raises(UsageError, match=r"messages\[0\]"):
        render_chat(meta, [{"role": "user"}])


def test_stop_ids_from_meta():
    assert stop_ids({"eos_token_id": 7}) == {7}
    assert stop_ids({"eos_token_id": [3, 9]}) == {3, 9}
    assert stop_ids({"config": {}}) == set() and stop_ids({"eos_token_id": None}) == set()


def test_cli_chat_wraps_the_prompt_and_stops_at_eos(imported, tmp_path, capsys):
    _, ckpt, model, meta, tok = imported
    prompt_ids = tok.encode(render_chat(meta, [{"role": "user", "content": "hello"}]))
    greedy = [s.token_id for s in generate_steps(model, prompt_ids, SampleParams(max_new_tokens=12,
                                                                                 temperature=0))]
    # Make the 6th greedy token the model's EOS: generation must stop right before it.
    eos = greedy[5]
    cut = greedy[:greedy.index(eos)]
    _with_meta(ckpt, eos_token_id=[eos])
    try:
        args = ["generate", "--checkpoint", ckpt, "--prompt", "hello", "--temperature", "0",
                "--max-new-tokens", "12", "--device", "cpu"]
        assert main([*args, "--chat"]) == 0
        out = capsys.readouterr().out
        assert out == "<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n" + tok.decode(cut) + "\n"
        # Without --chat the prompt is the raw text, and greedy (temperature 0) is deterministic.
        assert main(args) == 0
        plain = [s.token_id for s in generate_steps(model, tok.encode("hello"),
                                                    SampleParams(max_new_tokens=12, temperature=0))]
        kept = plain[:plain.index(eos)] if eos in plain else plain
        assert capsys.readouterr().out == "hello" + tok.decode(kept) + "\n"
    finally:
        _with_meta(ckpt, eos_token_id=meta["eos_token_id"])


def test_worker_generate_accepts_chat_and_messages(imported, tmp_path):
    _, ckpt, model, meta, tok = imported
    conv = [{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"}]
    prompt_ids = tok.encode(render_chat(meta, conv))
    greedy = [s.token_id for s in generate_steps(model, prompt_ids, SampleParams(max_new_tokens=10,
                                                                                 temperature=0))]
    eos = greedy[4]
    _with_meta(ckpt, eos_token_id=eos)
    w = Serve("--checkpoint", ckpt, "--scratch", str(tmp_path), "--device", "cpu")
    try:
        assert w.next()["event"] == "ready"
        w.send("generate", "c1", messages=conv, max_new_tokens=10, temperature=0, top_n=3)
        result = w.reply("c1")[-1]
        assert result["event"] == "result" and result["prompt_ids"] == prompt_ids
        assert result["token_ids"] == greedy[:greedy.index(eos)] and result["stopped_by"] == "eos"
        w.send("generate", "c2", prompt="hi", chat=True, max_new_tokens=3, temperature=0)
        result = w.reply("c2")[-1]
        assert result["prompt_ids"] == tok.encode("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")
        w.send("generate", "c3", messages=[{"role": 1}], max_new_tokens=3)
        error = w.reply("c3")[-1]
        assert error["event"] == "error" and "messages[0]" in error["message"]
        # GQA (4 query heads sharing 2 key/value heads): the worker's attention shows every query head.
        w.send("attention", "a1", text="hello world")
        att = w.reply("a1")[-1]
        n = len(tok.encode("hello world"))
        assert att["event"] == "result" and att["shape"] == [2, 4, n, n] and model.cfg.n_kv_head == 2
        probs = np.load(att["path"])
        np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
        assert not np.allclose(probs[:, 0], probs[:, 1])  # heads sharing a k/v head still differ (own q)
    finally:
        w.close()
        _with_meta(ckpt, eos_token_id=meta["eos_token_id"])


def test_the_templates_end_of_turn_ends_chat_replies_and_fine_tuned_answers(imported, tmp_path):
    """A base model whose EOS is <|endoftext|> while its template closes each turn with <|im_end|> (Qwen2.5's
    and SmolLM2's base models): chat stops at <|im_end|> too, and instruction data prepared on it records
    both as EOS ids, so a fine-tune's answers (its samples, evaluations, chat and exports) end there."""
    from core.chat import chat_stop_ids, turn_end_id
    from core.sft import ChatFormat

    _, ckpt, _, meta, tok = imported
    end, eos = tok.tokenizer.token_to_id("<|im_end|>"), tok.tokenizer.token_to_id("<|endoftext|>")
    assert stop_ids(meta) == {eos} and turn_end_id(meta, tok) == end
    assert chat_stop_ids(meta, tok) == {eos, end}
    assert ChatFormat(meta, tok).eos_id == [eos, end] and ChatFormat(meta, tok).stop_ids == {eos, end}
    # a template closing turns with the EOS itself adds nothing; one with no special token there, none
    assert turn_end_id({**meta, "chat_template": TEMPLATE}, tok) == eos
    plain = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    assert turn_end_id({**meta, "chat_template": plain}, tok) is None and turn_end_id({}, tok) is None
    rows = [{"prompt": f"q{i}", "completion": f"a{i}"} for i in range(20)]
    (tmp_path / "sft.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["prepare", "--input", str(tmp_path / "sft.jsonl"), "--format", "sft", "--tokenizer-from", ckpt,
                 "--out", str(tmp_path / "data")]) == 0
    data_meta = json.loads((tmp_path / "data" / "meta.json").read_text())
    assert data_meta["eos_id"] == [eos, end] and data_meta["chat_template"] == meta["chat_template"]
