"""Fine-tuning: the reverse task learned end to end (full), LoRA's frozen base / adapters / optimizer state,
merging, and activation checkpointing."""

from __future__ import annotations

import os

import pytest
import torch
from engine_helpers import engine, write_config
from finetune_helpers import check, finetune_config, pairs_eval, reverse_task

from core import layout


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reverse")
    return folder, reverse_task(folder)


def test_full_finetune_learns_the_reverse_task(task):
    folder, paths = task
    before = pairs_eval(folder, paths["base"], paths["pairs.jsonl"])
    assert before["n"] == 36 and before["exact_match"] <= 0.1
    check(engine("train", "--config", finetune_config(folder, paths, "full"), cwd=folder))
    ckpt = layout.latest_checkpoint(os.path.join(str(folder), "full"))
    after = pairs_eval(folder, ckpt, paths["pairs.jsonl"])  # held-out words, never trained on
    assert after["exact_match"] > 0.9, after["generations"][:5]
    assert after["rouge_l"] > 0.9
    assert all(set(g) == {"prompt", "reference", "generation"} for g in after["generations"])
    # trained on the built-in template, the model records it as its chat template and stops at its newline:
    # chat (`generate --chat`, the studio's chat mode) answers as the pairs evaluation does
    from core.sft import BUILTIN_TEMPLATE
    from core.tokenizer import load_tokenizer

    meta = layout.read_checkpoint_meta(ckpt)
    assert meta["chat_template"] == BUILTIN_TEMPLATE and meta["eos_token_id"] == load_tokenizer(ckpt).encode("\n")[0]
    words = [g["reference"][::-1] for g in after["generations"][:6]]
    answers = [check(engine("generate", "--checkpoint", ckpt, "--chat", "--prompt", f"reverse: {w}", "--temperature",
                            "0", "--max-new-tokens", "10", cwd=folder)).stdout.strip().splitlines()[-1] for w in words]
    assert sum(a == w[::-1] for a, w in zip(answers, words, strict=True)) >= 5, answers


def test_lora_learns_the_reverse_task_on_a_copying_base(task):
    """LoRA end to end: a base fully fine-tuned to *copy* the word is adapted to reverse it."""
    import itertools
    import json

    folder, paths = task
    words = ["".join(p) for p in itertools.product("abcdef", repeat=3)]
    copy = os.path.join(str(folder), "copy.jsonl")
    with open(copy, "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps({"prompt": f"reverse: {w}", "completion": w}) + "\n" for w in words)
    check(engine("prepare", "--input", copy, "--format", "sft", "--tokenizer-from", paths["base"], "--out",
                 "copy-data", cwd=folder))
    copying = dict(paths, sft=os.path.join(str(folder), "copy-data"))
    check(engine("train", "--config", finetune_config(folder, copying, "copy", max_steps=200), cwd=folder))
    copy_ckpt = layout.latest_checkpoint(os.path.join(str(folder), "copy"))
    before = pairs_eval(folder, copy_ckpt, paths["pairs.jsonl"])
    assert before["exact_match"] <= 0.3  # right only on palindromes ("aba"): about 1 word in 6
    adapted = dict(paths, base=copy_ckpt)
    check(engine("train", "--config", finetune_config(folder, adapted, "lora-rev", finetune="lora", lr=1e-2,
                                                      lora_targets=["attn_qkv", "attn_out", "mlp_in", "mlp_out"]),
                 cwd=folder))
    after = pairs_eval(folder, layout.latest_checkpoint(os.path.join(str(folder), "lora-rev")), paths["pairs.jsonl"])
    assert after["exact_match"] > 0.9, after["generations"][:5]
    # the base checkpoint knows its LoRA child, so the copy run's keep_checkpoints will never prune it
    assert layout.lora_children(copy_ckpt) == [os.path.join(str(folder), "lora-rev")]


def test_pruning_keeps_a_checkpoint_that_a_lora_fine_tune_was_trained_on(tmp_path):
    from core.checkpoint import prune_checkpoints
    from core.lora import note_lora_child

    run = tmp_path / "parent"
    for step in range(1, 6):
        ck = run / "checkpoints" / layout.step_dir_name(step)
        ck.mkdir(parents=True)
        (ck / layout.META).write_text("{}")
        (ck / layout.WEIGHTS).write_bytes(b"x")
    base = str(run / "checkpoints" / layout.step_dir_name(2))
    note_lora_child(base, str(tmp_path / "child"))
    note_lora_child(base, str(tmp_path / "child"))  # recorded once
    assert layout.lora_children(base) == [str(tmp_path / "child")]
    prune_checkpoints(str(run), 2)
    assert sorted(os.listdir(run / "checkpoints")) == [layout.step_dir_name(s) for s in (2, 4, 5)]


def _trainer(folder, paths, name, **train):
    from core.config import load_config
    from core.sinks import Sinks
    from core.trainer_setup import set_up

    path = finetune_config(folder, paths, name, **train)
    return set_up(load_config(path), False, 0, 1, Sinks(), path, [])


def test_lora_freezes_the_base_and_trains_only_adapters(task):
    from core.lora import LoRALinear
    from core.train import optimizer_step

    folder, paths = task
    tr = _trainer(folder, paths, "lora-unit", finetune="lora", lora_rank=4, lr=1e-2,
                  lora_targets=["attn_qkv", "attn_out", "mlp_in", "mlp_out"])
    model = tr.raw_model
    assert sum(isinstance(m, LoRALinear) for m in model.modules()) == 2 * 4  # 2 layers x 4 targets
    base = {n: p.detach().clone() for n, p in model.named_parameters() if ".lora_" not in n}
    adapters = {n: p.detach().clone() for n, p in model.named_parameters() if ".lora_" in n}
    assert all(not p.requires_grad for n, p in model.named_parameters() if n in base)
    for _ in range(5):
        optimizer_step(tr, 1e-2)
    for n, p in model.named_parameters():
        if n in base:
            assert torch.equal(p, base[n]), n  # bit-identical
    assert any(not torch.equal(p, adapters[n]) for n, p in model.named_parameters() if n in adapters)
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    held = {id(p) for p in tr.optimizer.state}
    assert held == trainable and len(held) == len(adapters)


def test_lora_under_bf16_keeps_the_frozen_matrices_in_bf16_and_computes_the_same(task):
    """A bf16 LoRA run stores the base's frozen projections in bf16 (core.lora.frozen_to): the same rounding
    autocast applies to them at every step, so logits, loss and adapter gradients are the very same bits as
    with fp32 frozen weights; embeddings and norms stay fp32; samples and attention probes run (under the
    run's autocast) and the weights stay bit-identical over optimizer steps."""
    import copy

    from core.evaluation import probe
    from core.lora import LoRALinear, frozen_to
    from core.train import optimizer_step

    folder, paths = task
    tr = _trainer(folder, paths, "lora-bf16", finetune="lora", lora_rank=4, lr=1e-2, precision="bf16",
                  sample_tokens=6, lora_targets=["attn_qkv", "attn_out", "mlp_in", "mlp_out"])
    model = tr.raw_model
    frozen = {n: p for n, p in model.named_parameters() if not p.requires_grad}
    assert {n for n, p in frozen.items() if p.dtype == torch.bfloat16} == {
        n for n, p in frozen.items() if n.startswith("blocks.") and p.dim() == 2}
    assert all(p.dtype == torch.float32 for n, p in model.named_parameters() if "ln_" in n or "emb" in n)
    assert all(p.dtype == torch.float32 for p in model.parameters() if p.requires_grad)
    with torch.no_grad():  # adapters that do something, for the comparison below
        for m in model.modules():
            if isinstance(m, LoRALinear):
                m.lora_B.normal_(0, 0.02)
    reference = copy.deepcopy(model)
    for p in reference.parameters():  # the fp32 frozen copy autocast would cast from
        p.data = p.data.float()
    assert frozen_to(reference, torch.float32) == 0
    x = torch.randint(0, model.cfg.vocab_size, (2, 24), generator=torch.Generator().manual_seed(0))
    losses, grads = [], []
    for m in (model, reference):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = m(x)[0]
            _, loss, _ = m(x[:, :-1], x[:, 1:])
        loss.backward()
        losses.append((logits, loss))
        grads.append([p.grad.clone() for p in m.parameters() if p.requires_grad])
        m.zero_grad(set_to_none=True)
    assert torch.equal(losses[0][0], losses[1][0]) and torch.equal(losses[0][1], losses[1][1])
    assert all(torch.equal(a, b) for a, b in zip(*grads, strict=True))
    before = {n: p.detach().clone() for n, p in frozen.items()}
    for _ in range(2):
        optimizer_step(tr, 1e-2)
    assert all(torch.equal(p, before[n]) for n, p in frozen.items())
    tr.tokenizer = None
    probe(tr)  # the sample event: generation under autocast with bf16 projections
    assert frozen_to(model, torch.bfloat16) == 0  # already done, nothing more to cast


def test_lora_checkpoint_merge_and_generate(task):
    from core.generate import load_model
    from core.lora import LoRALinear
    from core.lora import load_model as load_adapted

    folder, paths = task
    check(engine("train", "--config", finetune_config(folder, paths, "lora", finetune="lora", max_steps=20,
                                                      lr=1e-2), cwd=folder))
    ckpt = layout.latest_checkpoint(os.path.join(str(folder), "lora"))
    files = os.listdir(ckpt)
    assert "adapters.safetensors" in files and layout.WEIGHTS not in files
    assert os.path.getsize(os.path.join(ckpt, "adapters.safetensors")) < os.path.getsize(
        os.path.join(paths["base"], layout.WEIGHTS)) / 4
    assert layout.read_checkpoint_meta(ckpt)["lora"]["base"] == paths["base"]
    out = os.path.join(str(folder), "merged")
    check(engine("merge", "--checkpoint", ckpt, "--out", out, cwd=folder))
    merged_path = layout.latest_checkpoint(out)
    adapted, _ = load_adapted(ckpt)  # unmerged: LoRALinear layers
    assert any(isinstance(m, LoRALinear) for m in adapted.modules())
    merged, meta = load_model(merged_path)
    assert "lora" not in meta
    from core.checkpoint import verify

    verify(merged_path)  # every file it names is there and intact: usable as a fork and by --resume
    check(engine("train", "--config", finetune_config(folder, paths, "from-merged", init_from=merged_path, finetune="none",
                                                      max_steps=meta["step"] + 2), cwd=folder))
    x = torch.randint(0, adapted.cfg.vocab_size, (2, 40), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a, b = adapted(x)[0], merged(x)[0]
        base_logits = load_model(paths["base"])[0](x)[0]
    assert not torch.allclose(a, base_logits, atol=1e-3)  # the adapters do something
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    r = check(engine("generate", "--checkpoint", ckpt, "--prompt", "<|user|>\n", "--max-new-tokens", "5",
                     "--seed", "1", cwd=folder))
    assert r.stdout
    hf = os.path.join(str(folder), "hf")  # export merges on the way
    r = engine("export", "--checkpoint", ckpt, "--format", "hf", "--out", hf, cwd=folder)
    assert r.returncode == 0, r.stderr[-2000:]


def test_loss_mask_ignores_prompt_targets(task):
    from core.config import ModelConfig
    from core.model import GPT
    from core.sft import open_sft_split, targets

    _, paths = task
    split = open_sft_split(paths["sft"], "train")
    ids, mask = (a.astype("int64") for a in split.example(0))
    k = int(next(i for i in range(1, len(mask)) if mask[i] == 0))  # a prompt token as a target
    changed = ids.copy()
    changed[k] = (ids[k] + 1) % 20
    torch.manual_seed(0)
    model = GPT(ModelConfig(**{"n_layer": 1, "n_head": 2, "n_embd": 16, "block_size": 48, "vocab_size": 32}))
    x = torch.from_numpy(ids[:-1])[None]
    results = []
    for row in (ids, changed):
        model.zero_grad()
        _, loss, _ = model(x, torch.from_numpy(targets(row, mask))[None])
        loss.backward()
        results.append((loss.detach(), [p.grad.clone() for p in model.parameters()]))
    assert torch.equal(results[0][0], results[1][0])
    assert all(torch.equal(g, h) for g, h in zip(results[0][1], results[1][1], strict=True))
    # and the mask is not vacuous: a trained target does change the loss
    changed[-1] = (ids[-1] + 1) % 20
    _, loss, _ = model(x, torch.from_numpy(targets(changed, mask))[None])
    assert not torch.equal(loss.detach(), results[0][0])


def test_grad_checkpointing_gives_the_same_gradients():
    from core.config import ModelConfig
    from core.model import GPT

    torch.manual_seed(0)
    model = GPT(ModelConfig(**{"n_layer": 2, "n_head": 2, "n_embd": 16, "block_size": 16, "vocab_size": 20}))
    x = torch.randint(0, 20, (2, 16))
    grads = []
    for flag in (False, True):
        model.grad_checkpointing = flag
        model.zero_grad()
        model(x, x)[1].backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(*grads, strict=True))


@pytest.mark.parametrize(("train", "field"), [
    ({"finetune": "lora"}, "train.init_from"),
    ({"finetune": "half"}, "train.finetune"),
    ({"lora_targets": ["attn_qkv", "embeddings"]}, "train.lora_targets"),
    ({"lora_targets": []}, "train.lora_targets"),
    ({"lora_rank": 0}, "train.lora_rank"),
    ({"lora_dropout": 1.5}, "train.lora_dropout"),
    ({"grad_checkpointing": "yes"}, "train.grad_checkpointing"),
])
def test_config_names_the_bad_finetune_field(tmp_path, train, field):
    from engine_helpers import write_config

    from core.config import ConfigError, load_config

    path = write_config(tmp_path, "data", train=train)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert field in err.value.fields


@pytest.mark.parametrize("damage", ["garbage", "flipped"])
def test_a_damaged_adapters_file_is_named_not_a_traceback(task, tmp_path, damage):
    """A LoRA checkpoint's adapters are checked against their recorded checksum and loaded with every
    safetensors error caught: eval and generate say which file is damaged (exit 2)."""
    import shutil

    folder, paths = task
    check(engine("train", "--config", finetune_config(folder, paths, f"lora-{damage}", finetune="lora",
                                                      max_steps=2, warmup_steps=0), cwd=folder))
    src = layout.latest_checkpoint(os.path.join(str(folder), f"lora-{damage}"))
    ckpt = str(tmp_path / "step-000002")
    shutil.copytree(src, ckpt)
    file = os.path.join(ckpt, "adapters.safetensors")
    if damage == "garbage":
        with open(file, "wb") as fh:
            fh.write(b"\xff" * 64)
    else:
        data = bytearray(open(file, "rb").read())
        data[-1] ^= 0xFF
        open(file, "wb").write(bytes(data))
    for argv in (["eval", "--checkpoint", ckpt, "--pairs", paths["pairs.jsonl"]],
                 ["generate", "--checkpoint", ckpt, "--prompt", "x", "--max-new-tokens", "2"]):
        r = engine(*argv, cwd=folder)
        assert r.returncode == 2, (argv, r.stderr[-1500:])
        assert "adapters.safetensors" in r.stderr and "Traceback" not in r.stderr


def test_a_moved_workspace_keeps_its_lora_fine_tunes_loading(task, tmp_path):
    """meta.json records the LoRA base absolutely and relative to the checkpoint (review finding 7): after
    the whole folder moves, the absolute path is gone and the relative one finds the base."""
    import shutil

    import torch

    from core.lora import load_model

    folder, paths = task
    ws = tmp_path / "ws1"
    shutil.copytree(os.path.dirname(os.path.dirname(paths["base"])), ws / "runs" / "base")
    shutil.copytree(paths["sft"], ws / "data" / "sft")
    base = str(ws / "runs" / "base" / "checkpoints" / os.path.basename(paths["base"]))
    cfg = write_config(ws, "data/sft", model={"n_layer": 2, "n_head": 4, "n_embd": 64, "block_size": 48},
                       train={"max_steps": 3, "init_from": base, "finetune": "lora", "lr": 1e-2,
                              "warmup_steps": 0, "precision": "fp32"},
                       run={"dir": "runs/lora"}, name="lora.yaml")
    check(engine("train", "--config", cfg, cwd=ws))
    ckpt = layout.latest_checkpoint(str(ws / "runs" / "lora"))
    spec = layout.read_checkpoint_meta(ckpt)["lora"]
    assert spec["base"] == base and os.path.normpath(os.path.join(ckpt, spec["base_relative"])) == base
    x = torch.randint(0, 20, (1, 12))
    before = load_model(ckpt)[0](x)[0]
    os.rename(ws, tmp_path / "ws2")  # the whole workspace moves: every absolute path into it is gone
    moved = ckpt.replace(str(ws), str(tmp_path / "ws2"))
    assert not os.path.exists(base)
    assert layout.lora_base(moved, spec) == base.replace(str(ws), str(tmp_path / "ws2"))
    torch.testing.assert_close(load_model(moved)[0](x)[0], before)
    assert check(engine("generate", "--checkpoint", moved, "--prompt", "reverse: abc", "--max-new-tokens", "3",
                        cwd=tmp_path)).stdout.startswith("reverse: abc")


def test_an_instruction_run_snapshots_the_attention_of_its_first_validation_example(task):
    """With no run.attention_probe the snapshot is of the validation data's start; an SFT split is examples
    with a mask (examples from the first one's start), not flat ids: the first evaluation failed on it."""
    import numpy as np
    import yaml

    from core.sft import open_sft_split

    folder, paths = task
    cfg = finetune_config(folder, paths, "probed", max_steps=4, warmup_steps=1, eval_interval=2,
                          finetune="lora")
    raw = yaml.safe_load(open(cfg))
    raw["run"]["save_attention"] = True
    with open(cfg, "w") as fh:
        yaml.safe_dump(raw, fh)
    check(engine("train", "--config", cfg, cwd=folder))
    snaps = sorted(os.listdir(os.path.join(str(folder), "probed", layout.ATTENTION)))
    assert snaps == ["step-000002.npz", "step-000004.npz"]
    ids = np.load(os.path.join(str(folder), "probed", layout.ATTENTION, snaps[-1]))["ids"]
    val = open_sft_split(paths["sft"], "val")  # from the first example's start, on across the next ones
    assert len(ids) > len(val.example(0)[0]) and ids.tolist() == val.ids[:len(ids)].tolist()


def test_an_instruction_runs_samples_end_at_its_end_of_turn(task):
    """A fine-tune's sample is its answer: it stops at the end of turn its checkpoint records as EOS (the
    built-in template's newline here) instead of going on to invent the next turns."""
    from engine_helpers import events_of

    from core.sft import BUILTIN_END
    from core.tokenizer import load_tokenizer

    folder, paths = task
    cfg = finetune_config(folder, paths, "sampled", max_steps=60, warmup_steps=5, eval_interval=20, lr=3e-3,
                          sample_tokens=40, sample_prompt="<|user|>\nreverse: abc\n<|assistant|>\n")
    out = check(engine("train", "--config", cfg, "--events", cwd=folder)).stdout
    samples = [ev for ev in events_of(out) if ev["event"] == "sample"]
    assert len(samples) == 3
    end = load_tokenizer(paths["sft"]).encode(BUILTIN_END)
    assert len(end) == 1
    for ev in samples:
        answer = ev["text"]
        assert BUILTIN_END not in answer[:-1], answer  # nothing after the end of turn
    # the runs trained long enough answer in one line (at most 40 tokens, the sample's length)
    assert any(ev["text"].endswith(BUILTIN_END) for ev in samples), [ev["text"] for ev in samples]


def test_a_fine_tune_of_a_lora_fine_tune_starts_from_its_merged_weights(task, tmp_path):
    """A LoRA checkpoint as train.init_from (the studio's Fine-tune on a fine-tuned run) was refused with
    "merge it first": its base with its adapters merged in is the start, for LoRA on top and for full; the
    second LoRA's checkpoint loads through both; a base chain that loops is refused by name."""
    import json

    from core.errors import CheckpointError
    from core.lora import load_model, merge

    folder, paths = task
    targets = ["attn_qkv", "mlp_out"]
    check(engine("train", "--config", finetune_config(folder, paths, "lora-1", finetune="lora", lr=2e-2, max_steps=8,
                                                      warmup_steps=0, lora_targets=targets), cwd=folder))
    first = layout.latest_checkpoint(os.path.join(str(folder), "lora-1"))
    merged = merge(load_model(first)[0]).state_dict()
    check(engine("train", "--config", finetune_config(folder, dict(paths, base=first), "lora-2", finetune="lora",
                                                      lr=2e-2, max_steps=8, warmup_steps=0, lora_targets=["attn_out"]), cwd=folder))
    second, _ = load_model(layout.latest_checkpoint(os.path.join(str(folder), "lora-2")))
    frozen = {k: v for k, v in second.state_dict().items() if ".lora_" not in k}
    assert frozen.keys() == merged.keys() and all(torch.equal(frozen[k], merged[k]) for k in merged)
    x = torch.randint(0, second.cfg.vocab_size, (2, 16))
    first_model, _ = load_model(first)
    with torch.no_grad():
        assert (second(x)[0] - first_model(x)[0]).abs().max() > 1e-3  # the second adapters do something
    # full fine-tuning from it, at a rate of zero: its one checkpoint holds the merged weights
    check(engine("train", "--config", finetune_config(folder, dict(paths, base=first), "full-on-lora", lr=0.0,
                                                      min_lr=0.0, max_steps=1, warmup_steps=0), cwd=folder))
    full, _ = load_model(layout.latest_checkpoint(os.path.join(str(folder), "full-on-lora")))
    assert all(torch.equal(full.state_dict()[k], merged[k]) for k in merged)
    # a chain that comes back to itself
    meta_path = os.path.join(first, layout.META)
    meta = json.load(open(meta_path, encoding="utf-8"))
    looped = dict(meta, lora=dict(meta["lora"], base=first))
    json.dump(looped, open(meta_path, "w", encoding="utf-8"))
    try:
        with pytest.raises(CheckpointError, match="loops back"):
            load_model(first)
    finally:
        json.dump(meta, open(meta_path, "w", encoding="utf-8"))
