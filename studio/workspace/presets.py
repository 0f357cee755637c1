"""Which shipped preset a run's config was made from, so the Config tab's Preset box follows the selected
run: the preset whose whole `model` section the config has (the architecture is what a preset names;
training settings are tuned afterwards), the one agreeing on most `train` values when several do.

Qt-free; reads YAML with core.config.safe_yaml (no anchors or aliases).
"""

from __future__ import annotations

import yaml

from core.config import safe_yaml


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
