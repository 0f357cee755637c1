"""What import and export refuse: an unsupported architecture, tensor type or option, or an occupied
destination -> exit code 2, a message naming it (and what is supported), and nothing written."""

from __future__ import annotations

import json
import os

import gguf
import numpy as np
import pytest
from interop_models import tiny_hf_model

from core.cli import main
from core.errors import UsageError
from core.interop import require
from core.layout import latest_checkpoint


def _refused(capsys, argv: list[str], *needles: str) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    for needle in needles:
        assert needle in err, err
    return err


def test_unsupported_hf_architecture(tmp_path, capsys):
    src = tmp_path / "falcon"
    src.mkdir()
    (src / "config.json").write_text(json.dumps({"model_type": "falcon", "architectures": ["FalconForCausalLM"]}))
    _refused(capsys, ["import", str(src), "--out", str(tmp_path / "out")], "falcon", "gpt2, llama, mistral, qwen2, qwen3")
    assert not os.path.exists(tmp_path / "out")


def test_unsupported_hf_option_names_the_field(tmp_path, capsys):
    tiny_hf_model("llama", str(tmp_path / "hf"))
    cfg = json.loads((tmp_path / "hf" / "config.json").read_text())
    cfg["rope_scaling"] = {"rope_type": "yarn", "factor": 4.0}
    cfg.pop("rope_parameters", None)
    (tmp_path / "hf" / "config.json").write_text(json.dumps(cfg))
    _refused(capsys, ["import", str(tmp_path / "hf"), "--out", str(tmp_path / "out")], "rope_scaling", "yarn")
    assert not os.path.exists(tmp_path / "out")


@pytest.mark.parametrize("change,field", [({"rope_theta": "fast", "rope_parameters": None}, "rope_theta"),
                                          ({"rope_scaling": "yarn"}, "rope_scaling"),
                                          ({"rope_parameters": [1, 2]}, "rope_parameters"),
                                          ({"model_type": "mistral", "sliding_window": "4k"}, "sliding_window"),
                                          ({"model_type": "bloom", "architectures": [None]}, "bloom")])
def test_a_malformed_hf_config_value_is_named_not_a_traceback(tmp_path, capsys, change, field):
    """config.json values of the wrong kind ended the import in a traceback (ValueError, AttributeError,
    TypeError): each is a usage error naming its key; the studio's Import dialog shows the same message."""
    tiny_hf_model("llama", str(tmp_path / "hf"))
    cfg = json.loads((tmp_path / "hf" / "config.json").read_text())
    cfg.update(change)
    (tmp_path / "hf" / "config.json").write_text(json.dumps(cfg))
    _refused(capsys, ["import", str(tmp_path / "hf"), "--out", str(tmp_path / "out")], "config.json", field)
    assert not os.path.exists(tmp_path / "out")


def _gguf(path: str, arch: str, qtype) -> None:
    w = gguf.GGUFWriter(path, arch)
    w.add_block_count(1)
    w.add_embedding_length(256)
    w.add_head_count(2)
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    w.add_tensor("token_embd.weight", np.zeros((4, 256 // block * size), dtype=np.uint8), raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def test_a_malformed_gguf_number_is_named_not_a_traceback(tmp_path, capsys):
    """A hyper-parameter stored as a string (float() raised ValueError, a traceback): named with its key."""
    w = gguf.GGUFWriter(str(tmp_path / "m.gguf"), "llama")
    w.add_block_count(1)
    w.add_embedding_length(8)
    w.add_head_count(2)
    w.add_feed_forward_length(16)
    w.add_string("llama.rope.freq_base", "fast")
    w.add_tensor("token_embd.weight", np.zeros((10, 8), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    _refused(capsys, ["import", str(tmp_path / "m.gguf"), "--out", str(tmp_path / "out")],
             "llama.rope.freq_base must be a positive number", "'fast'")


def test_unsupported_gguf_architecture_and_tensor_type(tmp_path, capsys):
    _gguf(str(tmp_path / "phi.gguf"), "phi3", gguf.GGMLQuantizationType.Q8_0)
    _refused(capsys, ["import", str(tmp_path / "phi.gguf"), "--out", str(tmp_path / "a")], "phi3",
             "gpt2, llama, qwen2, qwen3")
    _gguf(str(tmp_path / "q2k.gguf"), "llama", gguf.GGMLQuantizationType.Q2_K)
    _refused(capsys, ["import", str(tmp_path / "q2k.gguf"), "--out", str(tmp_path / "b")], "token_embd.weight",
             "Q2_K", "Q4_K, Q5_K, Q6_K")
    (tmp_path / "junk.gguf").write_bytes(b"not a gguf file at all")
    _refused(capsys, ["import", str(tmp_path / "junk.gguf"), "--out", str(tmp_path / "c")], "junk.gguf")
    assert not any(os.path.exists(tmp_path / n) for n in "abc")


@pytest.fixture(scope="module")
def sinusoidal_ckpt(tmp_path_factory):
    from test_interop_hf import _own_checkpoint

    return _own_checkpoint(tmp_path_factory.mktemp("sin"), pos_encoding="sinusoidal")


@pytest.mark.parametrize("fmt", ["hf", "gguf"])
def test_export_refuses_an_option_without_equivalent(sinusoidal_ckpt, tmp_path, capsys, fmt):
    out = str(tmp_path / "out")
    _refused(capsys, ["export", "--checkpoint", sinusoidal_ckpt, "--format", fmt, "--out", out],
             "model.pos_encoding", "sinusoidal")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("fmt", ["hf", "gguf"])
@pytest.mark.parametrize("model,field", [({}, "model.qk_norm"),  # GPT-2's shape: no architecture with QK-norm
                                         ({"pos_encoding": "rope", "norm": "rmsnorm", "activation": "swiglu",
                                           "qkv_bias": True}, "model.qkv_bias")])  # Qwen3 has no q/k/v bias
def test_export_refuses_qk_norm_that_the_formats_cannot_carry(tmp_path, capsys, fmt, model, field):
    """A Llama-shaped model with QK-norm was written as a plain Llama (HF) or llama (GGUF): QK-norm dropped,
    other logits. It goes as Qwen3 now (test_interop_hf); what Qwen3 cannot carry is refused, naming the field;
    ONNX (which traces our model) keeps it."""
    from test_interop_hf import _own_checkpoint

    ckpt = _own_checkpoint(tmp_path, qk_norm=True, **model)
    _refused(capsys, ["export", "--checkpoint", ckpt, "--format", fmt, "--out", str(tmp_path / "out")],
             field, "ONNX")
    assert not os.path.exists(tmp_path / "out")


def test_export_refuses_bad_dtype_and_occupied_destination(sinusoidal_ckpt, tmp_path, capsys):
    _refused(capsys, ["export", "--checkpoint", sinusoidal_ckpt, "--format", "hf", "--dtype", "q8_0", "--out",
                      str(tmp_path / "x")], "q8_0", "gguf only")
    (tmp_path / "taken").mkdir()
    _refused(capsys, ["export", "--checkpoint", sinusoidal_ckpt, "--format", "onnx", "--out",
                      str(tmp_path / "taken")], "already exists")


def test_import_never_overwrites(tmp_path, capsys):
    tiny_hf_model("gpt2", str(tmp_path / "hf"))
    assert main(["import", str(tmp_path / "hf"), "--out", str(tmp_path / "imp")]) == 0
    before = os.path.getmtime(os.path.join(latest_checkpoint(str(tmp_path / "imp")), "model.safetensors"))
    _refused(capsys, ["import", str(tmp_path / "hf"), "--out", str(tmp_path / "imp")], "not empty")
    assert os.path.getmtime(os.path.join(latest_checkpoint(str(tmp_path / "imp")), "model.safetensors")) == before


def test_a_missing_optional_package_names_the_extra():
    with pytest.raises(UsageError, match=r"\.\[interop\]"):
        require("surely_not_installed_pkg", "exporting to nowhere")


def test_export_without_gguf_exits_2_naming_the_extra_or_the_bundle(tmp_path, capsys, monkeypatch):
    """`pip install torch -e .` has no gguf: the command says which extra brings it and writes nothing; the
    desktop bundle (sys.frozen) says the build lacks it rather than giving a pip command."""
    import sys

    from test_interop_hf import _own_checkpoint

    ckpt = _own_checkpoint(tmp_path)
    monkeypatch.setitem(sys.modules, "gguf", None)  # import gguf -> ImportError, as when not installed
    out = str(tmp_path / "m.gguf")
    argv = ["export", "--checkpoint", ckpt, "--format", "gguf", "--out", out]
    _refused(capsys, argv, "'gguf'", "pip install -e '.[interop]'")
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    err = _refused(capsys, argv, "'gguf'", "this desktop build does not include it")
    assert "-e '.[interop]'" not in err and not os.path.exists(out)


def test_a_sentencepiece_style_tokenizer_is_refused_before_writing(tmp_path, capsys):
    from interop_models import CORPUS
    from tokenizers import SentencePieceBPETokenizer

    tiny_hf_model("llama", str(tmp_path / "hf"))
    spm = SentencePieceBPETokenizer()
    spm.train_from_iterator(CORPUS * 3, vocab_size=300, show_progress=False)
    spm.save(str(tmp_path / "hf" / "tokenizer.json"))
    _refused(capsys, ["import", str(tmp_path / "hf"), "--out", str(tmp_path / "out")], "tokenizer",
             "byte-level BPE")
    assert not os.path.exists(tmp_path / "out")


@pytest.mark.parametrize(("change", "needles"), [
    ({"drop": "n_embd"}, ("config.json: n_embd is missing",)),
    ({"set": ("n_head", "4")}, ("config.json: n_head must be a positive integer", "'4'")),
    ({"set": ("n_embd", 33)}, ("not one we can build", "n_embd")),  # 33 is not a multiple of 2 heads
])
def test_an_incomplete_or_ill_typed_hf_config_is_named_not_a_traceback(tmp_path, capsys, change, needles):
    tiny_hf_model("gpt2", str(tmp_path / "hf"))
    cfg = json.loads((tmp_path / "hf" / "config.json").read_text())
    if "drop" in change:
        cfg.pop(change["drop"])
    else:
        cfg[change["set"][0]] = change["set"][1]
    (tmp_path / "hf" / "config.json").write_text(json.dumps(cfg))
    err = _refused(capsys, ["import", str(tmp_path / "hf"), "--out", str(tmp_path / "out")], *needles)
    assert "Traceback" not in err and not os.path.exists(tmp_path / "out")


def test_a_gguf_without_its_hyper_parameters_is_named_not_a_traceback(tmp_path, capsys):
    w = gguf.GGUFWriter(str(tmp_path / "bare.gguf"), "llama")
    w.add_block_count(1)
    w.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    err = _refused(capsys, ["import", str(tmp_path / "bare.gguf"), "--out", str(tmp_path / "out")],
                   "llama.embedding_length is missing")
    assert "Traceback" not in err and not os.path.exists(tmp_path / "out")
