"""files.atomic_path / atomic_write_bytes: the one atomic-write route of every writer."""

from __future__ import annotations

from pathlib import Path

import pytest

from skyforecast.io import media
from skyforecast.io.files import atomic_path, atomic_write_bytes


def test_media_keeps_the_old_name():
    assert media.atomic_path is atomic_path


def test_a_folder_is_replaced_whole_and_nothing_is_left_beside_it(tmp_path: Path):
    final = tmp_path / "model"
    final.mkdir()
    (final / "old.txt").write_text("old")
    with atomic_path(final, is_dir=True) as tmp:
        (tmp / "new.txt").write_text("new")
        assert (final / "old.txt").read_text() == "old"  # the old folder stays until the new one is done
    assert sorted(p.name for p in final.iterdir()) == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_a_failed_write_keeps_the_old_content(tmp_path: Path):
    final = tmp_path / "model"
    final.mkdir()
    (final / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_path(final, is_dir=True) as tmp:
        (tmp / "new.txt").write_text("half")
        raise RuntimeError("crash mid-write")
    assert sorted(p.name for p in final.iterdir()) == ["old.txt"]
    path = tmp_path / "a.json"
    atomic_write_bytes(path, b"1")
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_bytes(b"2")
        raise RuntimeError("crash mid-write")
    assert path.read_bytes() == b"1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "model"]
