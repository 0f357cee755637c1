"""`llm-train train/serve --threads N`: torch uses N CPU threads (the studio shares the cores with it)."""

from __future__ import annotations

import pytest
import torch

from core.cli import _set_threads, build_parser
from core.errors import EXIT_BAD_INPUT


@pytest.mark.parametrize("command", [["train", "--config", "x.yaml"], ["serve", "--checkpoint", "ck"]])
def test_threads_sets_torch_threads(command):
    before = torch.get_num_threads()
    args = build_parser().parse_args([*command, "--threads", "1"])
    try:
        _set_threads(args)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    assert build_parser().parse_args(command).threads == 0  # default: torch's own choice


def test_negative_threads_is_bad_input(capsys):
    from core.cli import main

    assert main(["train", "--config", "x.yaml", "--threads", "-2"]) == EXIT_BAD_INPUT
    assert "--threads: -2" in capsys.readouterr().err
