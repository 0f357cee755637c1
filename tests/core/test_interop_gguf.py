"""GGUF in and out: our F32 export loads in transformers' GGUF loader with equal logits, Q8_0 stays within a
stated tolerance, GGUF files with quantised tensors (written here with the gguf package) import to the
logits of a dequantised reference, and the rebuilt tokenizer gives the source tokenizer's ids."""

from __future__ import annotations

import gguf
import numpy as np
import pytest
import torch
import transformers
from gguf import GGMLQuantizationType as Q
from gguf.quants import dequantize, quantize
from interop_models import SAMPLE, tiny_hf_model
from tokenizers import Tokenizer

from core.cli import main
from core.generate import load_model, load_tokenizer_for
from core.layout import latest_checkpoint


def _import(src: str, out: str):
    assert main(["import", src, "--out", out]) == 0
    path = latest_checkpoint(out)
    model, meta = load_model(path)
    return model, load_tokenizer_for(path, meta), path


@pytest.fixture(scope="module", params=["gpt2", "llama", "qwen2", "qwen3"])
def exported(request, tmp_path_factory):
    kind = request.param
    folder = tmp_path_factory.mktemp(f"gguf-{kind}")
    hf = tiny_hf_model(kind, str(folder / "hf"))
    if kind == "gpt2":  # transformers' GGUF loader sizes GPT-2's position table from its default (1024)
        cfg = transformers.GPT2Config(**{**hf.config.to_dict(), "n_positions": 1024})
        hf = transformers.GPT2LMHeadModel(cfg).eval()
        hf.save_pretrained(str(folder / "hf"))
    model, tok, ckpt = _import(str(folder / "hf"), str(folder / "imp"))
    assert main(["export", "--checkpoint", ckpt, "--format", "gguf", "--out", str(folder / "m.gguf")]) == 0
    return kind, folder, model, tok, ckpt


def test_f32_gguf_loads_in_transformers_with_equal_logits(exported):
    kind, folder, model, tok, _ = exported
    hf = transformers.AutoModelForCausalLM.from_pretrained(str(folder), gguf_file="m.gguf").eval()
    x = torch.tensor([tok.encode(SAMPLE)[:60]])
    with torch.no_grad():
        torch.testing.assert_close(hf(x).logits, model(x)[0], atol=1e-4, rtol=0)


def test_gguf_layout_and_metadata_are_llama_cpps(exported):
    kind, folder, model, _, _ = exported
    reader = gguf.GGUFReader(str(folder / "m.gguf"))
    fields = {k: f.contents() for k, f in reader.fields.items()}
    arch = kind
    assert fields["general.architecture"] == arch
    assert fields[f"{arch}.block_count"] == 2 and fields[f"{arch}.embedding_length"] == 32
    assert fields["tokenizer.ggml.model"] == "gpt2"
    assert fields["tokenizer.ggml.pre"] == ("qwen2" if kind in ("qwen2", "qwen3") else "gpt-2")
    assert fields["tokenizer.chat_template"].startswith("{% for m in messages %}")
    names = {t.name for t in reader.tensors}
    if kind == "gpt2":
        assert {"blk.0.attn_qkv.weight", "position_embd.weight", "output.weight"} <= names
    else:
        assert fields[f"{arch}.attention.head_count_kv"] == 2
        assert {"blk.1.attn_k.weight", "blk.1.ffn_gate.weight"} <= names
        assert ("blk.0.attn_q.bias" in names) == (kind == "qwen2")
        assert ("output.weight" in names) == (kind == "llama")  # tied models leave it out
        head = 128 if kind == "qwen3" else 8  # llama.cpp's n_embd_head_k: Qwen3's heads are not n_embd / n_head
        assert fields[f"{arch}.attention.key_length"] == fields[f"{arch}.attention.value_length"] == head
        assert ({"blk.1.attn_q_norm.weight", "blk.1.attn_k_norm.weight"} <= names) == (kind == "qwen3")


def test_rebuilt_tokenizer_gives_the_source_ids(exported):
    kind, folder, _, tok, _ = exported
    source = Tokenizer.from_file(str(folder / "hf" / "tokenizer.json"))
    _, back_tok, _ = _import(str(folder / "m.gguf"), str(folder / "back"))
    for text in (SAMPLE, " leading  spaces\n\n\ttabs 2024 1234567 don't I'LL", "<|im_start|>user\n¿Qué?<|im_end|>"):
        assert back_tok.encode(text) == source.encode(text, add_special_tokens=False).ids
    assert back_tok.decode(back_tok.encode(SAMPLE)) == SAMPLE


def test_q8_0_export_stays_within_tolerance(exported):
    """Q8_0 keeps 8 bits per weight with one scale per 32: logits within 8% (relative RMS) of F32 for these
    random weights at 15x the usual init scale (which amplify rounding; the 2-layer GPT-2 stays under 2%), and
    exactly those of the model whose matrices went through Q8_0 and back."""
    kind, folder, model, tok, ckpt = exported
    out = str(folder / "q8.gguf")
    assert main(["export", "--checkpoint", ckpt, "--format", "gguf", "--dtype", "q8_0", "--out", out]) == 0
    # rows of 32k values are Q8_0; a matrix whose rows are not (48-wide MLP down projection) falls back to F16
    assert {"Q8_0", "F32"} <= {t.tensor_type.name for t in gguf.GGUFReader(out).tensors} <= {"Q8_0", "F32", "F16"}
    q8, _, _ = _import(out, str(folder / "q8"))
    x = torch.tensor([tok.encode(SAMPLE)[:60]])
    ref = load_model(ckpt)[0]
    with torch.no_grad():
        for p in ref.parameters():
            if p.dim() == 2 and p.shape[1] % 32 == 0:
                p.copy_(torch.from_numpy(dequantize(quantize(p.numpy(), Q.Q8_0), Q.Q8_0)))
            elif p.dim() == 2:
                p.copy_(p.half().float())
        full, got, want = model(x)[0], q8(x)[0], ref(x)[0]
    torch.testing.assert_close(got, want, atol=1e-4, rtol=0)
    rel = ((got - full).pow(2).mean().sqrt() / full.pow(2).mean().sqrt()).item()
    assert 0 < rel < (0.02 if kind == "gpt2" else 0.08)


# ------------------------------------------------------------------------------ quantised GGUF import
def _llama_permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's converter: HF rows -> RoPE pairs side by side (written here, not imported from core)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _random_k_blocks(rows: int, cols: int, qtype, rng) -> np.ndarray:
    """Random K-quant blocks with small finite f16 scales (gguf-py can dequantise but not quantise these)."""
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    data = rng.integers(0, 256, size=(rows, cols // block, size), dtype=np.uint8)
    scales = rng.uniform(0.002, 0.01, size=(rows, cols // block, 2)).astype(np.float16).view(np.uint8)
    if qtype == Q.Q6_K:
        data[..., -2:] = scales[..., :2]  # d is the last field
    else:
        data[..., 0:2], data[..., 2:4] = scales[..., :2], scales[..., :2]  # d, dmin
    return data.reshape(rows, -1)


QTYPES = [Q.Q8_0, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q4_K, Q.Q5_K, Q.Q6_K, Q.F16, Q.BF16]
HF_OF = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head",
         "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm", "attn_q": "self_attn.q_proj",
         "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj",
         "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}


def _hf_name(name: str) -> str:
    parts = name.split(".")
    if parts[0] == "blk":
        return f"model.layers.{parts[1]}.{HF_OF[parts[2]]}.{parts[3]}"
    return f"{HF_OF[parts[0]]}.{parts[1]}"


def test_quantised_gguf_imports_to_the_dequantised_reference(tmp_path):
    """A 256-wide Llama (GQA) whose matrices are stored in every supported type, q/k rows permuted as
    llama.cpp's converter does: our import gives the logits of the HF model holding the dequantised values."""
    hf, path, _ = _build_quantised(tmp_path)
    types = {t.tensor_type.name for t in gguf.GGUFReader(path).tensors}
    assert types == {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K"}
    model, _, _ = _import(path, str(tmp_path / "imp"))
    assert model.cfg.n_kv_head == 2 and not model.cfg.tie_embeddings
    x = torch.randint(0, 400, (2, 40))
    with torch.no_grad():
        want = hf(x).logits
        torch.testing.assert_close(model(x)[0], want, atol=1e-4, rtol=1e-5)
    assert want.abs().max() > 0.5


def _build_quantised(tmp_path):
    rng = np.random.default_rng(0)
    cfg = transformers.LlamaConfig(hidden_size=256, num_attention_heads=4, num_key_value_heads=2,
                                   intermediate_size=256, num_hidden_layers=2, vocab_size=400,
                                   max_position_embeddings=64, tie_word_embeddings=False)
    hf = transformers.LlamaForCausalLM(cfg).eval()
    tiny = tiny_hf_model("llama", str(tmp_path / "tok"))  # only for its tokenizer and GGUF vocabulary
    del tiny
    assert main(["import", str(tmp_path / "tok"), "--out", str(tmp_path / "tok-imp")]) == 0
    vocab_gguf = str(tmp_path / "vocab.gguf")
    assert main(["export", "--checkpoint", latest_checkpoint(str(tmp_path / "tok-imp")), "--format", "gguf",
                 "--out", vocab_gguf]) == 0
    src = gguf.GGUFReader(vocab_gguf)
    w = gguf.GGUFWriter(str(tmp_path / "q.gguf"), "llama")
    for key, field in src.fields.items():
        if key.startswith("tokenizer."):
            sub = field.types[-1] if len(field.types) > 1 else None
            w.add_key_value(key, field.contents(), field.types[0], sub_type=sub)
    w.add_context_length(64)
    w.add_embedding_length(256)
    w.add_block_count(2)
    w.add_feed_forward_length(256)
    w.add_head_count(4)
    w.add_head_count_kv(2)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-6)
    state = {}
    names = ["token_embd.weight", "output_norm.weight", "output.weight"] + [
        f"blk.{i}.{n}.weight" for i in range(2) for n in ("attn_norm", "ffn_norm", "attn_q", "attn_k", "attn_v",
                                                          "attn_output", "ffn_gate", "ffn_up", "ffn_down")]
    matrices = 0
    for name in names:
        shape = tuple(hf.state_dict()[_hf_name(name)].shape)
        if len(shape) == 1:
            values = (1.0 + 0.1 * rng.standard_normal(shape)).astype(np.float32)
            w.add_tensor(name, values)
        else:
            qtype = QTYPES[matrices % len(QTYPES)]
            matrices += 1
            if qtype in (Q.Q4_K, Q.Q5_K, Q.Q6_K):
                data = _random_k_blocks(*shape, qtype, rng)
            else:
                data = quantize((0.3 * rng.standard_normal(shape)).astype(np.float32), qtype)
            w.add_tensor(name, data, raw_dtype=qtype)
            values = dequantize(data, qtype)
        if name.endswith("attn_q.weight"):
            values = _unpermute(values, 4)
        elif name.endswith("attn_k.weight"):
            values = _unpermute(values, 2)
        state[_hf_name(name)] = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    hf.load_state_dict(state, strict=False)
    return hf, str(tmp_path / "q.gguf"), None


def _unpermute(stored: np.ndarray, n_head: int) -> np.ndarray:
    """The HF matrix whose llama.cpp permutation is `stored` (inverse by index bookkeeping)."""
    index = _llama_permute(np.arange(stored.shape[0]), n_head)
    out = np.empty_like(stored)
    out[index] = stored
    return out
