"""Our checkpoint -> an ONNX graph: input_ids (batch, sequence) int64 -> logits (batch, sequence, vocab) float32,
both axes dynamic (the sequence up to block_size). Exported with torch's TorchScript-based exporter (no
onnxscript needed) and checked with ONNX Runtime on a batch of a different shape than the one traced, before
the file is renamed into place.
"""

from __future__ import annotations

import os

import torch

from core.errors import UsageError
from core.interop import require

VERIFY_ATOL = 1e-4


class LogitsOnly(torch.nn.Module):
    """The model's full-sequence forward without cache, loss or attention: what an ONNX consumer runs."""

    def __init__(self, model):
        super().__init__()
        self.model = model  # RMS norms are spelled out in elementary operations while exporting (core.model)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids)[0]


def export_onnx(path: str, out: str, dtype: str) -> None:
    require("onnx", "exporting to ONNX")
    ort = require("onnxruntime", "verifying an ONNX export")
    from core.generate import load_model

    if dtype != "f32":
        raise UsageError(f"--dtype {dtype}: an ONNX export is f32 (ONNX Runtime's CPU kernels)")
    model, _ = load_model(path, "cpu")
    cfg = model.cfg
    tmp = os.path.join(os.path.dirname(os.path.abspath(out)), f".{os.path.basename(out)}.tmp-{os.getpid()}.onnx")
    wrapped = LogitsOnly(model).eval()
    example = torch.zeros(1, min(4, cfg.block_size), dtype=torch.long)
    try:
        with torch.no_grad():
            torch.onnx.export(wrapped, (example,), tmp, input_names=["input_ids"], output_names=["logits"],
                              dynamic_axes={"input_ids": {0: "batch", 1: "sequence"},
                                            "logits": {0: "batch", 1: "sequence"}},
                              opset_version=17, dynamo=False)
        verify_onnx(tmp, model, ort)
        os.replace(tmp, out)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def verify_onnx(file: str, model, ort) -> float:
    """Max |logit difference| between ONNX Runtime and the model on a (2, T) batch; RuntimeError past 1e-4."""
    cfg = model.cfg
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, cfg.vocab_size, (2, min(7, cfg.block_size)), generator=gen)
    session = ort.InferenceSession(file, providers=["CPUExecutionProvider"])
    got = session.run(["logits"], {"input_ids": ids.numpy()})[0]
    with torch.no_grad():
        want = model(ids)[0].numpy()
    diff = float(abs(got - want).max())
    if diff > VERIFY_ATOL:
        raise RuntimeError(f"ONNX Runtime's logits differ from the model's by {diff:.2e} (> {VERIFY_ATOL}); "
                           f"the export was not kept")
    return diff
