#!/usr/bin/env bash
# Build the macOS app (packaging/dist/LLM Training Studio.app) and its .dmg from this checkout.
#   packaging/build-macos.sh [--reuse-venv]
# Build on the architecture you ship (an arm64 runner gives an Apple-silicon app with MPS; torch has no
# universal2 wheels). TORCH_SPEC picks the torch build (default torch==2.13.0 from PyPI); PYTHON picks the
# interpreter (a python.org or Homebrew Python 3.10+). The steps themselves are packaging/build.py.
# The app is not signed: first start with right-click > Open, or sign it with
#   codesign --deep --force --options runtime --sign "Developer ID Application: ..." "dist/LLM Training Studio.app"
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-python3}" packaging/build.py "$@"
