"""Review finding 13: trashing a run on another file system than the home trash never copies it: it goes to
that file system's own trash ($topdir/.Trash-$uid, the freedesktop.org per-volume trash) by a rename, or it
is refused with a message and nothing moves."""

from __future__ import annotations

import os
import urllib.parse

import pytest

from studio.workspace import trash as trash_mod
from studio.workspace.trash import move_to_trash


@pytest.fixture
def run_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "home-data"))
    vol = tmp_path / "vol"
    run = vol / "ws" / "runs" / "old"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text("x")
    return vol, run


def test_same_disk_goes_to_the_home_trash(run_folder, tmp_path):
    _vol, run = run_folder
    target = move_to_trash(str(run))
    assert target == str(tmp_path / "home-data" / "Trash" / "files" / "old") and not run.exists()
    info = (tmp_path / "home-data" / "Trash" / "info" / "old.trashinfo").read_text()
    assert f"Path={urllib.parse.quote(str(run))}" in info


def _other_disk(monkeypatch, vol, run):
    real = trash_mod._device
    monkeypatch.setattr(trash_mod, "_device", lambda p: real(p) + (1 if str(p).startswith(str(vol)) else 0))
    monkeypatch.setattr(trash_mod, "_mount_point", lambda p: str(vol))


def test_another_disk_uses_that_disks_trash_by_rename(run_folder, monkeypatch):
    vol, run = run_folder
    _other_disk(monkeypatch, vol, run)
    renames = []
    real_rename = os.rename
    monkeypatch.setattr(trash_mod.os, "rename", lambda a, b: (renames.append((a, b)), real_rename(a, b))[1])
    target = move_to_trash(str(run))
    trash = vol / f".Trash-{os.getuid()}"
    assert target == str(trash / "files" / "old") and renames == [(str(run), target)]
    assert (trash / "files" / "old" / "config.yaml").read_text() == "x" and not run.exists()
    assert oct(trash.stat().st_mode & 0o777) == "0o700"
    info = (trash / "info" / "old.trashinfo").read_text()
    assert "Path=ws/runs/old\n" in info  # relative to the volume's top directory, as the spec says


def test_no_trash_on_that_disk_refuses_and_moves_nothing(run_folder, monkeypatch):
    vol, run = run_folder
    _other_disk(monkeypatch, vol, run)
    real_makedirs = os.makedirs

    def makedirs(path, *a, **k):
        if ".Trash-" in str(path):
            raise PermissionError(13, "Permission denied")
        return real_makedirs(path, *a, **k)

    monkeypatch.setattr(trash_mod.os, "makedirs", makedirs)
    with pytest.raises(OSError, match="on another disk than the home trash.*nothing was moved"):
        move_to_trash(str(run))
    assert (run / "config.yaml").read_text() == "x"
