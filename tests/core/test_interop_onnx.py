"""ONNX export: ONNX Runtime's logits equal ours to 1e-4 for any batch and sequence length (dynamic axes)."""

from __future__ import annotations

import onnx
import onnxruntime as ort
import pytest
import torch
from interop_models import tiny_hf_model

from core.cli import main
from core.generate import load_model
from core.layout import latest_checkpoint


@pytest.mark.parametrize("kind", ["gpt2", "llama", "qwen3"])  # qwen3: QK-norm (the speedrun preset has it)
def test_onnx_runtime_logits_equal_ours_for_dynamic_shapes(tmp_path, kind):
    tiny_hf_model(kind, str(tmp_path / "hf"))
    assert main(["import", str(tmp_path / "hf"), "--out", str(tmp_path / "imp")]) == 0
    ckpt = latest_checkpoint(str(tmp_path / "imp"))
    out = str(tmp_path / "m.onnx")
    assert main(["export", "--checkpoint", ckpt, "--format", "onnx", "--out", out]) == 0
    graph = onnx.load(out)
    onnx.checker.check_model(graph)
    dims = [d.dim_param for d in graph.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", "sequence"]
    model, _ = load_model(ckpt)
    session = ort.InferenceSession(out, providers=["CPUExecutionProvider"])
    for shape in ((1, 1), (3, 17), (2, 64)):
        x = torch.randint(0, model.cfg.vocab_size, shape)
        got = session.run(["logits"], {"input_ids": x.numpy()})[0]
        with torch.no_grad():
            want = model(x)[0].numpy()
        assert got.shape == (*shape, model.cfg.vocab_size)
        assert abs(got - want).max() < 1e-4
