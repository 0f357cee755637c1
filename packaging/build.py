"""Build the desktop bundle on this machine's platform: the steps Linux, Windows and macOS share.

    python3 packaging/build.py [--build-dir DIR] [--dist-dir DIR] [--reuse-venv]

1. a fresh build virtualenv (BUILD_DIR/venv) with torch (TORCH_SPEC, from TORCH_INDEX_URL when set),
   the project itself (not editable, with its `gguf` extra) and PyInstaller;
2. the icons rendered from resources/icons/llm-studio.svg (make_icons.py);
3. PyInstaller with packaging/llm-studio.spec: a one-folder bundle in DIST_DIR/llm-studio
   (macOS: DIST_DIR/LLM Training Studio.app);
4. the download: Linux a .tar.gz with a .desktop file, the icons and install-desktop-entry.sh;
   Windows a .zip; macOS a .dmg (hdiutil);
5. DIST_DIR/build-report.json: seconds per step, folder and archive sizes.

Stdlib only, so any Python 3.10+ can run it. The CUDA variant is a build argument, e.g. on Linux
TORCH_SPEC=torch==2.13.0 TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 (see README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
APP = "llm-studio"
PYINSTALLER = "pyinstaller==6.22.3"


def version() -> str:
    with open(os.path.join(ROOT, "core", "__init__.py"), encoding="utf-8") as fh:
        return re.search(r'__version__\s*=\s*"([^"]+)"', fh.read()).group(1)


def venv_python(venv: str) -> str:
    return os.path.join(venv, "Scripts", "python.exe") if os.name == "nt" else os.path.join(venv, "bin", "python")


def run(argv: list[str], **kw) -> None:
    print("+", " ".join(argv), flush=True)
    subprocess.run(argv, check=True, **kw)


def folder_size(path: str) -> int:
    total = 0
    for base, _dirs, files in os.walk(path):
        for name in files:
            full = os.path.join(base, name)
            if not os.path.islink(full):
                total += os.path.getsize(full)
    return total


def make_venv(venv: str, reuse: bool) -> str:
    """The build virtualenv with torch, the project and PyInstaller; returns its python."""
    py = venv_python(venv)
    if reuse and os.path.exists(py):
        return py
    shutil.rmtree(venv, ignore_errors=True)
    run([sys.executable, "-m", "venv", venv])
    torch_spec = os.environ.get("TORCH_SPEC", "torch==2.13.0")
    index = os.environ.get("TORCH_INDEX_URL", "")
    # torch first and alone, so an index URL for its CUDA build applies to torch and nothing else.
    run([py, "-m", "pip", "install", "-q", torch_spec, *(["--index-url", index] if index else [])])
    # [gguf]: GGUF import / export (llama.cpp, Ollama, LM Studio) in the bundle; the rest of the interop extra
    # (transformers, onnx, onnxruntime) stays out of it: a bundle user is told so (core.interop.require)
    run([py, "-m", "pip", "install", "-q", f"{ROOT}[gguf]", PYINSTALLER])
    return py


def torch_variant(py: str) -> str:
    """'cpu' or 'cuda12.8': which torch build went into the venv (names the download)."""
    cuda = subprocess.run([py, "-c", "import torch; print(torch.version.cuda or '')"], check=True,
                          capture_output=True, text=True).stdout.strip()
    return f"cuda{cuda}" if cuda else "cpu"


def linux_archive(dist: str, icons: str, out: str) -> str:
    """The .tar.gz: the bundle folder plus a .desktop file, the icons and a per-user installer."""
    bundle = os.path.join(dist, APP)
    shutil.copy(os.path.join(HERE, "linux", "llm-studio.desktop"), bundle)
    shutil.copy(os.path.join(HERE, "linux", "install-desktop-entry.sh"), bundle)
    os.chmod(os.path.join(bundle, "install-desktop-entry.sh"), 0o755)
    shutil.copy(os.path.join(icons, "llm-studio-256.png"), os.path.join(bundle, "llm-studio.png"))
    # compresslevel 6: nearly the size of 9 at half the time on torch's large libraries.
    with tarfile.open(out, "w:gz", compresslevel=6) as tar:
        tar.add(bundle, arcname=APP)
    return out


def windows_archive(dist: str, out: str) -> str:
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for base, _dirs, files in os.walk(os.path.join(dist, APP)):
            for name in files:
                full = os.path.join(base, name)
                zf.write(full, os.path.relpath(full, dist))
    return out


def macos_archive(dist: str, out: str) -> str:
    app = os.path.join(dist, "LLM Training Studio.app")
    run(["hdiutil", "create", "-volname", "LLM Training Studio", "-srcfolder", app, "-ov",
         "-format", "UDZO", out])
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--build-dir", default=os.path.join(HERE, "build"))
    p.add_argument("--dist-dir", default=os.path.join(HERE, "dist"))
    p.add_argument("--reuse-venv", action="store_true", help="keep BUILD_DIR/venv if it exists")
    args = p.parse_args(argv)
    build, dist = os.path.abspath(args.build_dir), os.path.abspath(args.dist_dir)
    os.makedirs(build, exist_ok=True)
    times: dict[str, float] = {}

    t = time.perf_counter()
    py = make_venv(os.path.join(build, "venv"), args.reuse_venv)
    times["venv_s"] = time.perf_counter() - t

    t = time.perf_counter()
    icons = os.path.join(build, "icons")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", LLM_STUDIO_ICONS=icons)
    run([py, os.path.join(HERE, "make_icons.py"), "--out", icons], env=env)
    shutil.rmtree(dist, ignore_errors=True)
    run([py, "-m", "PyInstaller", "--noconfirm", "--clean", "--log-level", "WARN",
         "--distpath", dist, "--workpath", os.path.join(build, "pyinstaller"),
         os.path.join(HERE, "llm-studio.spec")], env=env)
    times["pyinstaller_s"] = time.perf_counter() - t

    t = time.perf_counter()
    variant = torch_variant(py)
    machine = platform.machine().lower().replace("amd64", "x86_64")
    stem = os.path.join(dist, f"{APP}-{version()}-{sys.platform.replace('win32', 'windows')}-{machine}-{variant}")
    if sys.platform == "win32":
        archive, folder = windows_archive(dist, stem + ".zip"), os.path.join(dist, APP)
    elif sys.platform == "darwin":
        archive, folder = macos_archive(dist, stem + ".dmg"), os.path.join(dist, "LLM Training Studio.app")
    else:
        archive, folder = linux_archive(dist, icons, stem + ".tar.gz"), os.path.join(dist, APP)
    times["archive_s"] = time.perf_counter() - t

    report = {"version": version(), "variant": variant, "platform": sys.platform, "bundle": folder,
              "bundle_bytes": folder_size(folder), "archive": archive,
              "archive_bytes": os.path.getsize(archive), **{k: round(v, 1) for k, v in times.items()}}
    with open(os.path.join(dist, "build-report.json"), "w", encoding="utf-8") as fh:
        json.dump(report, fh, indent=2)
    mib = 1024 * 1024
    print(f"bundle {folder}: {report['bundle_bytes'] / mib:.0f} MiB; {archive}: "
          f"{report['archive_bytes'] / mib:.0f} MiB; venv {times['venv_s']:.0f} s, PyInstaller "
          f"{times['pyinstaller_s']:.0f} s, archive {times['archive_s']:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
