"""What a training run measures at each evaluation: the mean loss on fixed batches of each split, and
(rank 0) a text sample and the attention snapshot of the probe text."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

from core import layout
from core.config import Config
from core.protocol import make_event
from core.trainer_setup import Trainer, make_batches


@torch.no_grad()
def estimate_loss(model, cfg: Config, train_data, val_data, device, ctx, rank: int, world: int) -> dict:
    """Mean loss over eval_steps fixed batches per split (same batches every eval), split across ranks."""
    t = cfg.train
    was_training = model.training
    model.eval()
    out = {}
    for split, data in (("train", train_data), ("val", val_data)):
        sampler = make_batches(data, cfg.model.block_size, t.batch_size, seed=1234, device=device)
        starts = sampler.draw(t.eval_steps)
        total = torch.zeros(2, device=device)  # (sum of losses, count)
        for k in range(rank, t.eval_steps, world):
            x, y = sampler.fetch(starts[k])
            with ctx:
                _, loss, _ = model(x, y)
            total += torch.stack([loss.float(), torch.ones((), device=device)])
        if world > 1:
            dist.all_reduce(total)
        out[split] = (total[0] / total[1].clamp(min=1)).item()
    model.train(was_training)
    return out


def probe(tr: Trainer) -> None:
    """The `sample` event (train.sample_tokens) and the attention snapshot (run.save_attention)."""
    t, run = tr.cfg.train, tr.cfg.run
    if not (t.sample_tokens or run.save_attention):
        return
    from core.data import load_tokenizer
    from core.generate import probe_attention, sample_text

    tr.tokenizer = tr.tokenizer or load_tokenizer(tr.cfg.data.dir)
    step = tr.state.step
    # under the run's autocast, as its steps: a LoRA run's frozen weights are stored in its dtype (core.lora)
    with tr.ctx:
        if t.sample_tokens:
            text = sample_text(tr.raw_model, tr.tokenizer, t.sample_prompt, t.sample_tokens, tr.device, seed=t.seed,
                               stop_ids=turn_end_ids(tr))
            tr.sinks.emit(make_event("sample", step=step, prompt=t.sample_prompt, text=text))
        if run.save_attention:
            path = os.path.join(run.dir, layout.ATTENTION, layout.snapshot_name(step))
            text = run.attention_probe or data_probe_text(tr.tokenizer, tr.val_data)
            probe_attention(tr.raw_model, tr.tokenizer, text, path, tr.device)
            tr.sinks.emit(make_event("attention", step=step, path=path))


def turn_end_ids(tr: Trainer) -> frozenset[int]:
    """The ids that end an answer in an instruction (SFT) run: what its fine-tuned checkpoint records as its
    EOS (core.lora.finetune_meta: the base's or the data's EOS, else the built-in template's newline);
    none for a plain corpus, whose samples run to their length."""
    if tr.data_meta.get("kind") != "sft":
        return frozenset()
    from core.chat import stop_ids
    from core.lora import finetune_meta

    return frozenset(stop_ids({"eos_token_id": finetune_meta(tr).get("eos_token_id")}))


def data_probe_text(tokenizer, val_data, max_tokens: int = 64) -> str:
    """The probe when run.attention_probe is empty: the start of the validation text, from its first line
    break when one comes early (a split starts mid-line), decoded in the data's own vocabulary, so that the
    snapshots show text like what the model learns from (a fixed English probe is unknown tokens to a
    character-level model of another corpus)."""
    ids = getattr(val_data, "ids", val_data)  # an instruction (SFT) split: examples, from the first one's start
    text = tokenizer.decode([int(i) for i in ids[:4 * max_tokens]])
    if ids is not val_data:
        return text
    cut = text.find("\n", 0, len(text) // 2)
    return text[cut + 1:] if cut >= 0 else text
