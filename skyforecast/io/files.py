"""Atomic writes, the one way every writer of skyforecast puts a file or folder in place (videos, frames,
JSON reports, training checkpoints, run configs, model folders). The standard library only.

A reader (another process, a resumed run, a person) never sees a half-written output: everything is written
to a temporary path next to the target and renamed over it in one step.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "atomic_write_bytes", "remove_partials"]

# a temporary path is ".{name}.{owner}.{random}.partial" beside the output it becomes; the owner is the
# writing process, "{host}-{pid}", so that a later run can tell a dead writer's leftover from a live one's
PARTIAL = ".partial"
_OWNER = re.compile(r"[A-Za-z0-9-]+-[0-9]+")


def _owner() -> str:
    host = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname()) or "host"
    return f"{host}-{os.getpid()}"


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike, is_dir: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``final``; on success it is renamed over ``final`` in one step, on
    any failure (or Ctrl-C) it is removed. A reader never sees a half-written output.

    With ``is_dir`` the temporary path is a folder; a folder already at ``final`` is moved aside before the
    new one takes its place and deleted after, so a crash leaves the old folder (or, between the two renames,
    none), never a mix of the two."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd_dir = tempfile.mkdtemp(prefix=f".{final.name}.{_owner()}.", suffix=PARTIAL, dir=final.parent)
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


def remove_partials(*finals: str | os.PathLike, dead_only: bool = False) -> None:
    """Remove what ``atomic_path`` left next to each of ``finals`` in a process killed while writing it (a
    kill leaves no time for its cleanup; one killed while cleaning up leaves the temporary folder of a file
    it had just put in place). Each folder is listed once, however many of ``finals`` it holds.

    Without ``dead_only``, only where no other process is writing them now (a sharded run's ranks agree on
    that). With it, only what a process of this machine that no longer runs left: any run may call it, even
    beside another run writing into the same folder, whose files stay (as do other machines' and those of
    versions that did not name their writer)."""
    names: dict[Path, set[str]] = {}
    for final in map(Path, finals):
        names.setdefault(final.parent, set()).add(final.name)
    host = _owner().rpartition("-")[0]
    for folder, wanted in names.items():
        try:
            entries = list(os.scandir(folder))
        except OSError:  # no folder (yet): nothing left in it
            continue
        for entry in entries:  # named as ``atomic_path`` names them
            name = entry.name
            if not (name.startswith(".") and name.endswith(PARTIAL)):
                continue
            head = name[1 : -len(PARTIAL)].rpartition(".")[0]  # the random part off
            final, _, owner = head.rpartition(".")
            if final in wanted and _OWNER.fullmatch(owner):
                if dead_only and not _gone(owner, host):
                    continue
            elif dead_only or head not in wanted:  # not ours; or an earlier version's, writer unknown
                continue
            shutil.rmtree(entry.path, ignore_errors=True)


def _gone(owner: str, host: str) -> bool:
    """Whether ``owner`` ("{host}-{pid}") is a process of this machine that no longer runs."""
    their_host, _, pid = owner.rpartition("-")
    if their_host != host or os.name == "nt":  # Windows' os.kill would end a live process, not probe it
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (OSError, ValueError):  # another user's process (alive), or no such number
        return False
    return False
