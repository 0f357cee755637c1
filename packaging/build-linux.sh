#!/usr/bin/env bash
# Build the Linux bundle (packaging/dist/llm-studio/) and its .tar.gz from this checkout.
#   packaging/build-linux.sh [--reuse-venv] [--build-dir DIR] [--dist-dir DIR]
# TORCH_SPEC / TORCH_INDEX_URL pick the torch build (default torch==2.13.0, the CPU build here);
# PYTHON picks the interpreter the bundle is built from (default python3, 3.10 or newer).
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-python3}" packaging/build.py "$@"
