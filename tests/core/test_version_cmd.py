"""`llm-train version`: the engine reports its own version and torch/CUDA build (what the About box shows)."""

from __future__ import annotations

import json
import platform

import torch

import core
from core.cli import main


def test_version_json_reports_this_engine(capsys):
    assert main(["version", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["version"] == core.__version__
    assert info["torch"] == torch.__version__
    assert info["cuda"] == torch.version.cuda
    assert info["cuda_available"] == torch.cuda.is_available()
    assert len(info["gpus"]) == (torch.cuda.device_count() if torch.cuda.is_available() else 0)
    assert info["python"] == platform.python_version()
    assert info["frozen"] is False  # from source; the bundle's smoke test checks the frozen case


def test_version_text_names_the_build(capsys):
    assert main(["version"]) == 0
    line = capsys.readouterr().out.strip()
    build = f"CUDA {torch.version.cuda} build" if torch.version.cuda else "CPU build"
    assert line.startswith(f"llm-train {core.__version__} ") and f"torch {torch.__version__}, {build}" in line
