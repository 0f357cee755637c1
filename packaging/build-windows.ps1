# Build the Windows bundle (packaging\dist\llm-studio\llm-studio.exe) and its .zip from this checkout.
#   powershell -ExecutionPolicy Bypass -File packaging\build-windows.ps1 [-ReuseVenv]
# TORCH_SPEC / TORCH_INDEX_URL pick the torch build (default torch==2.13.0: PyPI's Windows wheel is the
# CPU build; TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 for CUDA). PYTHON picks the
# interpreter (default: python on PATH, 3.10 or newer). The steps themselves are packaging/build.py.
param([switch]$ReuseVenv)
$ErrorActionPreference = "Stop"
Set-Location (Split-Path -Parent $PSScriptRoot)
$python = if ($env:PYTHON) { $env:PYTHON } else { "python" }
$buildArgs = @("packaging\build.py")
if ($ReuseVenv) { $buildArgs += "--reuse-venv" }
& $python @buildArgs
exit $LASTEXITCODE
