"""Atomic writes, the one way every writer of skyforecast puts a file or folder in place (videos, frames,
JSON reports, training checkpoints, run configs, model folders). The standard library only.

A reader (another process, a resumed run, a person) never sees a half-written output: everything is written
to a temporary path next to the target and renamed over it in one step.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "atomic_write_bytes", "remove_partials"]

PARTIAL = ".partial"  # a temporary path is ".{name}.{random}.partial" beside the output it becomes


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike, is_dir: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``final``; on success it is renamed over ``final`` in one step, on
    any failure (or Ctrl-C) it is removed. A reader never sees a half-written output.

    With ``is_dir`` the temporary path is a folder; a folder already at ``final`` is moved aside before the
    new one takes its place and deleted after, so a crash leaves the old folder (or, between the two renames,
    none), never a mix of the two."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd_dir = tempfile.mkdtemp(prefix=f".{final.name}.", suffix=PARTIAL, dir=final.parent)
    tmp = Path(fd_dir) if is_dir else Path(fd_dir) / final.name
    try:
        yield tmp
        if is_dir:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o777 & ~umask)
            _replace_folder(tmp, final)
        else:
            os.replace(tmp, final)
    finally:
        shutil.rmtree(fd_dir, ignore_errors=True)


def _replace_folder(new: Path, final: Path) -> None:
    if not final.exists():
        os.replace(new, final)
        return
    if not final.is_dir():
        final.unlink()
        os.replace(new, final)
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".old", dir=final.parent))
    try:
        os.replace(final, aside / final.name)
        try:
            os.replace(new, final)
        except BaseException:
            os.replace(aside / final.name, final)  # put the old folder back
            raise
    finally:
        shutil.rmtree(aside, ignore_errors=True)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically and flushed to disk (fsync) before the rename: after a power cut
    the file holds the old content or the new, not an empty or partial one."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def remove_partials(*finals: str | os.PathLike) -> None:
    """Remove what ``atomic_path`` left next to each of ``finals`` in a process killed while writing it (a
    kill leaves no time for its cleanup; one killed while cleaning up leaves the temporary folder of a file
    it had just put in place). Only where no other process is writing them now. Each folder is listed once,
    however many of ``finals`` it holds."""
    names: dict[Path, set[str]] = {}
    for final in map(Path, finals):
        names.setdefault(final.parent, set()).add(final.name)
    for folder, wanted in names.items():
        try:
            entries = list(os.scandir(folder))
        except OSError:  # no folder (yet): nothing left in it
            continue
        for entry in entries:  # named as ``atomic_path`` names them
            name = entry.name
            if name.startswith(".") and name.endswith(PARTIAL):
                if name[1 : -len(PARTIAL)].rpartition(".")[0] in wanted:
                    shutil.rmtree(entry.path, ignore_errors=True)
