"""Small pieces shared by the one-call GPU run (``bench/gpu_run.py``) and its phases: where things are, how
the CLI is started, atomic JSON, and the phase settings file that the driver hands to each phase process.

Nothing here imports torch: the driver stays light, and each phase pays for torch in its own process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PHASES = ("info", "cuda_tests", "bench", "predict", "train")
GROUPS: set[int] = set()  # process groups started with new_session and still running (see end_groups)


def cli() -> list[str]:
    """``python -m skyforecast`` with this interpreter: the checkout's code (PYTHONPATH holds the repository
    root, set by ``gpu_run.sh``), not whatever console script happens to be on PATH."""
    return [sys.executable, "-m", "skyforecast"]


def child_env() -> dict[str, str]:
    """Environment for every process the run starts: this checkout first on the import path, no Hub
    requests (the device reaches no network; every model here is a local folder), unbuffered output."""
    env = dict(os.environ)
    paths = [str(REPO)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(REPO)]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["HF_HUB_OFFLINE"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def write_json(path: Path, data) -> None:
    """Write JSON atomically (temporary file + rename), so a run killed at its time limit leaves the last
    complete version, never half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_json(path: Path, default=None):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return default


def tail(path: Path, chars: int = 2000) -> str:
    """The end of a log file, for the summary of a phase that failed."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - chars))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def start_logged(args: list, out, cwd: Path = REPO, new_session: bool = False) -> subprocess.Popen:
    """Start a command writing its output to the open file ``out``, with the children's environment;
    ``new_session``: in its own process group, remembered in GROUPS so a stopped driver ends it."""
    proc = subprocess.Popen(
        [str(a) for a in args],
        cwd=cwd,
        env=child_env(),
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=new_session,
    )
    if new_session:
        GROUPS.add(proc.pid)
    return proc


def run_logged(
    args: list[str], log: Path, timeout: float, cwd: Path = REPO, new_session: bool = False
) -> tuple[int | None, float]:
    """Run a command with its output appended to ``log``. Returns (exit code, or None when it ran past
    ``timeout`` and was ended, wall seconds). ``new_session``: the command gets its own process group, and
    a timeout ends the whole group (the driver starts each phase so). Inside a phase, commands stay in the
    phase's group, so that ending the phase ends them too."""
    log.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    with open(log, "ab") as f:
        f.write(("$ " + " ".join(map(str, args)) + "\n").encode())
        f.flush()
        proc = start_logged(args, f, cwd=cwd, new_session=new_session)
        try:
            rc = proc.wait(timeout=max(1.0, timeout))
        except subprocess.TimeoutExpired:
            if new_session:
                stop_group(proc)
            else:
                proc.kill()
                proc.wait()
            rc = None
        finally:
            GROUPS.discard(proc.pid)
    return rc, time.monotonic() - t0


def end_groups() -> None:
    """SIGKILL every process group still registered in ``GROUPS``: a driver stopped from outside must not
    leave a phase (training on the GPU, say) running on the machine after it."""
    for pgid in list(GROUPS):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        GROUPS.discard(pgid)


def stop_group(proc: subprocess.Popen, grace: float = 5.0) -> None:
    """End a process started with ``start_new_session=True`` and everything it started: SIGTERM first (a
    phase may still write what it has), then SIGKILL for whatever of the group is left."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


class PhaseFailed(RuntimeError):
    """A phase that ran to its end but measured a failure; ``partial`` is what it measured, still written."""

    def __init__(self, message: str, partial: dict):
        super().__init__(message)
        self.partial = partial
