"""Fixtures for engine tests: a small prepared corpus, prepared once per session."""

from __future__ import annotations

import pytest
import torch

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def char_data(tmp_path_factory) -> str:
    """A char-level synthetic corpus (~300 KB) prepared once per session."""
    from core.data import prepare

    out = str(tmp_path_factory.mktemp("data") / "synthetic")
    prepare(["@synthetic:300K"], out, tokenizer="char", seed=1)
    return out


