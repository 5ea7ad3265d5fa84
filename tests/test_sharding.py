"""Batch prediction over several processes: ranks of ``torchrun`` (Gloo on the CPU, real processes, a real
SIGKILL), ``predict --workers``, and the shared store's bookkeeping with ranks as threads."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch.distributed as dist
from PIL import Image, ImageOps
from videos import read_video

from skyforecast.batch import Job, plan
from skyforecast.io import files
from skyforecast.io.files import atomic_path, remove_partials
from skyforecast.model.pipeline import SkyPipeline
from skyforecast.render.postprocess import PlainOutput
from skyforecast.sharding import Shard, ShardError, auto_workers, largest_first, worker_threads

# The same arithmetic in every process, so that outputs compare byte for byte: one thread each (the thread
# count changes the rounding of the model's sums), and one photo per model call (so does the batch: which
# photos share a call differs between one process and several, and between a run and its resumption).
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
OPTIONS = ["--resolution", "model", "--device", "cpu", "-f", "mp4", "-f", "gif", "--batch-size", "1"]
WROTE = re.compile(r"^wrote (.+)$", re.M)


@pytest.fixture(scope="module")
def photos(sample_photos: Path, tmp_path_factory) -> Path:
    """8 photos of two sizes (the sample photos, and a crop of each)."""
    folder = tmp_path_factory.mktemp("many") / "photos"
    folder.mkdir()
    for src in sorted(sample_photos.iterdir()):
        with Image.open(src) as im:
            im = im.convert("RGB")
            im.save(folder / f"{src.stem}.jpg", quality=95)
            ImageOps.mirror(im).crop((40, 0, 200, 90)).save(folder / f"{src.stem}_crop.jpg", quality=80)
    return folder


def _predict(*args: str) -> list[str]:
    return [sys.executable, "-m", "skyforecast", "predict", *args]


def _torchrun(*args: str, logs: Path) -> list[str]:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    return [*cmd, "--log-dir", str(logs), "--redirects", "3", "-m", "skyforecast", "predict", *args]


def _rank_logs(logs: Path) -> list[str]:
    """stderr of rank 0 and rank 1 of the one torchrun run logged in ``logs``."""
    (run,) = logs.iterdir()
    return [(run / "attempt_0" / str(r) / "stderr.log").read_text() for r in (0, 1)]


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def reference(photos: Path, tiny_weights: Path, tmp_path_factory) -> dict[str, bytes]:
    """The outputs of one process doing the whole folder. A photo before the others takes the model's first
    call, which on the CPU rounds differently from every later one (``fast``: unpacked weights); ranks warm
    up instead (``sharding.warm_up``), so that their outputs do not depend on which photo each did first."""
    folder = tmp_path_factory.mktemp("reference")
    (folder / "in").mkdir()
    for photo in photos.iterdir():
        (folder / "in" / photo.name).write_bytes(photo.read_bytes())
    (folder / "in" / "0_first.jpg").write_bytes((photos / "cirrus.jpg").read_bytes())
    out = folder / "out"
    # one process whatever the machine (by default a machine of 8 cores or more starts workers)
    args = ("-o", str(out), "-w", str(tiny_weights), *OPTIONS, "--workers", "1", "-q")
    cmd = _predict(str(folder / "in"), *args)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    files = {name: data for name, data in _files(out).items() if not name.startswith("0_first.")}
    assert len(files) == 16
    return files


@pytest.mark.slow
def test_two_ranks_do_every_photo_once_and_write_what_one_process_writes(
    photos, tiny_weights, reference, tmp_path
):
    out, logs = tmp_path / "out", tmp_path / "logs"
    cmd = _torchrun(str(photos), "-o", str(out), "-w", str(tiny_weights), *OPTIONS, logs=logs)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    rank0, rank1 = _rank_logs(logs)
    wrote = WROTE.findall(rank0) + WROTE.findall(rank1)
    assert sorted(wrote) == sorted(f"{out / n}.mp4, {out / n}.gif" for n in _stems(photos))  # once each
    assert _files(out) == reference  # byte for byte, nothing else (no temporary files)
    assert "8 done, 0 skipped (outputs exist), 0 failed" in rank0 and "done," not in rank1
    taken = [int(n) for n in re.findall(r"rank \d \(.*\): \d+ done of (\d+) taken", rank0)]
    assert len(taken) == 2 and sum(taken) == 8

    logs = tmp_path / "again"
    cmd = _torchrun(str(photos), "-o", str(out), "-w", str(tiny_weights), *OPTIONS, logs=logs)
    assert subprocess.run(cmd, capture_output=True, env=ENV, timeout=300, cwd=tmp_path).returncode == 0
    assert "0 done, 8 skipped (outputs exist), 0 failed" in _rank_logs(logs)[0]
    assert _files(out) == reference


def _stems(folder: Path) -> list[str]:
    return [p.stem for p in sorted(folder.iterdir())]


def _rank_pid(launcher: int, rank: int, timeout: float = 120) -> int:
    """The process id of ``rank`` among the children of the ``torchrun`` process ``launcher``."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                env = (entry / "environ").read_bytes().split(b"\0")
            except (OSError, IndexError, ValueError):
                continue
            if ppid == launcher and f"RANK={rank}".encode() in env:
                return int(entry.name)
        time.sleep(0.05)
    raise AssertionError(f"no rank {rank} under process {launcher}")


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the rank's process in /proc")
def test_a_rank_killed_mid_run_then_the_same_command_finishes_everything_once(
    photos, tiny_weights, reference, tmp_path
):
    out = tmp_path / "out"
    args = (str(photos), "-o", str(out), "-w", str(tiny_weights), *OPTIONS)
    first = subprocess.Popen(
        _torchrun(*args, logs=tmp_path / "logs1"), env=ENV, cwd=tmp_path,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        rank1 = _rank_pid(first.pid, 1)
        end = time.monotonic() + 240
        while time.monotonic() < end:  # mid-run: some outputs whole, one being written
            names = [p.name for p in out.iterdir()] if out.exists() else []
            if any(n.endswith(".gif") for n in names) and any(n.endswith(".partial") for n in names):
                break
            time.sleep(0.01)
        os.kill(rank1, signal.SIGKILL)
        assert first.wait(timeout=120) != 0
    finally:
        first.kill()
        first.wait()
    before = _files(out)
    finished = {name for name in before if not name.startswith(".")}
    assert 0 < len(finished) < 16
    assert all(before[name] == reference[name] for name in finished)  # whole, never half-written
    stamps = {name: (out / name).stat().st_mtime_ns for name in finished}

    logs = tmp_path / "logs2"
    again = subprocess.run(_torchrun(*args, logs=logs), capture_output=True, text=True, env=ENV, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    lines = WROTE.findall("\n".join(_rank_logs(logs)))
    redone = sorted(Path(line.split(", ")[0]).stem for line in lines)
    unfinished = {Path(n).stem for n in set(reference) - finished}
    assert redone == sorted(unfinished)  # each photo left over once, no finished one again
    assert {name: (out / name).stat().st_mtime_ns for name in finished} == stamps  # not rewritten
    assert _files(out) == reference  # everything, once, and no temporary file left


@pytest.mark.slow
def test_a_photo_failing_on_any_rank_is_reported_by_rank_0(photos, tiny_weights, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    for name in ("cumulus.jpg", "dusk_crop.jpg", "hills_crop.jpg"):
        (folder / name).write_bytes((photos / name).read_bytes())
    for i in range(4):
        (folder / f"broken{i}.jpg").write_bytes(b"not a photo" * (1 + 3000 * i))  # sizes among the photos'
    out, logs = tmp_path / "out", tmp_path / "logs"
    cmd = _torchrun(str(folder), "-o", str(out), "-w", str(tiny_weights), *OPTIONS, logs=logs)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=300, cwd=tmp_path)
    assert proc.returncode != 0  # every rank exits 1
    rank0, rank1 = _rank_logs(logs)
    assert "3 done, 0 skipped (outputs exist), 4 failed" in rank0
    for i in range(4):
        # each failure once in rank 0's lines as it happened or as rank 1's, and once in the list
        name = str(folder / f"broken{i}.jpg")
        assert rank0.count(f"error: {name}: ") == 1 and rank0.count(f"  {name}: ") == 1
        if f"error: {name}: " in rank1:
            assert "(rank 1, " in rank0.split(f"error: {name}: ")[1].splitlines()[0]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{s}.{f}" for s in ("cumulus", "dusk_crop", "hills_crop") for f in ("gif", "mp4")
    )


@pytest.mark.slow
def test_workers_share_a_folder_and_write_what_one_process_writes(photos, tiny_weights, reference, tmp_path):
    out = tmp_path / "out"
    cmd = _predict(str(photos), "-o", str(out), "-w", str(tiny_weights), *OPTIONS, "--workers", "2")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "leaked" not in proc.stderr
    assert len(WROTE.findall(proc.stderr)) == 8  # one console shows every worker's photos
    assert "8 done, 0 skipped (outputs exist), 0 failed" in proc.stderr
    assert len(re.findall(r"^  rank [01] ", proc.stderr, re.M)) == 2
    assert _files(out) == reference


@pytest.mark.slow
def test_workers_predict_with_the_engine_asked_for(photos, tiny_weights, tmp_path):
    """``--engine numpy`` holds for the workers too (each rank's line names it), and they write what one
    numpy process writes, byte for byte (numpy has no first-call rounding: no warm-up photo needed)."""
    args = ("-w", str(tiny_weights), *OPTIONS, "--engine", "numpy")
    one = subprocess.run(
        _predict(str(photos), "-o", str(tmp_path / "one"), *args, "--workers", "1", "-q"),
        capture_output=True, text=True, env=ENV, timeout=300,
    )  # fmt: skip
    assert one.returncode == 0, one.stderr[-3000:]
    two = subprocess.run(
        _predict(str(photos), "-o", str(tmp_path / "two"), *args, "--workers", "2"),
        capture_output=True, text=True, env=ENV, timeout=300,
    )  # fmt: skip
    assert two.returncode == 0, two.stderr[-3000:]
    assert len(re.findall(r"^  rank [01] \(.*, cpu \(numpy\)\): ", two.stderr, re.M)) == 2
    assert "8 done, 0 skipped (outputs exist), 0 failed" in two.stderr
    assert _files(tmp_path / "two") == _files(tmp_path / "one") and len(_files(tmp_path / "one")) == 16


# ---- the shared store's bookkeeping, ranks as threads of this process ----


def _store(world: int) -> tuple[dist.TCPStore, list]:
    server = dist.TCPStore("127.0.0.1", 0, world, True, wait_for_workers=False)
    clients = [dist.TCPStore("127.0.0.1", server.port, world, False) for _ in range(world - 1)]
    return server, [server, *clients]


def _jobs(folder: Path, n: int, tmp: Path) -> list[Job]:
    return [Job(folder / f"p{i}.jpg", {"mp4": tmp / f"p{i}.mp4"}) for i in range(n)]


def test_ranks_taking_at_once_get_every_photo_exactly_once(tmp_path):
    jobs = _jobs(tmp_path, 203, tmp_path)
    _, stores = _store(3)
    shards = [Shard(r, 3, r, s, todo=list(jobs)) for r, s in enumerate(stores)]
    taken: list[list[Job]] = [[] for _ in shards]

    def drain(r: int) -> None:
        while chunk := shards[r].take(8):
            assert 1 <= len(chunk) <= 8
            taken[r].extend(chunk)

    threads = [threading.Thread(target=drain, args=(r,)) for r in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = [j.source.name for part in taken for j in part]
    assert sorted(got) == sorted(j.source.name for j in jobs)  # all, none twice
    assert all(part for part in taken)


def test_takes_shrink_to_single_photos_at_the_end(tmp_path):
    _, (store,) = _store(1)
    shard = Shard(0, 2, 0, store, todo=_jobs(tmp_path, 40, tmp_path))
    sizes = []
    while chunk := shard.take(8):
        sizes.append(len(chunk))
    assert sum(sizes) == 40 and sizes[0] == 5 and sizes[-4:] == [1, 1, 1, 1]


def test_largest_photo_is_taken_first(tmp_path):
    for name, size in [("a.jpg", 10), ("b.jpg", 300), ("c.jpg", 20), ("d.jpg", 300)]:
        (tmp_path / name).write_bytes(b"x" * size)
    jobs = [Job(tmp_path / n, {}) for n in ("a.jpg", "b.jpg", "c.jpg", "d.jpg", "gone.jpg")]
    assert largest_first([0, 1, 2, 3, 4], jobs) == [1, 3, 2, 0, 4]


def test_ranks_with_different_plans_refuse_to_start(sample_photos, tmp_path):
    _, stores = _store(2)
    plans = [plan([sample_photos], tmp_path / "out")[0], plan([sample_photos], tmp_path / "other")[0]]
    errors: list[str] = []

    def agree(r: int) -> None:
        try:
            Shard(r, 2, r, stores[r]).agree(plans[r])
        except ShardError as e:
            errors.append(str(e))

    threads = [threading.Thread(target=agree, args=(r,)) for r in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(errors) == 2 and all("rank 1 planned other inputs or outputs than rank 0" in e for e in errors)


def test_rank_0_combines_a_failure_met_on_rank_1(sample_photos, tiny_weights, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "broken.jpg").write_bytes(b"not a photo")
    (folder / "dusk.jpg").write_bytes((sample_photos / "dusk.jpg").read_bytes())
    jobs, _ = plan([folder], tmp_path / "out")
    _, stores = _store(2)
    shards = [Shard(r, 2, r, stores[r]) for r in (0, 1)]
    pipe = SkyPipeline.from_pretrained(tiny_weights, device="cpu")
    results: dict[int, object] = {}

    def rank(r: int) -> None:
        shards[r].agree(jobs)
        if r == 0:
            while not stores[0].check(["report/1"]):  # rank 1 first: it takes every photo
                time.sleep(0.01)
        results[r] = shards[r].run(pipe, jobs, post=PlainOutput(None))

    threads = [threading.Thread(target=rank, args=(r,)) for r in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert results[0] == results[1]  # every rank holds the combination (and exits with its code)
    combined = results[0]
    assert [Path(p).name for p, _ in combined.failed] == ["broken.jpg"] and combined.exit_code == 1
    assert [p.name for p in combined.done] == ["dusk.jpg"]
    assert [(r.rank, r.taken, r.done) for r in shards[0].reports] == [(0, 0, 0), (1, 2, 1)]
    assert [Path(p).name for p, _ in shards[0].reports[1].failed] == ["broken.jpg"]
    assert len(read_video(tmp_path / "out" / "dusk.mp4")) == 32


def test_remove_partials_removes_only_what_a_killed_writer_left(tmp_path):
    final = tmp_path / "clip.mp4"
    final.write_bytes(b"earlier")
    killed = atomic_path(final)  # a writer that never gets to finish (or clean up)
    tmp = killed.__enter__()
    tmp.write_bytes(b"half")
    other = tmp_path / ".clip.mp4x.abc.partial"  # another output's
    other.mkdir()
    mine = tmp_path / "clip.mp4.partial"  # a user's file, not hidden
    mine.write_bytes(b"mine")
    remove_partials(final)
    assert not tmp.parent.exists() and other.exists()
    assert mine.read_bytes() == b"mine" and final.read_bytes() == b"earlier"


def test_a_finished_photos_leftover_is_cleared_before_the_ranks_start(tmp_path):
    """A rank killed while cleaning up after a photo it had put in place leaves that photo's temporary
    folder beside it (a GIF's frames spooled there); the next run skips the photo, so ``take`` never clears
    it: rank 0 does, as the ranks agree on the plan. Photos still to do keep theirs until taken, and
    other files stay."""
    out = tmp_path / "out"
    out.mkdir()
    done, todo = out / "done.gif", out / "todo.gif"
    done.write_bytes(b"GIF89a whole")
    killed = atomic_path(done)
    left = killed.__enter__().parent  # its temporary folder, as a kill during the cleanup leaves it
    (left / "done.gif.rgb").write_bytes(b"frames")
    writing = atomic_path(todo)  # held: a writer closed by the garbage collector cleans up after itself
    pending = writing.__enter__().parent
    kept = out / ".done.gif.notes"
    kept.write_bytes(b"a user's")
    jobs = [Job(tmp_path / "done.jpg", {"gif": done}, skip=True), Job(tmp_path / "todo.jpg", {"gif": todo})]
    _, stores = _store(2)
    threads = [threading.Thread(target=Shard(r, 2, r, stores[r]).agree, args=(jobs,)) for r in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not left.exists() and pending.exists()
    assert done.read_bytes() == b"GIF89a whole" and kept.read_bytes() == b"a user's"


def test_remove_partials_takes_many_outputs_and_lists_each_folder_once(tmp_path, monkeypatch):
    finals = [tmp_path / f"clip{i}.mp4" for i in range(5)]
    killed = [atomic_path(f) for f in finals]  # held: closed, a writer cleans up after itself
    leftovers = [k.__enter__().parent for k in killed]
    listed = []
    real = os.scandir

    def scandir(path):  # the folders listed (rmtree lists what it removes by descriptor)
        if not isinstance(path, int):
            listed.append(path)
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    remove_partials(*finals[:3], tmp_path / "missing" / "clip.mp4")
    assert [p.exists() for p in leftovers] == [False, False, False, True, True]
    assert sorted(map(str, listed)) == sorted([str(tmp_path), str(tmp_path / "missing")])


def test_remove_partials_dead_only_takes_what_a_gone_process_of_this_machine_left(tmp_path):
    final = tmp_path / "clip.mp4"
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    dead = int(ended.stdout)  # a process that has ended
    host = files._owner().rpartition("-")[0]
    gone = tmp_path / f".clip.mp4.{host}-{dead}.abc.partial"
    elsewhere = tmp_path / f".clip.mp4.{host}x-{dead}.abc.partial"  # another machine's, sharing the folder
    alive = tmp_path / f".clip.mp4.{host}-{os.getpid()}.abc.partial"  # a process that runs
    earlier = tmp_path / ".clip.mp4.abc.partial"  # an earlier version's: its writer is unknown
    for path in (gone, elsewhere, alive, earlier):
        path.mkdir()
    remove_partials(final, dead_only=True)
    assert [p.exists() for p in (gone, elsewhere, alive, earlier)] == [False, True, True, True]
    remove_partials(final)  # a sharded run's ranks agreed that nobody writes there: all of them
    assert [p.name for p in tmp_path.iterdir()] == []


def test_workers_by_default_follow_cores_and_memory():
    assert auto_workers(cores=2, free_bytes=64 << 30) == 1
    assert auto_workers(cores=16, free_bytes=64 << 30) == 4
    assert auto_workers(cores=64, free_bytes=4 << 30) == 2
    assert auto_workers(cores=1, free_bytes=0) == 1


def test_workers_split_the_cores_within_the_users_thread_limit(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert worker_threads(2, cores=16) == 8 and worker_threads(4, cores=2) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # outputs byte-identical to one process at 1 thread
    assert worker_threads(2, cores=16) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    assert worker_threads(2, cores=16) == 4 and worker_threads(2, cores=4) == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "many")  # not a number: as if unset
    assert worker_threads(2, cores=16) == 8
