"""Moving a folder to the desktop's trash (the freedesktop.org Trash specification on Linux), so a
deleted run can be restored from the file manager.

Qt-free. Files go to $XDG_DATA_HOME/Trash/files/NAME with Trash/info/NAME.trashinfo saying where they came
from and when; NAME gets a suffix when the trash already holds one.
"""

from __future__ import annotations

import os
import shutil
import time
import urllib.parse


def home_trash() -> str:
    data_home = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(data_home, "Trash")


def move_to_trash(path: str, trash: str | None = None) -> str:
    """Move `path` into the trash; returns where it now is. Raises OSError when it cannot."""
    path = os.path.abspath(path)
    if not os.path.lexists(path):
        raise FileNotFoundError(path)
    trash = trash or home_trash()
    files, info = os.path.join(trash, "files"), os.path.join(trash, "info")
    os.makedirs(files, mode=0o700, exist_ok=True)
    os.makedirs(info, mode=0o700, exist_ok=True)
    base = os.path.basename(path)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    body = f"[Trash Info]\nPath={urllib.parse.quote(path)}\nDeletionDate={stamp}\n"
    for i in range(1, 10000):
        name = base if i == 1 else f"{base}.{i}"
        try:  # O_EXCL reserves the name: the spec's way to avoid two deletions racing for it
            fd = os.open(os.path.join(info, name + ".trashinfo"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(body)
        target = os.path.join(files, name)
        if os.path.lexists(target):
            os.unlink(os.path.join(info, name + ".trashinfo"))
            continue
        try:
            shutil.move(path, target)  # a rename on the same file system
        except OSError:
            os.unlink(os.path.join(info, name + ".trashinfo"))
            raise
        return target
    raise OSError(f"the trash already holds too many items named {base}")
