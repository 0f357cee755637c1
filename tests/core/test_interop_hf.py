"""Hugging Face folders in and out: tiny random GPT-2 / Llama (GQA, untied) / Qwen2 (q/k/v bias, tied) /
Mistral / Qwen3 (QK-norm, heads wider than n_embd/n_head) models made with transformers give the same logits and greedy tokens after import, and our
checkpoints exported to HF load in transformers with the same logits and tokenizer ids."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
import transformers
from engine_helpers import write_config
from interop_models import SAMPLE, byte_bpe, tiny_hf_model
from tokenizers import Tokenizer

from core.checkpoint import save_checkpoint
from core.cli import main
from core.config import Config, ModelConfig
from core.generate import SampleParams, generate_steps, load_model, load_tokenizer_for
from core.layout import latest_checkpoint
from core.model import GPT

KINDS = ["gpt2", "llama", "qwen2", "mistral", "qwen3"]


@pytest.fixture(scope="module", params=KINDS)
def imported(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"hf-{request.param}")
    hf = tiny_hf_model(request.param, str(folder / "hf"))
    assert main(["import", str(folder / "hf"), "--out", str(folder / "imp")]) == 0
    ckpt = str(folder / "imp" / "checkpoints" / "step-000000")
    model, meta = load_model(ckpt)
    return request.param, hf, ckpt, model, meta, load_tokenizer_for(ckpt, meta), folder


def test_imported_logits_and_greedy_tokens_equal_transformers(imported):
    kind, hf, _, model, _, tok, _ = imported
    ids = tok.encode(SAMPLE)[:60]
    x = torch.tensor([ids, ids[::-1]])
    with torch.no_grad():
        want = hf(x).logits
        got, _, _ = model(x)
    assert want.abs().max() > 1.0  # far from uniform: a wrong layout would show
    torch.testing.assert_close(got, want, atol=1e-4, rtol=0)
    prompt = ids[:8]
    ours = [s.token_id for s in generate_steps(model, prompt, SampleParams(max_new_tokens=20, temperature=0))]
    theirs = hf.generate(torch.tensor([prompt]), do_sample=False, max_new_tokens=20, min_new_tokens=20,
                         pad_token_id=0)[0, len(prompt):].tolist()
    assert len(ours) == 20 and ours == theirs


def test_imported_config_and_meta_carry_what_the_model_needs(imported):
    kind, hf, _, model, meta, tok, _ = imported
    cfg = model.cfg
    assert meta["step"] == 0 and meta["config"]["model"]["vocab_size"] == hf.config.vocab_size
    assert meta["chat_template"].startswith("{% for m in messages %}")
    assert meta["bos_token"] == "<|im_start|>" and meta["eos_token"] == "<|endoftext|>"
    assert meta["eos_token_id"] == tok.tokenizer.token_to_id("<|endoftext|>")
    assert meta["context_length"] == 64 and meta["imported_from"]["model_type"] == kind
    expected = {"gpt2": (None, False, True), "llama": (2, False, False), "qwen2": (2, True, True),
                "mistral": (1, False, False), "qwen3": (2, False, True)}[kind]
    assert (cfg.n_kv_head, cfg.qkv_bias, cfg.tie_embeddings) == expected
    # Qwen3: heads of 128 over a width of 32, QK-norm with learned weights (the source's, not ones)
    assert (cfg.head_dim, cfg.qk_norm, cfg.qk_norm_weight) == ((128, True, True) if kind == "qwen3" else
                                                               (None, False, False))
    if kind == "qwen3":
        torch.testing.assert_close(model.blocks[1].attn.k_norm.weight, hf.model.layers[1].self_attn.k_norm.weight)
    if kind == "llama":
        assert cfg.rope_theta == 5000.0 and cfg.norm_eps == 1e-6


def test_imported_checkpoint_serves_attention_for_every_query_head(imported, tmp_path):
    kind, _, ckpt, model, _, tok, _ = imported
    out = str(tmp_path / "att.npz")
    assert main(["attention", "--checkpoint", ckpt, "--text", "hello world", "--out", out]) == 0
    probs = np.load(out)["probs"]
    T = len(tok.encode("hello world"))
    assert probs.shape == (2, model.cfg.n_head, T, T)
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    assert not os.path.exists(os.path.join(ckpt, "state.pt"))  # none needed


def test_export_hf_loads_in_transformers_with_equal_logits_and_tokenizer_ids(imported):
    kind, _, ckpt, model, _, tok, folder = imported
    out = str(folder / "export-hf")
    assert main(["export", "--checkpoint", ckpt, "--format", "hf", "--out", out]) == 0
    modes = {os.stat(os.path.join(out, n)).st_mode & 0o777 for n in ("model.safetensors", "config.json")}
    assert len(modes) == 1  # the weights as readable as the config (safetensors alone writes 0600)
    hf = transformers.AutoModelForCausalLM.from_pretrained(out).eval()
    hf_tok = transformers.AutoTokenizer.from_pretrained(out)
    assert type(hf).__name__ == {"gpt2": "GPT2LMHeadModel", "qwen2": "Qwen2ForCausalLM",
                                 "qwen3": "Qwen3ForCausalLM"}.get(kind, "LlamaForCausalLM")
    ids = tok.encode(SAMPLE)[:60]
    with torch.no_grad():
        torch.testing.assert_close(hf(torch.tensor([ids])).logits, model(torch.tensor([ids]))[0], atol=1e-4,
                                   rtol=0)
    assert hf_tok.encode(SAMPLE, add_special_tokens=False) == tok.encode(SAMPLE)
    assert "<|im_start|>" in SAMPLE and tok.encode("<|im_start|>") == [hf_tok.convert_tokens_to_ids("<|im_start|>")]
    chat = hf_tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                      add_generation_prompt=True)
    assert chat == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    gen = transformers.GenerationConfig.from_pretrained(out)
    assert gen.eos_token_id == tok.tokenizer.token_to_id("<|endoftext|>")


def test_sharded_safetensors_and_pickle_free_bin_import_the_same(tmp_path):
    hf = tiny_hf_model("llama", str(tmp_path / "hf"))
    hf.save_pretrained(str(tmp_path / "sharded"), max_shard_size="20KB")
    assert os.path.isfile(str(tmp_path / "sharded" / "model.safetensors.index.json"))
    for name in ("tokenizer.json", "tokenizer_config.json"):
        os.link(str(tmp_path / "hf" / name), str(tmp_path / "sharded" / name))
    binary = tmp_path / "bin"
    binary.mkdir()
    for name in ("config.json", "tokenizer.json"):
        os.link(str(tmp_path / "hf" / name), str(binary / name))
    torch.save(hf.state_dict(), str(binary / "pytorch_model.bin"))
    x = torch.randint(0, hf.config.vocab_size, (1, 30))
    for src in ("sharded", "bin"):
        assert main(["import", str(tmp_path / src), "--out", str(tmp_path / f"imp-{src}")]) == 0
        model, _ = load_model(latest_checkpoint(str(tmp_path / f"imp-{src}")))
        with torch.no_grad():
            torch.testing.assert_close(model(x)[0], hf(x).logits, atol=1e-4, rtol=0)


def _own_checkpoint(tmp_path, tok_path: str = "", vocab: int = 300, **model) -> str:
    """A checkpoint of our own (never imported): random weights, a byte-level BPE of our own (or `tok_path`)."""
    if not tok_path:
        tok_path = str(tmp_path / "tokenizer.json")
        byte_bpe(vocab).save(tok_path)
    cfg = ModelConfig(n_layer=2, n_head=2, n_embd=32, block_size=32, vocab_size=vocab, **model)
    torch.manual_seed(0)
    gpt = GPT(cfg)
    with torch.no_grad():
        for p in gpt.parameters():
            p.add_(0.2 * torch.randn_like(p))
    return save_checkpoint(str(tmp_path / "run"), 5, gpt, {}, {"config": Config(model=cfg).to_dict()}, tok_path)


LLAMA_SHAPE = {"pos_encoding": "rope", "norm": "rmsnorm", "activation": "swiglu"}


@pytest.mark.parametrize("model", [{"bias": False}, {**LLAMA_SHAPE, "bias": True},
                                   {**LLAMA_SHAPE, "qk_norm": True},  # Qwen3, the norms' weights ones
                                   {**LLAMA_SHAPE, "qk_norm": True, "qk_norm_weight": True, "head_dim": 24,
                                    "n_kv_head": 1}])
def test_our_own_models_export_to_hf_exactly(tmp_path, model):
    ckpt = _own_checkpoint(tmp_path, **model)
    assert main(["export", "--checkpoint", ckpt, "--format", "hf", "--out", str(tmp_path / "hf")]) == 0
    hf = transformers.AutoModelForCausalLM.from_pretrained(str(tmp_path / "hf")).eval()
    ours, _ = load_model(ckpt)
    x = torch.randint(0, 300, (2, 32))
    with torch.no_grad():
        torch.testing.assert_close(hf(x).logits, ours(x)[0], atol=1e-4, rtol=0)
    # none of transformers' defaults (GPT-2's 50256, Llama's eos 2, where generate() would stop at whatever
    # our token 2 is): no BOS, and our BPE's end of text as EOS, where the studio's generation stops too
    eot = Tokenizer.from_file(str(tmp_path / "tokenizer.json")).token_to_id("<|endoftext|>")
    for config in (hf.config, hf.generation_config):
        assert config.bos_token_id is None and config.eos_token_id == eot, config
    out = hf.generate(x[:1, :4], max_new_tokens=20, do_sample=False, pad_token_id=0)
    assert out.shape[1] == 24 or (out.shape[1] < 24 and out[0, -1] == eot)


def test_a_character_level_model_of_ours_comes_back_from_its_hf_export(char_data, tmp_path):
    """Export, then import the folder (File → Import Model on an export): the character tokenizer comes back
    as one (it was refused as 'a BPE tokenizer'), with the same ids and logits."""
    from core.tokenizer import load_tokenizer

    tok = load_tokenizer(char_data)
    ckpt = _own_checkpoint(tmp_path, os.path.join(char_data, "tokenizer.json"), tok.vocab_size)
    assert main(["export", "--checkpoint", ckpt, "--format", "hf", "--out", str(tmp_path / "hf")]) == 0
    assert main(["import", str(tmp_path / "hf"), "--out", str(tmp_path / "back")]) == 0
    back = latest_checkpoint(str(tmp_path / "back"))
    again = load_tokenizer(back)
    text = "copy: abc|abc\nadd: 12+30=42\n"
    assert again.kind == "char" and again.encode(text) == tok.encode(text) and again.decode(tok.encode(text)) == text
    ours, _ = load_model(ckpt)
    model, _ = load_model(back)
    x = torch.randint(0, tok.vocab_size, (2, 32))
    with torch.no_grad():
        torch.testing.assert_close(model(x)[0], ours(x)[0], atol=1e-5, rtol=0)


def test_fork_from_an_imported_model_trains_without_a_state_file(char_data, tmp_path):
    tiny_hf_model("llama", str(tmp_path / "hf"))
    assert main(["import", str(tmp_path / "hf"), "--out", str(tmp_path / "imp")]) == 0
    ckpt = latest_checkpoint(str(tmp_path / "imp"))
    model, _ = load_model(ckpt)
    fields = {k: v for k, v in model.cfg.__dict__.items() if k != "dropout"}
    cfg = write_config(tmp_path, char_data, model=fields, train={"max_steps": 3, "init_from": ckpt})
    assert main(["train", "--config", cfg]) == 0
    child, _ = load_model(latest_checkpoint(str(tmp_path / "runs" / "r")))
    assert not torch.equal(child.blocks[0].attn.c_attn.weight, model.blocks[0].attn.c_attn.weight)
