"""Whether a window can open at all, checked before the QApplication exists.

Qt aborts the process (SIGABRT, exit 134) when it finds no display or when its xcb platform plugin cannot
load one of its libraries, with a message that names only one of them. `display_problem()` says in words
what is missing (every library ldd reports as not found) so that `llm-studio` can exit with code 2 and a
message instead. Qt-free: it only locates PySide6's files.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import shutil
import subprocess
import sys

APT_HINT = ("on Debian/Ubuntu: sudo apt-get install libgl1 libegl1 libxkbcommon0 libxkbcommon-x11-0 "
            "libfontconfig1 libfreetype6 libglib2.0-0 libdbus-1-3 libx11-xcb1 libxcb1 libxcb-cursor0 "
            "libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-render0 "
            "libxcb-shape0 libxcb-shm0 libxcb-sync1 libxcb-util1 libxcb-xfixes0 libxcb-xkb1 fonts-dejavu-core")


IRREGULAR = {"libglib-2.0.so.0": "libglib2.0-0", "libGL.so.1": "libgl1", "libEGL.so.1": "libegl1",
             "libdbus-1.so.3": "libdbus-1-3", "libfontconfig.so.1": "libfontconfig1",
             "libfreetype.so.6": "libfreetype6", "libX11-xcb.so.1": "libx11-xcb1"}


def debian_package(soname: str) -> str | None:
    """The Debian/Ubuntu package that ships `soname` (by Debian's naming rule; None for Qt's own)."""
    if soname in IRREGULAR:
        return IRREGULAR[soname]
    if soname.startswith("libQt") or ".so." not in soname:
        return None
    stem, version = soname.split(".so.", 1)
    return f"{stem}{'-' if stem[-1].isdigit() else ''}{version.split('.')[0]}".lower()


def xcb_plugin_path() -> str | None:
    """PySide6's libqxcb.so, or None when PySide6 is not installed or has no xcb plugin."""
    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = list(spec.submodule_search_locations)[0]
    path = os.path.join(root, "Qt", "plugins", "platforms", "libqxcb.so")
    return path if os.path.exists(path) else None


def parse_ldd(text: str) -> list[str]:
    """The library names `ldd` reports as `not found`, in order, without repeats."""
    missing: list[str] = []
    for line in text.splitlines():
        if "not found" in line:
            name = line.strip().split(" ", 1)[0]
            if name and name not in missing:
                missing.append(name)
    return missing


def missing_libraries(plugin: str) -> list[str]:
    """The shared libraries `plugin` needs that cannot be loaded (all of them with ldd, else the first
    one the dynamic loader names)."""
    ldd = shutil.which("ldd")
    if ldd:
        try:
            out = subprocess.run([ldd, plugin], capture_output=True, text=True, timeout=20, check=False)
            return parse_ldd(out.stdout + out.stderr)
        except (OSError, subprocess.SubprocessError):
            pass
    try:
        ctypes.CDLL(plugin)
    except OSError as exc:  # "libxcb-cursor.so.0: cannot open shared object file: ..."
        return [str(exc).split(":", 1)[0].strip() or str(exc)]
    return []


def display_problem(environ: dict | None = None, plugin: str | None = None) -> str | None:
    """Why no window can open here (a sentence), or None when it looks possible."""
    env = os.environ if environ is None else environ
    if not sys.platform.startswith("linux"):
        return None
    platform = env.get("QT_QPA_PLATFORM", "")
    if platform and not platform.startswith("xcb"):
        return None  # offscreen, wayland, vnc ...: Qt's own choice, nothing to check here
    if not platform and env.get("WAYLAND_DISPLAY"):
        return None
    if not env.get("DISPLAY"):
        return ("no display found: neither DISPLAY nor WAYLAND_DISPLAY is set (run it in a desktop session, "
                "under Xvfb, or set QT_QPA_PLATFORM=offscreen for a window nobody sees)")
    plugin = plugin or xcb_plugin_path()
    if plugin is None:
        return None
    missing = missing_libraries(plugin)
    if missing:
        packages = [p for p in (debian_package(m) for m in missing) if p]
        needed = f"sudo apt-get install {' '.join(packages)} (" if packages else "("
        return (f"Qt's xcb platform cannot load: {', '.join(missing)} (needed by {plugin}); "
                f"{needed}the whole list, {APT_HINT})")
    return None
