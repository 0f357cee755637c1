"""run.json on a full disk (review note): the in-place fallback never writes past the file's present size, so
a full disk cannot leave it torn; what does not fit leaves the old run.json whole."""

from __future__ import annotations

import errno
import json
import os

import pytest

from core import layout
from core.runinfo import RunInfo


def _fill_the_disk(monkeypatch):
    def refuse(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(layout, "atomic_write_json", refuse)


@pytest.fixture
def full_disk(monkeypatch):
    _fill_the_disk(monkeypatch)


def test_status_is_rewritten_in_place_within_the_files_size(tmp_path, monkeypatch):
    info = RunInfo(str(tmp_path))
    info.started(False, None, {"train": {"seed": 1}})  # a real run.json (indented)
    _fill_the_disk(monkeypatch)
    size = os.path.getsize(info.path)
    info.ended("failed")  # longer values than "running" / null: fits compactly
    assert os.path.getsize(info.path) == size
    data = json.load(open(info.path, encoding="utf-8"))
    assert data["status"] == "failed" and data["pid"] == os.getpid() and data["ended"] > 0


def test_a_text_that_would_grow_the_file_leaves_it_whole(tmp_path, full_disk):
    info = RunInfo(str(tmp_path))
    old = json.dumps({"status": "running"})
    with open(info.path, "w", encoding="utf-8") as fh:
        fh.write(old)
    with pytest.raises(OSError):
        info.started(False, None, {"train": {"seed": 1}})  # far longer than the file
    assert open(info.path, encoding="utf-8").read() == old
