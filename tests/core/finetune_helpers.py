"""Shared set-up for the fine-tuning and evaluation tests: a synthetic "reverse: abc" -> "cba" task, a
char tokenizer covering it, and a base checkpoint (one pre-training step: practically random weights)."""

from __future__ import annotations

import itertools
import json
import os
import random

from engine_helpers import engine, write_config

MODEL = {"n_layer": 2, "n_head": 4, "n_embd": 64, "block_size": 48}


def check(result):
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def reverse_task(folder, markers: bool = True) -> dict:
    """Files and folders of the task in `folder`: corpus (text), sft.jsonl (180 words), pairs.jsonl (36
    held-out words), the prepared text data, the base checkpoint and the prepared SFT data. Without
    `markers` the corpus has none of the built-in template's '<', '|', '>' (but the role names' letters)."""
    rng = random.Random(0)
    words = ["".join(p) for p in itertools.product("abcdef", repeat=3)]
    rng.shuffle(words)
    train, held_out = words[:180], words[180:]
    paths = {k: os.path.join(str(folder), k) for k in ("corpus.txt", "sft.jsonl", "pairs.jsonl")}
    with open(paths["corpus.txt"], "w", encoding="utf-8") as fh:  # only to give the tokenizer its characters
        a, b = ("<|", "|>") if markers else ("", ":")
        fh.writelines(f"{a}user{b}\nreverse: {w}\n{a}assistant{b}\n{w[::-1]}\n" for w in words)
        fh.write("system\n")
    with open(paths["sft.jsonl"], "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps({"prompt": f"reverse: {w}", "completion": w[::-1]}) + "\n" for w in train)
    with open(paths["pairs.jsonl"], "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps({"prompt": f"reverse: {w}", "reference": w[::-1]}) + "\n" for w in held_out)
    check(engine("prepare", "--input", paths["corpus.txt"], "--out", "text", "--tokenizer", "char",
                 cwd=folder))
    write_config(folder, "text", model=MODEL, train={"max_steps": 1, "warmup_steps": 0}, run={"dir": "base"},
                 name="base.yaml")
    check(engine("train", "--config", "base.yaml", cwd=folder))
    paths["base"] = os.path.join(str(folder), "base", "checkpoints", "step-000001")
    check(engine("prepare", "--input", paths["sft.jsonl"], "--format", "sft", "--tokenizer-from", paths["base"],
                 "--out", "sft", cwd=folder))
    paths["sft"] = os.path.join(str(folder), "sft")
    return paths


def finetune_config(folder, paths: dict, name: str, **train) -> str:
    t = {"max_steps": 300, "warmup_steps": 10, "lr": 3e-3, "min_lr": 1e-4, "batch_size": 32,
         "init_from": paths["base"], "finetune": "full", **train}
    return write_config(folder, paths["sft"], model=MODEL, train=t, run={"dir": name}, name=f"{name}.yaml")


def pairs_eval(folder, checkpoint: str, pairs: str) -> dict:
    r = check(engine("eval", "--checkpoint", checkpoint, "--pairs", pairs, "--json", "--max-new-tokens", "6",
                     cwd=folder))
    return json.loads(r.stdout)
