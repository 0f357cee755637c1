"""Moving a folder to the desktop's trash (the freedesktop.org Trash specification on Linux), so a
deleted run can be restored from the file manager.

Qt-free. Files go to $XDG_DATA_HOME/Trash/files/NAME with Trash/info/NAME.trashinfo saying where they came
from and when; NAME gets a suffix when the trash already holds one. A folder on another file system than the
home trash goes to that file system's own trash, $topdir/.Trash-$uid (the specification's per-volume trash,
its Path relative to $topdir), so that trashing is always a rename: never a copy of gigabytes of checkpoints,
never a half-copied leftover (review finding 13). Where neither works, OSError says so and nothing moves.
"""

from __future__ import annotations

import os
import time
import urllib.parse


def home_trash() -> str:
    data_home = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(data_home, "Trash")


def _device(path: str) -> int:
    """st_dev of `path`, or of its nearest existing parent (the home trash may not exist yet)."""
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    return os.stat(path).st_dev


def _mount_point(path: str) -> str:
    """The top directory of the file system holding `path`."""
    path = os.path.realpath(path)
    dev = os.stat(path).st_dev
    while os.path.dirname(path) != path and os.stat(os.path.dirname(path)).st_dev == dev:
        path = os.path.dirname(path)
    return path


def trash_for(path: str) -> tuple[str, str | None]:
    """(trash folder, top directory for relative Path= entries or None) for `path`: the home trash when it
    is on the same file system, else $topdir/.Trash-$uid, created if need be (OSError when it cannot be)."""
    home = home_trash()
    if _device(path) == _device(home):
        return home, None
    top = _mount_point(path)
    trash = os.path.join(top, f".Trash-{os.getuid()}")
    try:
        os.makedirs(trash, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise OSError(f"{path} is on another disk than the home trash, and that disk's trash {trash} cannot "
                      f"be made ({exc.strerror or exc}); nothing was moved") from None
    return trash, top


def move_to_trash(path: str, trash: str | None = None) -> str:
    """Move `path` into the trash (by renaming: see the module's docstring); returns where it now is.
    Raises OSError when it cannot, with `path` left where it was."""
    path = os.path.abspath(path)
    if not os.path.lexists(path):
        raise FileNotFoundError(path)
    top = None
    if trash is None:
        trash, top = trash_for(path)
    files, info = os.path.join(trash, "files"), os.path.join(trash, "info")
    os.makedirs(files, mode=0o700, exist_ok=True)
    os.makedirs(info, mode=0o700, exist_ok=True)
    base = os.path.basename(path)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    where = os.path.relpath(os.path.realpath(path), top) if top else path
    body = f"[Trash Info]\nPath={urllib.parse.quote(where)}\nDeletionDate={stamp}\n"
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
            os.rename(path, target)  # the same file system: never a copy
        except OSError:
            os.unlink(os.path.join(info, name + ".trashinfo"))
            raise
        return target
    raise OSError(f"the trash already holds too many items named {base}")
