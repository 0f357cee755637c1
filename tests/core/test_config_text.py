"""core.config_text: edits keep comments, blank lines and key order; values read back through core.config."""

from __future__ import annotations

import glob
import os
import re
import subprocess
import sys
import time

import pytest
import yaml
from engine_helpers import ROOT, engine

from core import config_text as ct
from core.config import Config, ConfigError, field_docs, load_config, loads

PRESETS = sorted(glob.glob(os.path.join(ROOT, "resources", "presets", "*.yaml")))

COMMENTED = """\
# my run: a header comment
model:
  n_layer: 3   # transformer blocks
  n_head: 4
  n_embd: 64

# --- training ---
train:
  lr: 1.0e-05  # peak
  min_lr: 1.0e-06
  betas:
  - 0.9
  - 0.95
  device: cpu
run:
  dir: .       # this folder
# the end
"""

# (dotted path, value): floats (3e-4 and 1e-8 have no dot in repr), booleans, null, lists, awkward strings
VALUES = [("train.lr", 3e-4), ("train.eps", 1e-8), ("train.min_lr", 1e-20), ("model.dropout", 0.1),
          ("model.mlp_ratio", 4.0), ("train.weight_decay", 0.0), ("model.bias", True),
          ("train.compile", False), ("model.vocab_size", None), ("model.vocab_size", 50304),
          ("train.betas", [0.8, 0.999]), ("train.betas", (0.9, 1e-3)), ("data.dir", "yes"),
          ("data.dir", "010"), ("data.dir", "null"), ("data.dir", "a #b"), ("train.sample_prompt", ""),
          ("train.sample_prompt", "\n"), ("run.attention_probe", "a\nb: c\t'd' \"e\""),
          ("train.init_from", "../r/checkpoints/step-000010"), ("train.max_steps", 777),
          ("train.schedule", "linear"), ("data.dir", " padded ")]


def _comments(text: str) -> list[str]:
    lines = [re.sub(r"'[^']*'|\"[^\"]*\"", "", line) for line in text.splitlines()]  # a '#' inside quotes
    return [line[line.index("#"):] for line in lines if "#" in line]


def _keys(text: str) -> list[str]:
    """Dotted keys in the order the text lists them."""
    out, section = [], None
    for line in text.splitlines():
        m = re.match(r"^(\s*)([A-Za-z_]\w*):", line)
        if m:
            section = m.group(2) if not m.group(1) else section
            out.append(m.group(2) if not m.group(1) else f"{section}.{m.group(2)}")
    return out


def _flat(text: str) -> dict:
    return {f"{s}.{k}": v for s, sec in loads(text).to_dict().items() for k, v in sec.items()}


@pytest.mark.parametrize("source", [COMMENTED, *[open(p, encoding="utf-8").read() for p in PRESETS]],
                         ids=["commented", *[os.path.basename(p) for p in PRESETS]])
@pytest.mark.parametrize("path,value", VALUES)
def test_one_change_keeps_comments_order_and_every_other_value(source, path, value):
    out = ct.set_value(source, path, value)
    want = list(value) if isinstance(value, tuple) else value
    got = _flat(out)[path]
    assert got == want and type(got) is type(want) or (value is None and got is None)
    assert yaml.safe_load(out)[path.split(".")[0]][path.split(".")[1]] == want  # no help from the loader
    before, after = _flat(source), _flat(out)
    assert {k: v for k, v in after.items() if k != path} == {k: v for k, v in before.items() if k != path}
    assert _comments(out) == _comments(source)
    old_keys = _keys(source)
    assert [k for k in _keys(out) if k in old_keys] == old_keys
    if path in old_keys and before[path] == want:
        assert out == source  # nothing to change: not a byte changes
    elif path in old_keys:  # a changed value is one changed line (two for a block list written as a block)
        changed = set(out.splitlines()) - set(source.splitlines())
        assert 1 <= len(changed) <= 2, changed


def test_untouched_text_is_byte_identical():
    preset = open(PRESETS[0], encoding="utf-8").read()
    for text in (COMMENTED, preset):
        assert ct.apply_changes(text, {}) == text
        assert ct.apply_changes(text, _flat_of_text(text)) == text  # the values it already has
    assert ct.set_value("train:\n  lr: 3e-4  # as a person wrote it\n", "train.lr", 3e-4) == \
        "train:\n  lr: 3e-4  # as a person wrote it\n"


def _flat_of_text(text: str) -> dict:
    raw = yaml.safe_load(text)
    return {f"{s}.{k}": v for s, sec in raw.items() for k, v in sec.items()
            if not (isinstance(v, str) and re.match(r"^[\d.]+e", v))}


def test_a_missing_key_goes_where_the_dataclass_puts_it():
    out = ct.apply_changes(COMMENTED, {"train.eps": 1e-6, "train.batch_size": 4, "model.dropout": 0.2,
                                       "train.seed": 3})
    keys = _keys(out)
    assert keys.index("train.batch_size") < keys.index("train.lr")  # batch_size comes first in TrainConfig
    assert keys.index("train.betas") < keys.index("train.eps") < keys.index("train.device")
    assert keys.index("train.seed") < keys.index("train.device") < keys.index("run")
    assert keys.index("model.n_embd") < keys.index("model.dropout") < keys.index("train")
    assert _comments(out) == _comments(COMMENTED)
    # the comment lines that stood before `train:` still do
    assert out.index("dropout") < out.index("# --- training ---") < out.index("train:")
    assert loads(out).train.eps == 1e-6 and loads(out).model.dropout == 0.2


def test_a_missing_section_goes_in_section_order():
    out = ct.apply_changes(COMMENTED, {"data.dir": "../../data/demo", "run.save_attention": False})
    assert [k for k in _keys(out) if "." not in k] == ["model", "data", "train", "run"]
    assert out.index("data:") < out.index("# --- training ---") < out.index("train:")
    assert out.rstrip().endswith("# the end") and _comments(out) == _comments(COMMENTED)
    assert loads(out).data.dir == "../../data/demo" and loads(out).run.save_attention is False


def test_empty_and_comment_only_text():
    assert loads(ct.set_value("", "model.n_layer", 3)).model.n_layer == 3
    out = ct.set_value("# just a note\n", "train.lr", 2e-3)
    assert out.startswith("# just a note\n") and loads(out).train.lr == 2e-3


def test_flow_sections_and_four_space_indent_are_kept():
    out = ct.set_value("train: {lr: 1.0e-3, max_steps: 5}  # flow\n", "train.max_steps", 7)
    assert out == "train: {lr: 1.0e-3, max_steps: 7}  # flow\n"
    text = "model:\n    n_layer: 2\ntrain:\n    betas:\n        - 0.9\n        - 0.95\n"
    out = ct.set_value(text, "model.n_head", 2)
    assert out == "model:\n    n_layer: 2\n    n_head: 2\ntrain:\n    betas:\n        - 0.9\n        - 0.95\n"


def test_dump_new_is_block_style_in_dataclass_order():
    text = ct.dump_new(Config())
    assert loads(text) == Config()
    assert _keys(text) == [k for s in ("model", "data", "train", "run") for k in
                           [s, *[p for p in field_docs() if p.startswith(s + ".")]]]
    assert "{" not in text and "betas: [0.9, 0.95]" in text
    shuffled = {"train": {"lr": 0.5, "batch_size": 2}, "model": {"n_head": 4, "n_layer": 1}}
    assert _keys(ct.dump_new(shuffled)) == ["model", "model.n_layer", "model.n_head", "train", "train.batch_size",
                                            "train.lr"]


def test_overrides_use_the_set_parser_and_agree_with_load_config(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(COMMENTED)
    overrides = ["train.lr=3e-4", "model.n_layer=4", "train.betas=[0.8, 0.9]", "model.vocab_size=",
                 "train.device=cpu", "data.dir=somewhere", "train.lr=2e-4"]
    out = ct.apply_overrides(COMMENTED, overrides)
    assert loads(out) == load_config(str(path), overrides, resolve=False)
    assert _comments(out) == _comments(COMMENTED) and re.search(r"\n  lr: 0.0002 +# peak\n", out)
    assert ct.parse_override("train.lr=3e-4") == ("train.lr", "3e-4")  # YAML 1.1 text, as --set reads it
    for bad in ("train.lr", "lr=3", "a.b.c=1", "train.lr=[1"):
        with pytest.raises(ConfigError, match="--set"):
            ct.apply_overrides(COMMENTED, [bad])


def test_remove_value_and_key_line():
    out = ct.remove_value(COMMENTED, "model.n_embd")
    assert "n_embd" not in out and _comments(out) == _comments(COMMENTED)
    assert out.index("n_head") < out.index("# --- training ---")
    assert ct.remove_value(COMMENTED, "train.nothing") == COMMENTED
    assert ct.key_line(COMMENTED, "model.n_head") == 3 and ct.key_line(COMMENTED, "train") == 7
    assert ct.key_line(COMMENTED, "train.eps") is None and ct.key_line("a: [1", "a") is None


def test_anchors_aliases_and_bad_text_are_refused_quickly():
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(9))
    start = time.process_time()
    with pytest.raises(ConfigError, match="anchors and aliases"):
        ct.set_value(bomb, "train.lr", 1.0)
    assert time.process_time() - start < 5  # 9**10 strings if it were expanded
    with pytest.raises(ConfigError, match="anchors and aliases"):
        ct.set_value("train: &t {lr: 1.0}\n", "train.lr", 2.0)
    with pytest.raises(ConfigError, match="invalid YAML"):
        ct.set_value("model: [1, 2\n", "model.n_layer", 3)
    with pytest.raises(ConfigError, match="duplicate key"):
        ct.set_value("model:\n  n_layer: 2\n  n_layer: 3\n", "model.n_layer", 3)
    with pytest.raises(ConfigError, match="expected a mapping"):
        ct.set_value("- 1\n", "model.n_layer", 3)


def test_a_huge_value_is_never_quoted_in_full():
    huge = "x" * 100_000
    with pytest.raises(ConfigError) as info:
        ct.set_value(f"train: {huge}\n", "train.lr", 1.0)
    assert "train" in str(info.value) and len(str(info.value)) < 1000
    assert loads(ct.set_value("", "run.attention_probe", huge)).run.attention_probe == huge


def test_save_run_configs_keeps_a_run_folders_own_config_untouched(tmp_path):
    run_dir = tmp_path / "runs" / "r"
    run_dir.mkdir(parents=True)
    text = COMMENTED.replace("run:\n", "data:\n  dir: ../../data  # shared\nrun:\n")
    (run_dir / "config.yaml").write_text(text)
    inode = os.stat(run_dir / "config.yaml").st_ino
    cfg = load_config(str(run_dir / "config.yaml"))
    ct.save_run_configs(cfg, str(run_dir / "config.yaml"))
    assert (run_dir / "config.yaml").read_text() == text and os.stat(run_dir / "config.yaml").st_ino == inode
    assert load_config(str(run_dir / "config.resolved.yaml")) == cfg
    ct.save_run_configs(load_config(str(run_dir / "config.yaml"), ["train.lr=5e-4"]), str(run_dir / "config.yaml"),
                        ["train.lr=5e-4"])
    assert (run_dir / "config.yaml").read_text() == text.replace("lr: 1.0e-05  # peak", "lr: 0.0005   # peak")
    assert sorted(os.listdir(run_dir)) == ["config.resolved.yaml", "config.yaml"]  # no temp files left


def test_set_save_keeps_the_source_comments(tmp_path):
    """`llm-train train --config C --set ...` records C's text with the overrides applied in place."""
    prep = engine("prepare", "--input", "@synthetic:200K", "--tokenizer", "char", "--out", "data", cwd=tmp_path)
    assert prep.returncode == 0, prep.stderr
    source = """\
# a tiny run, with notes that must survive
model:
  n_layer: 2   # two blocks
  n_head: 2
  n_embd: 32   # width
  block_size: 32
data:
  dir: data    # next to this file

# --- training ---
train:
  batch_size: 4
  max_steps: 3
  lr: 1.0e-3   # peak
  warmup_steps: 0
  eval_interval: 0
  eval_steps: 1
  device: cpu
  precision: fp32
run:
  dir: runs/r  # where it writes
  save_attention: false
"""
    (tmp_path / "c.yaml").write_text(source)
    res = engine("train", "--config", "c.yaml", "--set", "train.max_steps=4", "--set", "train.lr=3e-4",
                 "--set", "model.dropout=0.1", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    run_dir = tmp_path / "runs" / "r"
    saved = (run_dir / "config.yaml").read_text()
    assert _comments(saved) == _comments(source)
    assert [k for k in _keys(saved) if k in _keys(source)] == _keys(source)
    cfg = loads(saved, base_dir=str(run_dir))  # paths now relative to the run folder
    assert (cfg.train.max_steps, cfg.train.lr, cfg.model.dropout) == (4, 3e-4, 0.1)
    assert cfg.data.dir == str(tmp_path / "data") and cfg.run.dir == str(run_dir)
    resolved = load_config(str(run_dir / "config.resolved.yaml"))
    assert cfg.replace(model=resolved.model) == resolved and resolved.model.vocab_size  # vocab from the data
    assert (tmp_path / "c.yaml").read_text() == source  # the source file itself is left alone


def test_config_text_imports_no_torch_and_no_qt():
    """The studio imports it: it belongs to the torch-free contract (docs/ARCHITECTURE.md)."""
    code = ("import sys, core.config_text; "
            "print(','.join(m for m in ('torch', 'numpy', 'tokenizers', 'PySide6') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == ""
