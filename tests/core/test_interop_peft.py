"""LoRA adapters in and out. Out as PEFT adapter folders: a tiny GPT-2 (Conv1D, fused c_attn) / Llama (GQA, untied) /
Qwen2 (q/k/v biases) made with transformers, imported, fine-tuned with LoRA on every target, exported with
`--format peft`: peft's PeftModel on the original HF model gives our logits, and the adapter changes them.
Our own (not imported) base works through its HF export; a checkpoint without adapters is refused. Out as
llama.cpp LoRA adapters (gguf-lora), checked by applying them to the base's GGUF as llama.cpp does. In: an
adapter made by peft itself imports onto the base's import with peft's logits; DoRA and the like are refused."""

from __future__ import annotations

import json
import os

import peft
import pytest
import torch
import transformers
from engine_helpers import write_config
from interop_models import SAMPLE, lora_finetune, tiny_hf_model
from safetensors.torch import load_file

from core.cli import main
from core.generate import load_tokenizer_for
from core.layout import latest_checkpoint
from core.lora import load_model


@pytest.mark.parametrize("kind", ["gpt2", "llama", "qwen2"])
def test_a_peft_adapter_on_the_hf_model_gives_our_logits(kind, tmp_path, capsys):
    hf = tiny_hf_model(kind, str(tmp_path / "hf"))
    assert main(["import", str(tmp_path / "hf"), "--out", str(tmp_path / "imp")]) == 0
    ckpt = lora_finetune(tmp_path, latest_checkpoint(str(tmp_path / "imp")))
    out = str(tmp_path / "adapter")
    capsys.readouterr()
    assert main(["export", "--checkpoint", ckpt, "--format", "peft", "--out", out]) == 0
    assert "PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(" in capsys.readouterr().err
    config = json.load(open(os.path.join(out, "adapter_config.json"), encoding="utf-8"))
    assert config["base_model_name_or_path"] == str(tmp_path / "hf")
    assert set(config["target_modules"]) == (
        {"attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"} if kind == "gpt2" else
        {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"})
    ours, meta = load_model(ckpt)
    ids = load_tokenizer_for(ckpt, meta).encode(SAMPLE)[:50]
    x = torch.tensor([ids, ids[::-1]])
    with torch.no_grad():
        before = hf(x).logits
        adapted = peft.PeftModel.from_pretrained(hf, out).eval()
        theirs = adapted(x).logits
        mine = ours(x)[0]
    assert (theirs - before).abs().max() > 0.1  # the adapter does something, so an error in it would show
    torch.testing.assert_close(theirs, mine, atol=1e-4, rtol=0)
    # the folder stands alone for peft: its config names the base, its tokenizer is the one trained with
    auto = peft.AutoPeftModelForCausalLM.from_pretrained(out).eval()
    with torch.no_grad():
        torch.testing.assert_close(auto(x).logits, mine, atol=1e-4, rtol=0)
    tok = transformers.AutoTokenizer.from_pretrained(out)
    assert tok.encode(SAMPLE, add_special_tokens=False)[:50] == ids


def test_a_lora_on_our_own_base_goes_through_the_bases_hf_export(tmp_path, char_data, capsys):
    cfg = write_config(tmp_path, char_data, train={"max_steps": 2}, run={"dir": str(tmp_path / "base")},
                       name="base.yaml")
    assert main(["train", "--config", cfg]) == 0
    base = latest_checkpoint(str(tmp_path / "base"))
    ckpt = lora_finetune(tmp_path, base, targets=("attn_qkv", "mlp_out"))
    capsys.readouterr()
    assert main(["export", "--checkpoint", ckpt, "--format", "peft", "--out", str(tmp_path / "adapter")]) == 0
    hint = capsys.readouterr().err
    assert f"export the base model ({base}) with --format hf" in hint
    config = json.load(open(tmp_path / "adapter" / "adapter_config.json", encoding="utf-8"))
    assert config["base_model_name_or_path"] is None and config["fan_in_fan_out"] is True
    assert main(["export", "--checkpoint", base, "--format", "hf", "--out", str(tmp_path / "base-hf")]) == 0
    hf = transformers.AutoModelForCausalLM.from_pretrained(str(tmp_path / "base-hf")).eval()
    adapted = peft.PeftModel.from_pretrained(hf, str(tmp_path / "adapter")).eval()
    assert adapted.peft_config["default"].target_modules == {"attn.c_attn", "mlp.c_proj"}
    ours, _ = load_model(ckpt)
    x = torch.randint(0, ours.cfg.vocab_size, (2, 24))
    with torch.no_grad():
        torch.testing.assert_close(adapted(x).logits, ours(x)[0], atol=1e-4, rtol=0)
    # --dtype bf16: the same tensors, rounded
    assert main(["export", "--checkpoint", ckpt, "--format", "peft", "--out", str(tmp_path / "bf16"),
                 "--dtype", "bf16"]) == 0
    f32, bf16 = (load_file(str(tmp_path / n / "adapter_model.safetensors")) for n in ("adapter", "bf16"))
    assert f32.keys() == bf16.keys() and all(t.dtype == torch.bfloat16 for t in bf16.values())
    assert all(torch.equal(bf16[k], f32[k].to(torch.bfloat16)) for k in f32)


def test_a_checkpoint_without_adapters_and_a_quantised_adapter_are_refused(tmp_path, char_data, capsys):
    cfg = write_config(tmp_path, char_data, train={"max_steps": 1, "warmup_steps": 0}, run={"dir": str(tmp_path / "r")})
    assert main(["train", "--config", cfg]) == 0
    ckpt = latest_checkpoint(str(tmp_path / "r"))
    out = str(tmp_path / "adapter")
    capsys.readouterr()
    assert main(["export", "--checkpoint", ckpt, "--format", "peft", "--out", out]) == 2
    err = capsys.readouterr().err
    assert "is not a LoRA fine-tune" in err and "--format hf" in err and "Traceback" not in err
    assert main(["export", "--checkpoint", ckpt, "--format", "peft", "--out", out, "--dtype", "q8_0"]) == 2
    assert "q8_0" in capsys.readouterr().err
    assert not os.path.exists(out) and not [n for n in os.listdir(tmp_path) if n.startswith(".adapter")]


@pytest.mark.parametrize("kind", ["gpt2", "llama", "qwen2"])
def test_a_gguf_lora_adapter_on_the_bases_gguf_gives_the_merged_models_gguf(kind, tmp_path, capsys):
    """llama.cpp applies an adapter as W + alpha / r * B A to the base file's tensors: done here with the
    files themselves, every adapted tensor of the base's GGUF export becomes the merged model's (names, the
    q/k/v split, llama's rotary row order of q and k, and the scale all checked); the rest is untouched."""
    import gguf
    import numpy as np

    tiny_hf_model(kind, str(tmp_path / "hf"))
    assert main(["import", str(tmp_path / "hf"), "--out", str(tmp_path / "imp")]) == 0
    base = latest_checkpoint(str(tmp_path / "imp"))
    ckpt = lora_finetune(tmp_path, base)
    files = {n: str(tmp_path / f"{n}.gguf") for n in ("base", "merged", "adapter")}
    assert main(["export", "--checkpoint", base, "--format", "gguf", "--out", files["base"]]) == 0
    assert main(["export", "--checkpoint", ckpt, "--format", "gguf", "--out", files["merged"]]) == 0
    capsys.readouterr()
    assert main(["export", "--checkpoint", ckpt, "--format", "gguf-lora", "--out", files["adapter"]]) == 0
    assert f"--lora {files['adapter']}" in capsys.readouterr().err
    read = {n: gguf.GGUFReader(f) for n, f in files.items()}
    def value(reader, key: str):
        field = reader.fields[key]
        part = field.parts[field.data[0]]
        return bytes(part).decode() if field.types[0] == gguf.GGUFValueType.STRING else float(part[0])

    adapter = read["adapter"]
    assert (value(adapter, "general.type"), value(adapter, "adapter.type")) == ("adapter", "lora")
    assert value(adapter, "general.architecture") == value(read["base"], "general.architecture")
    alpha = value(adapter, "adapter.lora.alpha")
    tensors = {n: {t.name: np.array(t.data, dtype=np.float32) for t in r.tensors} for n, r in read.items()}
    adapted = {n[: -len(".lora_a")] for n in tensors["adapter"] if n.endswith(".lora_a")}
    assert {n[: -len(".lora_b")] for n in tensors["adapter"] if n.endswith(".lora_b")} == adapted
    for name, merged in tensors["merged"].items():
        want = tensors["base"][name]
        if name in adapted:
            a, b = tensors["adapter"][name + ".lora_a"], tensors["adapter"][name + ".lora_b"]
            assert a.shape == (4, want.shape[1]) and b.shape == (want.shape[0], 4)
            want = want + alpha / 4 * (b @ a)
            assert np.abs(merged - tensors["base"][name]).max() > 1e-3, name  # this adapter changed it
        np.testing.assert_allclose(merged, want, atol=2e-5, rtol=0, err_msg=name)
    expected = {"gpt2": {"attn_qkv", "attn_output", "ffn_up", "ffn_down"},
                "llama": {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"}}
    assert {n.split(".")[2] for n in adapted} == expected["gpt2" if kind == "gpt2" else "llama"]
    assert len(adapted) == 2 * len(expected["gpt2" if kind == "gpt2" else "llama"])  # both layers


@pytest.mark.parametrize("kind,targets,rslora", [
    ("llama", ["q_proj", "v_proj", "o_proj", "up_proj"], False),  # q and v without k, up without gate
    ("qwen2", ["q_proj", "k_proj", "v_proj", "down_proj"], True),
    ("gpt2", ["c_attn", "attn.c_proj", "mlp.c_fc"], False),
])
def test_a_peft_adapter_imports_as_a_lora_checkpoint_with_peft_s_logits(kind, targets, rslora, tmp_path, capsys):
    """An adapter made by peft itself (random A and B, some projections only, rsLoRA's scale) on the HF
    model, imported with --base onto that model's import: our logits are peft's; exported again with
    --format peft it loads in peft with the same logits."""
    hf = tiny_hf_model(kind, str(tmp_path / "hf"))
    assert main(["import", str(tmp_path / "hf"), "--out", str(tmp_path / "imp")]) == 0
    base = latest_checkpoint(str(tmp_path / "imp"))
    torch.manual_seed(1)
    config = peft.LoraConfig(r=4, lora_alpha=6, target_modules=targets, init_lora_weights=False, use_rslora=rslora,
                             fan_in_fan_out=kind == "gpt2")
    adapted = peft.get_peft_model(hf, config).eval()
    adapted.save_pretrained(str(tmp_path / "adapter"))
    x = torch.randint(0, hf.config.vocab_size, (2, 20))
    with torch.no_grad():
        theirs = adapted(x).logits
        with adapted.disable_adapter():
            plain = adapted(x).logits
    assert (theirs - plain).abs().max() > 0.1
    capsys.readouterr()
    assert main(["import", str(tmp_path / "adapter"), "--out", str(tmp_path / "ours")]) == 2
    assert "--base" in capsys.readouterr().err  # an adapter needs its base named
    assert main(["import", str(tmp_path / "adapter"), "--base", base, "--out", str(tmp_path / "ours")]) == 0
    ckpt = latest_checkpoint(str(tmp_path / "ours"))
    ours, meta = load_model(ckpt)
    assert meta["lora"]["rank"] == 4 * (2 if kind == "llama" else 3 if kind == "qwen2" else 1)
    with torch.no_grad():
        torch.testing.assert_close(ours(x)[0], theirs, atol=1e-4, rtol=0)
    assert main(["export", "--checkpoint", ckpt, "--format", "peft", "--out", str(tmp_path / "again")]) == 0
    hf2 = transformers.AutoModelForCausalLM.from_pretrained(str(tmp_path / "hf")).eval()
    with torch.no_grad():
        again = peft.PeftModel.from_pretrained(hf2, str(tmp_path / "again")).eval()(x).logits
    torch.testing.assert_close(again, theirs, atol=1e-4, rtol=0)
    if kind == "gpt2":  # --out naming a checkpoint folder: that folder, as for a model's import (was step-000000)
        named = tmp_path / "named" / "checkpoints" / "step-000050"
        assert main(["import", str(tmp_path / "adapter"), "--base", base, "--out", str(named)]) == 0
        assert latest_checkpoint(str(tmp_path / "named")) == str(named)
        with torch.no_grad():
            torch.testing.assert_close(load_model(str(named))[0](x)[0], theirs, atol=1e-4, rtol=0)


def test_adapters_it_cannot_hold_are_refused_by_name(tmp_path, capsys):
    tiny_hf_model("llama", str(tmp_path / "hf"))
    assert main(["import", str(tmp_path / "hf"), "--out", str(tmp_path / "imp")]) == 0
    base = latest_checkpoint(str(tmp_path / "imp"))
    for name, extra in (("dora", {"use_dora": True}), ("saved", {"modules_to_save": ["lm_head"]})):
        config = peft.LoraConfig(r=2, target_modules=["q_proj"], **extra)
        peft.get_peft_model(tiny_hf_model("llama", str(tmp_path / f"hf-{name}")), config).save_pretrained(
            str(tmp_path / name))
        capsys.readouterr()
        assert main(["import", str(tmp_path / name), "--base", base, "--out", str(tmp_path / f"out-{name}")]) == 2
        err = capsys.readouterr().err
        assert ("use_dora" if name == "dora" else "modules_to_save") in err and "Traceback" not in err
        assert not os.path.exists(tmp_path / f"out-{name}")
    assert main(["import", str(tmp_path / "hf"), "--base", base, "--out", str(tmp_path / "x")]) == 2
    assert "--base is for a LoRA adapter folder" in capsys.readouterr().err
    wider = transformers.LlamaForCausalLM(transformers.LlamaConfig(  # an adapter for another model
        vocab_size=400, hidden_size=64, num_attention_heads=4, num_key_value_heads=2, intermediate_size=48,
        num_hidden_layers=2))
    peft.get_peft_model(wider, peft.LoraConfig(r=2, target_modules=["q_proj"])).save_pretrained(str(tmp_path / "w"))
    assert main(["import", str(tmp_path / "w"), "--base", base, "--out", str(tmp_path / "out-w")]) == 2
    err = capsys.readouterr().err
    assert "another shape" in err and "is --base the model it was trained on?" in err and "Traceback" not in err
