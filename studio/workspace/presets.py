"""Which shipped preset a run's config was made from, so the Config tab's Preset box follows the selected
run: the preset whose whole `model` section the config has (the architecture is what a preset names;
training settings are tuned afterwards), the one agreeing on most `train` values when several do.

Qt-free; reads YAML with core.config.safe_yaml (no anchors or aliases).
"""

from __future__ import annotations

import os

import yaml

from core import config_text as ct
from core import layout
from core.config import ConfigError, safe_yaml


def _sections(text: str) -> dict:
    try:
        data = safe_yaml(text)
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


def matching_preset(config_text: str, presets: dict[str, str]) -> str | None:
    """The name of the preset (`{name: file path}`) the config follows, or None."""
    cfg = _sections(config_text)
    model, train = cfg.get("model") or {}, cfg.get("train") or {}
    if not isinstance(model, dict) or not model:
        return None
    best, best_score = None, -1
    for name, path in sorted(presets.items()):
        try:
            with open(path, encoding="utf-8") as fh:
                preset = _sections(fh.read())
        except OSError:
            continue
        pmodel, ptrain = preset.get("model") or {}, preset.get("train") or {}
        if not pmodel or any(model.get(k) != v for k, v in pmodel.items()):
            continue
        score = sum(1 for k, v in ptrain.items() if isinstance(train, dict) and train.get(k) == v)
        if score > best_score:
            best, best_score = name, score
    return best


def keep_own_data(preset: str, current: str, base_dir: str, name: str) -> tuple[str, str]:
    """`preset` (a preset's text) with the `current` config's data.dir where the preset's is not a prepared
    data set under `base_dir` and the current one is (the user's data is not the preset's to choose), and a
    notice saying what was kept ("" when the preset is taken as it is)."""
    def data_dir(text: str) -> str:
        data = _sections(text).get("data")
        value = data.get("dir") if isinstance(data, dict) else None
        return value if isinstance(value, str) else ""

    theirs, ours = data_dir(preset), data_dir(current)
    prepared = lambda d: bool(d) and layout.is_data_dir(os.path.join(base_dir, d))  # noqa: E731
    if not ours or theirs == ours or prepared(theirs) or not prepared(ours):
        return preset, ""
    try:
        text = ct.set_value(preset, "data.dir", ours)
    except ConfigError:
        return preset, ""
    train = _sections(preset).get("train")
    target = train.get("target_val_loss") if isinstance(train, dict) else None
    # a loss is a figure of its data set (1.89 per character is no goal for a 4,096-token BPE: ~4.7 there)
    caveat = (f" Its train.target_val_loss ({target}) was chosen for {theirs}: on other data the run may never "
              f"reach it, and then trains its max_steps." if isinstance(target, (int, float)) else "")
    return text, (f"Loaded the preset {name}, keeping this run's data.dir {ours}: the preset's {theirs} is "
                  f"not prepared in this workspace (prepare it on the Data tab to train on it).{caveat}")
