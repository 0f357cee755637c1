"""`llm-studio` without a usable display: a message and exit code 2, never Qt's abort (exit 134)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from studio import display

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _stripped_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["HOME"] = env.get("HOME", "/tmp")
    env.update(extra)
    return env


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the display check is Linux's")
def test_no_display_at_all_says_so_and_exits_2(tmp_path):
    env = _stripped_env(HOME=str(tmp_path))
    out = subprocess.run([sys.executable, "-m", "studio"], env=env, cwd=REPO, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 2, out.stderr
    assert "llm-studio: no display found" in out.stderr
    assert "Aborted" not in out.stderr


def test_missing_libraries_are_named_with_their_debian_package():
    assert display.debian_package("libxcb-icccm.so.4") == "libxcb-icccm4"
    assert display.debian_package("libxcb-keysyms.so.1") == "libxcb-keysyms1"
    assert display.debian_package("libxkbcommon-x11.so.0") == "libxkbcommon-x11-0"
    assert display.debian_package("libxcb-render-util.so.0") == "libxcb-render-util0"
    assert display.debian_package("libglib-2.0.so.0") == "libglib2.0-0"
    assert display.debian_package("libQt6XcbQpa.so.6") is None
    for package in ("libxcb-icccm4", "libxcb-keysyms1", "libxcb-cursor0", "libxkbcommon-x11-0"):
        assert package in display.APT_HINT  # the README's list and the message's agree


def test_ldd_output_parsing_lists_every_missing_library():
    text = ("\tlinux-vdso.so.1 (0x00007ffd)\n\tlibxcb-cursor.so.0 => not found\n"
            "\tlibxcb-icccm.so.4 => not found\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x7f)\n"
            "\tlibxcb-cursor.so.0 => not found\n")
    assert display.parse_ldd(text) == ["libxcb-cursor.so.0", "libxcb-icccm.so.4"]


@pytest.mark.skipif(display.xcb_plugin_path() is None, reason="this PySide6 has no xcb plugin")
def test_a_plugin_whose_libraries_are_missing_is_named(tmp_path, monkeypatch, capsys):
    # A copy of libqxcb.so away from PySide6's tree cannot find Qt's own libraries ($ORIGIN/../../lib):
    # exactly the situation of a missing system library, with a real plugin and the real loader.
    plugin = str(tmp_path / "libqxcb.so")
    shutil.copy(display.xcb_plugin_path(), plugin)
    missing = display.missing_libraries(plugin)
    assert any(name.startswith("libQt6XcbQpa") for name in missing), missing
    problem = display.display_problem({"DISPLAY": ":99"}, plugin=plugin)
    assert problem is not None and "libQt6XcbQpa" in problem and "libxcb-icccm4" in problem
    # the entry point turns it into exit code 2 before any QApplication exists
    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.setattr(display, "xcb_plugin_path", lambda: plugin)
    from studio.__main__ import main

    assert main([]) == 2
    assert "llm-studio: Qt's xcb platform cannot load: " in capsys.readouterr().err


def test_offscreen_and_wayland_are_not_second_guessed():
    assert display.display_problem({"QT_QPA_PLATFORM": "offscreen"}) is None
    assert display.display_problem({"WAYLAND_DISPLAY": "wayland-0"}) is None


def test_the_readme_names_every_library_the_xcb_platform_needs():
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as fh:
        readme = fh.read()
    packages = display.APT_HINT.split("apt-get install ", 1)[1].split()
    assert "libxcb-icccm4" in packages and "libxcb-keysyms1" in packages and len(packages) == 24
    block = readme.split("sudo apt-get install ", 1)[1].split("```", 1)[0]
    assert block.replace("\\", " ").split() == packages
