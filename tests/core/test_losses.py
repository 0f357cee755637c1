"""core.losses.lm_loss: the chunked cross-entropy equals the reference (logits, then F.cross_entropy) in
value and in every gradient, never holds the (tokens x vocabulary) logits, and is used only where it holds
(not under fp16 autocast, not for a wrapped head); training through it gives the reference's weights."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from engine_helpers import write_config
from test_train import assert_same_weights, run_dir_of, train_inproc, weights
from torch.utils._python_dispatch import TorchDispatchMode

from core import losses
from core.config import ModelConfig
from core.lora import apply_lora
from core.model import GPT

V = 512


def model_and_batch(tie: bool = True, seed: int = 0):
    torch.manual_seed(seed)
    model = GPT(ModelConfig(n_layer=2, n_head=2, n_embd=32, block_size=16, vocab_size=V, tie_embeddings=tie))
    idx = torch.randint(0, V, (3, 16))
    targets = torch.randint(0, V, (3, 16))
    targets[0, :5] = -1  # untrained positions (SFT prompt tokens, padding)
    targets[2, 7] = -1
    return model, idx, targets


@pytest.fixture
def chunked(monkeypatch):
    """The chunked path for any size, in chunks of 7 rows (the last one shorter)."""
    monkeypatch.setattr(losses, "LM_LOSS_MIN_LOGITS", 0)
    monkeypatch.setattr(losses, "CHUNK_LOGITS", 7 * V)
    monkeypatch.setattr(losses, "MIN_CHUNK_ROWS", 1)


def loss_and_grads(model, idx, targets):
    model.zero_grad(set_to_none=True)
    _, loss, _ = model(idx, targets)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def reference(model, idx, targets):
    """The loss as it was: the whole logits, then F.cross_entropy with ignore_index=-1."""
    model.zero_grad(set_to_none=True)
    logits = model(idx)[0]
    loss = F.cross_entropy(logits.float().view(-1, V), targets.reshape(-1), ignore_index=-1)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("tie", [True, False])
def test_chunked_loss_and_gradients_equal_the_reference(chunked, tie):
    model, idx, targets = model_and_batch(tie)
    ref_loss, ref_grads = reference(model, idx, targets)
    loss, grads = loss_and_grads(model, idx, targets)
    assert torch.allclose(loss, ref_loss, rtol=1e-6, atol=1e-6)
    assert grads.keys() == ref_grads.keys() and ("tok_emb.weight" if tie else "lm_head.weight") in grads
    for name in grads:
        assert torch.allclose(grads[name], ref_grads[name], rtol=1e-4, atol=1e-7), name


def test_chunked_loss_with_a_frozen_head_trains_the_rest_alike(chunked):
    """LoRA: the tied head is frozen; the gradients reaching the adapters are the reference's."""
    model, idx, targets = model_and_batch()
    model = apply_lora(model, 4, 8.0, 0.0, ["attn_qkv", "attn_out"])
    for p in model.parameters():
        if p.requires_grad:
            torch.nn.init.normal_(p, std=0.02)  # B starts at zero: give the adapters a gradient path both ways
    ref_loss, ref_grads = reference(model, idx, targets)
    loss, grads = loss_and_grads(model, idx, targets)
    assert torch.allclose(loss, ref_loss, rtol=1e-6) and grads.keys() == ref_grads.keys()
    assert "lm_head.weight" not in grads and any("lora" in n for n in grads)
    for name in grads:
        assert torch.allclose(grads[name], ref_grads[name], rtol=1e-4, atol=1e-7), name


def test_chunked_loss_under_bf16_autocast_matches_the_reference_under_it(chunked):
    model, idx, targets = model_and_batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ref_loss, ref_grads = reference(model, idx, targets)
        loss, grads = loss_and_grads(model, idx, targets)
    assert abs(loss.item() - ref_loss.item()) < 1e-3
    for name in grads:
        scale = ref_grads[name].abs().max().item()
        assert (grads[name] - ref_grads[name]).abs().max().item() <= 0.02 * scale + 1e-6, name


def test_loss_without_gradients_equals_the_reference(chunked):
    model, idx, targets = model_and_batch()
    with torch.no_grad():
        loss = model(idx, targets)[1]
        logits = model(idx)[0]
    assert torch.allclose(loss, F.cross_entropy(logits.view(-1, V), targets.reshape(-1), ignore_index=-1))


class LargestTensor(TorchDispatchMode):
    """Records the largest number of elements of any tensor an op produces."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


def test_chunked_loss_never_holds_the_whole_logits(chunked):
    model, idx, targets = model_and_batch()
    tokens = idx.numel()
    with LargestTensor() as seen:
        model(idx, targets)[1].backward()
    # nothing larger than a chunk's logits or a (V, C) weight gradient; the whole logits are larger than both
    assert seen.largest <= max(7 * V, V * 32) < tokens * V
    with LargestTensor() as seen:  # the reference does (the measure can fail)
        reference(model, idx, targets)
    assert seen.largest >= tokens * V


def test_reference_path_where_chunking_does_not_hold(chunked, monkeypatch):
    model, idx, targets = model_and_batch()
    calls = []
    real = losses._ChunkedLinearCE.apply
    monkeypatch.setattr(losses._ChunkedLinearCE, "apply", lambda *a: calls.append(1) or real(*a))
    model(idx, targets)
    assert calls == [1]  # the spy sees the chunked path
    with torch.autocast("cpu", dtype=torch.float16):  # unscaled fp16 gradients would underflow
        model(idx, targets)
    assert calls == [1]
    monkeypatch.setattr(losses, "LM_LOSS_MIN_LOGITS", 10 ** 9)  # small vocabulary x tokens: not worth it
    model(idx, targets)
    assert calls == [1]


@pytest.mark.parametrize("accum", [1, 4])
def test_training_through_the_chunked_loss_gives_the_reference_weights(tmp_path, char_data, monkeypatch, accum):
    """One optimizer step of the trainer (accumulating or not): the same weights either way."""
    common = {"max_steps": 1, "warmup_steps": 0, "grad_clip": 0.0, "batch_size": 16 // accum,
              "grad_accum_steps": accum}
    a = write_config(tmp_path, char_data, train=common, run={"dir": "runs/ref"}, name="a.yaml")
    b = write_config(tmp_path, char_data, train=common, run={"dir": "runs/chunked"}, name="b.yaml")
    assert train_inproc(a) == 0
    monkeypatch.setattr(losses, "LM_LOSS_MIN_LOGITS", 0)
    monkeypatch.setattr(losses, "CHUNK_LOGITS", 1)  # 64-row chunks, the floor
    assert train_inproc(b) == 0
    assert_same_weights(weights(run_dir_of(a)), weights(run_dir_of(b)), atol=1e-5)


def test_the_estimate_counts_a_chunk_of_logits_not_all_of_them():
    """The config editor's memory estimate follows the loss's rule: a 49k vocabulary x 4k tokens holds one
    chunk of logits in fp32 / bf16; fp16 (reference path) and a small vocabulary hold them all."""
    from core.config import Config, ModelConfig, TrainConfig, estimate
    from core.estimate import chunked_loss_rows, logits_memory

    assert chunked_loss_rows(4096, 49152, "fp32") == (1 << 24) // 49152
    assert chunked_loss_rows(4096, 49152, "fp16") is None and chunked_loss_rows(4096, 65, "fp32") is None
    assert logits_memory(4096, 49152, 576, "fp32", 4) < 4096 * 49152 * 8 / 10
    m = ModelConfig(n_layer=2, n_head=4, n_embd=64, block_size=512, vocab_size=49152)
    chunked = estimate(Config(model=m, train=TrainConfig(batch_size=8, precision="fp32")))
    whole = estimate(Config(model=m, train=TrainConfig(batch_size=8, precision="fp16")))
    assert chunked["memory"]["activations"] < whole["memory"]["activations"] - 4096 * 49152 * 4


def test_eval_text_windows_sum_the_loss_in_chunks_as_from_the_logits(monkeypatch):
    """`llm-train eval --text` takes the model's loss (chunked where the logits are large) times the target
    count: the same summed NLL as F.cross_entropy(reduction="sum") over the whole logits."""
    from core.evaluate import _window_nll

    model, _, _ = model_and_batch()
    torch.manual_seed(1)
    windows = [torch.randint(0, V, (17,)).tolist(), torch.randint(0, V, (9,)).tolist()]  # padded: ignored
    with torch.no_grad():
        ids = torch.tensor(windows[0])
        logits = model(ids[None, :-1])[0][0]
        ref = F.cross_entropy(logits, ids[1:], reduction="sum").item()
        ids = torch.tensor(windows[1])
        ref += F.cross_entropy(model(ids[None, :-1])[0][0], ids[1:], reduction="sum").item()
    whole = _window_nll(model, windows, "cpu")
    monkeypatch.setattr(losses, "LM_LOSS_MIN_LOGITS", 0)
    monkeypatch.setattr(losses, "MIN_CHUNK_ROWS", 1)
    monkeypatch.setattr(losses, "CHUNK_LOGITS", 5 * V)
    chunked = _window_nll(model, windows, "cpu")
    assert whole[1] == chunked[1] == 16 + 8
    assert whole[0] == pytest.approx(ref, rel=1e-5) and chunked[0] == pytest.approx(ref, rel=1e-5)


def test_log_softmax_written_over_the_logits_equals_a_fresh_one():
    """losses._log_softmax_ writes over its input on a CPU: every row must still be read before it is written."""
    torch.manual_seed(0)
    for rows, vocab in ((3, 49152), (17, 5000), (1, 70000)):
        logits = torch.randn(rows, vocab) * 8
        logits[0, 123] = 60.0  # one dominant logit: the row's max and sum both matter
        want = torch.log_softmax(logits, dim=-1)
        mine = logits.clone()
        got = losses._log_softmax_(mine)
        assert got.data_ptr() == mine.data_ptr()  # no second (rows x V) tensor
        assert torch.equal(got, want)
