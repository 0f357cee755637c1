"""Where a file picker opens: beside a path the user already chose, else the home folder (never the folder
the studio happened to be started from, Qt's default)."""

from __future__ import annotations

import os
from collections.abc import Iterable


def start_folder(paths: Iterable[str]) -> str:
    """The folder holding the first of `paths` whose folder exists; the home folder if none does."""
    for path in paths:
        folder = os.path.dirname(os.path.normpath(os.path.expanduser(path))) if path else ""
        if folder and os.path.isdir(folder):
            return folder
    return os.path.expanduser("~")
