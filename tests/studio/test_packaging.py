"""The desktop bundle's pieces, checked from source (no build): the entry script's dispatch, the frozen
engine commands (torchrun included, run for real through the entry script), the icons and the About box."""

from __future__ import annotations

import importlib.util
import json
import os
import struct
import subprocess
import sys

import pytest

from studio.engine import command

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENTRY = os.path.join(ROOT, "packaging", "entry.py")
ICONS = os.path.join(ROOT, "resources", "icons")


def _load(name: str, path: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def frozen(monkeypatch, tmp_path):
    """Pretend to be the bundle: sys.frozen set and sys.executable a stand-in for its executable that runs
    packaging/entry.py with this interpreter (so commands built for the bundle can really run)."""
    exe = tmp_path / "llm-studio"
    exe.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{ENTRY}" "$@"\n')
    exe.chmod(0o755)
    monkeypatch.delenv("LLM_STUDIO_ENGINE", raising=False)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(exe))
    return str(exe)


def test_entry_routes_each_subcommand(monkeypatch):
    entry = _load("llm_studio_entry", ENTRY)
    calls = []
    import core.cli
    import studio.__main__
    import studio.engine.launcher

    monkeypatch.setattr(core.cli, "main", lambda argv: calls.append(("engine", argv)) or 11)
    monkeypatch.setattr(studio.engine.launcher, "main", lambda argv: calls.append(("launch", argv)) or 12)
    monkeypatch.setattr(studio.__main__, "main", lambda argv: calls.append(("studio", argv)) or 13)
    assert entry.main(["engine", "train", "--config", "c.yaml"]) == 11
    assert entry.main(["version", "--json"]) == 11
    assert entry.main(["launch", "/r", "--", "x"]) == 12
    assert entry.main([]) == 13
    assert entry.main(["/some/workspace", "--theme", "dark"]) == 13
    assert calls == [("engine", ["train", "--config", "c.yaml"]), ("engine", ["version", "--json"]),
                     ("launch", ["/r", "--", "x"]), ("studio", []),
                     ("studio", ["/some/workspace", "--theme", "dark"])]


def test_entry_script_runs_the_engine_from_source(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    helped = subprocess.run([sys.executable, ENTRY, "engine", "--help"], capture_output=True, text=True,
                            cwd=tmp_path, env=env, timeout=120)
    assert helped.returncode == 0, helped.stderr
    for sub in ("prepare", "train", "generate", "serve", "version"):
        assert sub in helped.stdout
    version = subprocess.run([sys.executable, ENTRY, "version", "--json"], capture_output=True, text=True,
                             cwd=tmp_path, env=env, timeout=120)
    assert version.returncode == 0, version.stderr
    info = json.loads(version.stdout)
    assert info["frozen"] is False and info["torch"] and info["executable"] == sys.executable


def test_frozen_commands_run_the_bundle_executable(frozen):
    exe = frozen
    assert command.engine_command("prepare", "--out", "d") == [exe, "engine", "prepare", "--out", "d"]
    assert command.launcher_command("/r", [exe, "engine", "train"]) == [exe, "launch", "/r", "--", exe,
                                                                         "engine", "train"]
    multi = command.engine_command("train", "--config", "c.yaml", nproc=2)
    assert multi == [exe, "torchrun", "--nproc_per_node=2", "--standalone", "--no-python", exe, "engine",
                     "train", "--config", "c.yaml"]
    node = command.torchrun_command(8, 2, 1, "10.0.0.1", 29500, "train", "--config", "c.yaml")
    assert node[:2] == [exe, "torchrun"] and "--node_rank=1" in node and "-m" not in node
    assert node[node.index("--no-python") + 1:node.index("--no-python") + 3] == [exe, "engine"]


@pytest.mark.skipif(sys.platform == "win32", reason="the stand-in executable is a POSIX shell script")
def test_frozen_torchrun_starts_every_worker_through_the_bundle(frozen, tmp_path):
    """The bundle's torchrun command, run for real: 2 workers, each the bundle's engine (`version --json`)."""
    argv = command.torchrun_command(2, 1, 0, "localhost", 0, "version", "--json", standalone=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(OMP_NUM_THREADS="1", LOGLEVEL="WARNING")
    out = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    # both workers write to the one pipe: their lines can come out as "{A}{B}\n\n" (one fresh-clone run in
    # many), so the answers are read as JSON objects one after the other, not line by line
    decoder, answers, at = json.JSONDecoder(), [], out.stdout.find("{")
    while at != -1:
        answer, end = decoder.raw_decode(out.stdout, at)
        answers.append(answer)
        at = out.stdout.find("{", end)
    assert len(answers) == 2 and all(a["torch"] for a in answers), out.stdout


def _png_size(path: str) -> tuple[int, int]:
    with open(path, "rb") as fh:
        head = fh.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", head[16:24])


def test_icons_exist_in_every_size_and_render_from_the_svg(tmp_path, qapp):
    icons = _load("make_icons", os.path.join(ROOT, "packaging", "make_icons.py"))
    for size in icons.SIZES:
        assert _png_size(os.path.join(ICONS, f"llm-studio-{size}.png")) == (size, size)
    written = icons.write_icons(str(tmp_path))
    assert len(written) == len(icons.SIZES) + 2
    ico = open(tmp_path / "llm-studio.ico", "rb").read()
    _reserved, kind, count = struct.unpack("<HHH", ico[:6])
    assert (kind, count) == (1, len(icons.ICO_SIZES))
    for i in range(count):
        w, _h, _c, _r, _planes, _bpp, length, offset = struct.unpack("<BBBBHHII", ico[6 + 16 * i:22 + 16 * i])
        assert ico[offset:offset + 8] == b"\x89PNG\r\n\x1a\n" and w == icons.ICO_SIZES[i] % 256
        assert offset + length <= len(ico)
    icns = open(tmp_path / "llm-studio.icns", "rb").read()
    assert icns[:4] == b"icns" and struct.unpack(">I", icns[4:8])[0] == len(icns)
    from PySide6.QtGui import QImage

    image = QImage(str(tmp_path / "llm-studio-64.png"))
    assert image.width() == 64 and image.pixelColor(32, 32).alpha() == 255  # drawn, not blank
    assert image.pixelColor(0, 0).alpha() == 0  # rounded corner stays transparent


def test_window_icon_comes_from_the_svg(qapp):
    from studio.app import create_application

    app = create_application(theme="light")
    assert not app.windowIcon().isNull()
    assert os.path.exists(command.resources_dir("icons", "llm-studio.svg"))


def test_about_dialog_shows_the_engines_build(qtbot, monkeypatch):
    from studio.controllers import engine_info
    from studio.views.common import about

    monkeypatch.delenv("LLM_STUDIO_ENGINE", raising=False)
    monkeypatch.setattr(engine_info, "_ANSWER", None)
    dialog = about.AboutDialog()
    qtbot.addWidget(dialog)
    assert "asking the engine" in dialog.label.text()
    with qtbot.waitSignal(dialog.engine_info_received, timeout=120000) as blocker:
        pass
    info = blocker.args[0]
    assert info is not None and info["version"] == about.studio_version
    text = dialog.label.text()
    assert f"torch {info['torch']}" in text and ("CPU build" if not info["cuda"] else f"CUDA {info['cuda']}") in text
    assert f"Version {about.studio_version}" in text
    again = about.AboutDialog()  # the answer is kept: no second engine process
    qtbot.addWidget(again)
    assert again.process is None and f"torch {info['torch']}" in again.label.text()


def test_about_dialog_says_when_the_engine_does_not_answer(qtbot, monkeypatch, tmp_path):
    from studio.controllers import engine_info
    from studio.views.common import about

    broken = tmp_path / "broken_engine.py"
    broken.write_text("import sys\nprint('no torch here', file=sys.stderr)\nsys.exit(3)\n")
    monkeypatch.setenv("LLM_STUDIO_ENGINE", f"{sys.executable} {broken}")
    monkeypatch.setattr(engine_info, "_ANSWER", None)
    dialog = about.AboutDialog()
    qtbot.addWidget(dialog)
    with qtbot.waitSignal(dialog.engine_info_received, timeout=30000) as blocker:
        pass
    assert blocker.args == [None]
    assert "did not answer (exit code 3) no torch here" in dialog.label.text()


def test_help_about_opens_the_dialog_from_the_main_window(qtbot, monkeypatch, workspace):
    from studio.controllers import engine_info
    from studio.main_window import MainWindow
    from studio.settings import Settings
    from studio.views.common import about

    monkeypatch.setattr(engine_info, "_ANSWER", {"version": about.studio_version, "torch": "9.9.9", "cuda": "12.8",
                                                "gpus": ["Test GPU"], "python": "3.11", "frozen": True})
    window = MainWindow(Settings())
    window.close_policy = "stop"
    qtbot.addWidget(window)
    window.open_workspace(workspace.root)
    action = next(a for menu in window.menuBar().actions() if menu.menu()
                  for a in menu.menu().actions() if a.text().replace("&", "").startswith("About"))
    action.trigger()
    dialog = window.findChild(about.AboutDialog)
    assert dialog is not None and dialog.isVisible()
    assert dialog.process is None  # answer already known: no engine started
    assert "Engine (bundled): torch 9.9.9, CUDA 12.8, GPUs: Test GPU" in dialog.label.text()
    dialog.accept()
