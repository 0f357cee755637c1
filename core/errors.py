"""Errors every engine command shares, and the exit codes they map to. Torch-free (the studio imports it).

Exit codes: 0 success (also a graceful stop), 1 a failure during a run (an `error` event says why), 2 bad
input (config, paths, arguments, damaged files) with a message naming the file, field or value.
"""

from __future__ import annotations

EXIT_OK, EXIT_FAIL, EXIT_BAD_INPUT = 0, 1, 2

#: Longest value quoted inside a message; longer ones are cut with "...(N chars)".
MAX_QUOTED = 200
EXTRA_HINT = "install the interop extra: pip install -e '.[interop]'"
# The desktop bundle carries gguf (GGUF import and export) but not transformers / onnx / onnxruntime, and its
# users have no pip to run: they are told what the build lacks and where the full set comes from.
BUNDLE_HINT = ("this desktop build does not include it; the Python install has it: "
               "pip install 'llm-training-studio[interop]' (see the README)")


def missing_package_message(what: str, packages: list[str]) -> str:
    """"GGUF export needs the Python package 'gguf', which is not installed; <what to do>": the extra to
    install, or in the desktop bundle (sys.frozen) that this build lacks it. The engine (core.interop.require)
    and the studio's Export dialog both say it."""
    import sys

    hint = BUNDLE_HINT if getattr(sys, "frozen", False) else EXTRA_HINT
    names = ", ".join(repr(name) for name in packages)
    return f"{what} needs the Python package {names}, which is not installed; {hint}"


class UsageError(Exception):
    """Bad input found by a command: printed as one clear message, exit code 2. `field` names the config
    field (dotted path) when there is one, so the studio can mark it."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class CheckpointError(UsageError):
    """A folder that is not a usable checkpoint; the message names the path and what is wrong."""


class DataError(UsageError):
    """A data folder or input that cannot be used; the message names the file."""


def quote(value: object, limit: int = MAX_QUOTED) -> str:
    """repr() of a value for a message, capped so a huge value never floods (or exhausts) anything."""
    try:
        text = repr(value)
    except ValueError:  # an int beyond Python's digit limit (10**5000) cannot even be printed
        text = f"<{type(value).__name__} too large to print>"
    if len(text) > limit:
        return f"{text[:limit]}...({len(text)} chars)"
    return text
