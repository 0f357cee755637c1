"""check_folder (review finding 17): every token id below vocab_size, scanned once per unchanged split.

The largest id of each split is remembered in DATA_DIR/.checked.json with the file's size and mtime, so a
start or resume on an unchanged folder does not read every token again; a rewritten split is scanned again
and its damage found; a cache that cannot be written or read only costs a scan."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from core import data as data_mod
from core import layout
from core.data import CHECKED, PrepareError, check_folder, read_meta


@pytest.fixture
def folder(char_data, tmp_path):
    out = str(tmp_path / "d")
    shutil.copytree(char_data, out)
    if os.path.exists(os.path.join(out, CHECKED)):  # the shared folder was checked by an earlier test
        os.remove(os.path.join(out, CHECKED))
    return out


@pytest.fixture
def scans(monkeypatch):
    calls = []
    real = data_mod.scan_max_id

    def counting(ids, *a, **k):
        calls.append(len(ids))
        return real(ids, *a, **k)

    monkeypatch.setattr(data_mod, "scan_max_id", counting)
    return calls


def _damage(folder: str, split: str, value: int) -> None:
    """Overwrite one token id in place (same size), with a later modification time."""
    meta = read_meta(folder)
    path = os.path.join(folder, f"{split}.bin")
    ids = np.memmap(path, dtype=np.dtype(meta["dtype"]), mode="r+")
    ids[len(ids) // 2] = value
    ids.flush()
    del ids
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000))


def test_an_unchanged_folder_is_scanned_once(folder, scans):
    meta = read_meta(folder)
    check_folder(folder, meta)
    assert len(scans) == 2  # train and val
    cache = layout.read_json(os.path.join(folder, CHECKED))
    assert set(cache) == {"train", "val"} and cache["train"]["max_id"] < meta["vocab_size"]
    check_folder(folder, meta)
    check_folder(folder, meta)
    assert len(scans) == 2


def test_a_rewritten_split_is_scanned_again_and_its_damage_named(folder, scans):
    meta = read_meta(folder)
    check_folder(folder, meta)
    _damage(folder, "val", meta["vocab_size"] + 3)
    with pytest.raises(PrepareError, match=r"val\.bin: token id \d+ is not below vocab_size"):
        check_folder(folder, meta)
    assert len(scans) == 3  # only the changed split was read again
    with pytest.raises(PrepareError):  # and the damage is not forgotten
        check_folder(folder, meta)


def test_damage_is_found_without_a_cache(folder):
    meta = read_meta(folder)
    _damage(folder, "train", 60000)
    with pytest.raises(PrepareError, match=r"train\.bin: token id 60000"):
        check_folder(folder, meta)


def test_an_unwritable_or_garbled_cache_costs_only_a_scan(folder, scans, monkeypatch):
    meta = read_meta(folder)
    with open(os.path.join(folder, CHECKED), "w") as fh:
        fh.write("{not json")
    check_folder(folder, meta)
    assert len(scans) == 2 and "train" in layout.read_json(os.path.join(folder, CHECKED))

    def refuse(*_a, **_k):
        raise PermissionError(13, "Read-only file system")

    os.remove(os.path.join(folder, CHECKED))
    monkeypatch.setattr(layout, "atomic_write_json", refuse)
    check_folder(folder, meta)
    check_folder(folder, meta)
    assert len(scans) == 6  # scanned each time, no error
