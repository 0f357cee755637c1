"""The layering rules: config/protocol stay torch-free, core never imports Qt, the README stays true."""

from __future__ import annotations

import ast
import os
import subprocess
import sys

from engine_helpers import ROOT

from core.config import field_docs


def test_config_and_protocol_import_no_torch():
    code = ("import sys, core.config, core.estimate, core.protocol, core.layout, core.errors, core.recipe, "
            "studio.engine.command; "
            "bad = [m for m in ('torch', 'tokenizers', 'numpy', 'PySide6') if m in sys.modules]; "
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == ""


def test_core_never_imports_qt():
    offenders = []
    for folder, _, names in os.walk(os.path.join(ROOT, "core")):
        for name in (n for n in names if n.endswith(".py")):
            tree = ast.parse(open(os.path.join(folder, name), encoding="utf-8").read())
            for node in ast.walk(tree):
                mods = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                offenders += [f"{name}: {m}" for m in mods
                              if m.split(".")[0] in ("PySide6", "PyQt5", "PyQt6", "pyqtgraph", "studio")]
    assert offenders == []
    assert os.path.isdir(os.path.join(ROOT, "core", "commands"))  # the walk did reach the sub-package


def test_readme_config_reference_lists_every_field():
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    table = readme.split("<!-- config-reference:start -->")[1].split("<!-- config-reference:end -->")[0]
    documented = {line.split("`")[1] for line in table.splitlines() if line.startswith("| `")}
    assert documented == set(field_docs())
