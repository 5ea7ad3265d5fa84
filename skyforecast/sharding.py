"""Batch prediction shared by several processes: ranks started by ``torchrun`` (or any launcher that sets
``RANK``/``WORLD_SIZE``/``LOCAL_RANK``/``MASTER_ADDR``/``MASTER_PORT``) on one machine or many, or the
worker processes of ``predict --workers N``. The CLI calls it; it never prints.

Every rank plans the same inputs and output names (``batch.plan`` is deterministic; the ranks compare a
digest of their plans before any photo is written). Rank 0 then puts the photos still to do in one order,
largest file first, and the ranks take them from a shared counter (``Store.add`` on the ``torch.distributed``
store the launcher already provides, or one the ``--workers`` parent hosts): a rank that is done with a photo
takes the next one, so the run ends when the last photo ends, and no photo is taken twice. Taking the big
photos first leaves the small ones to fill the end. A counter rather than claim files in the output folder:
one round trip per photo instead of file creations on a shared file system, and nothing stale to recover:
a killed run leaves only whole outputs (written atomically) and temporary files, which the next run
removes as it takes each photo, and beside the finished photos it skips before any rank writes (so one
command at a time may write into an output folder). Running the
command again skips the finished photos and does the rest.

At the end every rank puts its ``BatchResult`` in the store; rank 0 combines them (done, skipped, failed
with reasons, per-rank throughput) and publishes the combination, so every rank exits with the same code.
"""

from __future__ import annotations

import hashlib
import math
import os
import pickle
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np

from .batch import BatchResult, Job, run
from .io.constants import SIZE
from .io.files import remove_partials
from .training.distributed import Dist, dist_from_env

__all__ = [
    "RankReport",
    "Shard",
    "ShardError",
    "auto_workers",
    "rank_device",
    "shard_from_env",
    "start_workers",
]

POLL_S = 0.05  # how often a waiting rank looks at the store (a wait that Ctrl-C can interrupt)
STORE_TIMEOUT = timedelta(minutes=30)  # connecting to the store; waits for other ranks poll without limit
# Photos per take, at most: the remaining photos over (this many x the number of ranks), so that takes shrink
# to single photos towards the end, where a big batch on one rank would keep the others waiting.
TAKE_SHARE = 4
# What one worker of ``--workers`` keeps busy while it renders and encodes a full-resolution video: the
# renderer's and x264's threads use about this many cores (fewer workers than cores / this starve nothing).
CORES_PER_WORKER = 4
# Memory one worker needs for a full-resolution 1080p video in flight (its frames, the renderer's buffers,
# the model), with headroom; a worker beyond what the machine has free would swap.
BYTES_PER_WORKER = 1_500_000_000


class ShardError(RuntimeError):
    """The ranks cannot work together (they planned different outputs): one line, exit code 1."""


@dataclass
class RankReport:
    """What one rank did, for rank 0's summary."""

    rank: int
    host: str
    device: str
    taken: int
    done: int
    seconds: float  # its batch, from the first photo taken to the last one finished
    failed: list[tuple[str, str]] = field(default_factory=list)  # (photo, reason), as in BatchResult

    @property
    def rate(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Shard(Dist):
    """This process's place among the processes sharing one batch (``rank``, ``world``, ``local_rank``,
    ``main`` and ``on`` as for training). ``world == 1``: alone (no store)."""

    store: Any = None  # a torch.distributed Store every rank reaches
    todo: list[Job] = field(default_factory=list)  # the photos to predict, in the order they are taken
    reports: list[RankReport] = field(default_factory=list)  # every rank's, once ``finish`` has run
    alive: Callable[[], list[str]] | None = None  # rank 0 of --workers: why each worker ended early, or ""
    join: Callable[[], None] | None = None  # rank 0 of --workers: wait for the workers to end
    events: Any = None  # rank 0 of --workers: the workers' events, (kind, photo, detail), None at the end
    lost: dict[int, str] = field(default_factory=dict)  # rank 0 of --workers: workers that ended early, why
    _taken: int = 0

    def agree(self, jobs: Sequence[Job]) -> None:
        """Check that every rank planned the same outputs, then set ``todo`` from rank 0's view of what is
        still to do, largest photo first. Raises ``ShardError`` on every rank if the plans differ."""
        self.store.set(f"digest/{self.rank}", plan_digest(jobs))
        if self.main:
            self._wait([f"digest/{r}" for r in range(self.world)])
            digests = {r: self.store.get(f"digest/{r}") for r in range(self.world)}
            differ = [r for r, d in digests.items() if d != digests[0]]
            if differ:
                plan: Any = (
                    f"rank {differ[0]} planned other inputs or outputs than rank 0: every rank needs the "
                    "same command, the same working folder and the same files (a shared file system)"
                )
            else:
                plan = largest_first([i for i, job in enumerate(jobs) if not job.skip], jobs)
                _clear_finished(jobs)
            self.store.set("plan", pickle.dumps(plan))
        self._wait(["plan"])
        plan = pickle.loads(self.store.get("plan"))
        if isinstance(plan, str):
            raise ShardError(plan)
        self.todo = [jobs[i] for i in plan]

    def take(self, most: int) -> list[Job]:
        """The next photos for this rank (at most ``most``), [] when every photo is taken. Leftovers of a
        killed earlier run next to their outputs are removed: no other process writes them now."""
        if not self.on:
            jobs, self.todo = self.todo[:most], self.todo[most:]
        else:
            left = len(self.todo) - self.store.add("next", 0)
            if left <= 0:
                return []
            count = max(1, min(most, math.ceil(left / (TAKE_SHARE * self.world))))
            end = self.store.add("next", count)
            jobs = self.todo[max(0, end - count) : end]
        for job in jobs:
            for path in job.outputs.values():
                remove_partials(path)
        self._taken += len(jobs)
        return jobs

    def run(self, pipe, jobs: Sequence[Job], *, on_event=None, **kwargs) -> BatchResult:
        """``batch.run`` for this rank: photos from ``take``; rank 0 alone accounts for the skipped ones.
        Then ``finish``: the combined result, on every rank. The ``--workers`` parent passes its workers'
        events to ``on_event`` too, so that one console shows every photo (``Shard.run``)."""
        relay = None
        if self.events is not None and on_event is not None:
            relay = threading.Thread(target=self._relay, args=(on_event,), name="skyforecast-relay")
            relay.start()
        start = time.perf_counter()
        try:
            if pipe is not None and self.todo:
                warm_up(pipe, kwargs.get("post"), kwargs.get("stage", 2))
            result = run(pipe, list(jobs) if self.main else [], take=self.take, on_event=on_event, **kwargs)
            return self.finish(result, time.perf_counter() - start, str(getattr(pipe, "device", "")))
        finally:
            if self.join is not None:
                self.join()  # the workers' last events are shown before the summary
            if relay is not None:
                self.events.put(None)
                relay.join()
                self.events.close()
                self.events.join_thread()
                self.events = None  # its semaphores are released here, not left to an exit that skips it

    def _relay(self, on_event) -> None:
        index = {str(job.source): job for job in self.todo}
        while (item := self.events.get()) is not None:
            kind, source, detail = item
            on_event(kind, index[source], detail)

    def finish(self, result: BatchResult, seconds: float, device: str = "") -> BatchResult:
        """Every rank's result combined (rank 0 combines, the others wait for it)."""
        report = RankReport(self.rank, _host(), device, self._taken, len(result.done), seconds, result.failed)
        if not self.on:
            self.reports = [report]
            return result
        self.store.set(f"report/{self.rank}", pickle.dumps((report, result)))
        if self.main:
            self.lost = lost = self._wait([f"report/{r}" for r in range(self.world)], give_up=True)
            parts = [pickle.loads(self.store.get(f"report/{r}")) for r in range(self.world) if r not in lost]
            combined = combine([r for _, r in parts], len(self.todo), lost=lost)
            self.store.set("combined", pickle.dumps(([rep for rep, _ in parts], combined)))
            self.reports = [rep for rep, _ in parts]
            # rank 0 may host the store: it stays until every rank has read the combination
            self._wait_count("read", self.world - 1 - len(lost))
            return combined
        self._wait(["combined"])
        self.reports, combined = pickle.loads(self.store.get("combined"))
        self.store.add("read", 1)
        return combined

    def end(self, seconds: float = 60) -> None:
        """Called last, after rank 0 has printed the summary: the other ranks wait for it before they exit.
        ``torchrun`` stops every rank as soon as one exits with a non-zero code, so a rank that left first
        (a batch with a failure exits 1 everywhere) could cut rank 0's summary short."""
        if not self.on:
            return
        if self.main:
            sys.stdout.flush()
            sys.stderr.flush()
            self.store.set("printed", b"1")
            return
        end = time.monotonic() + seconds
        try:
            while not self.store.check(["printed"]) and time.monotonic() < end:
                time.sleep(POLL_S)
        except Exception:  # noqa: BLE001 - rank 0 hosted the store and has gone: it has printed
            pass

    def _wait_count(self, key: str, count: int, seconds: float = 60) -> None:
        """Wait until ``count`` ranks have added one to ``key`` (at most ``seconds``: a rank that died
        there does not hold the others)."""
        end = time.monotonic() + seconds
        while self.store.add(key, 0) < count and time.monotonic() < end:
            time.sleep(POLL_S)

    def _wait(self, keys: list[str], give_up: bool = False) -> dict[int, str]:
        """Wait until the store holds ``keys``. With ``give_up`` and ``alive`` (the ``--workers`` parent),
        workers that ended without setting their key are returned, rank -> why, instead of waited for."""
        while not self.store.check(keys):
            if give_up and self.alive is not None:
                ended = self.alive()
                missing = [int(k.rsplit("/", 1)[1]) for k in keys if not self.store.check([k])]
                if all(ended[r] for r in missing):
                    return {r: ended[r] for r in missing}
            time.sleep(POLL_S)
        return {}


def warm_up(pipe, post, stage: int) -> None:
    """One model call on a blank photo before the first real one. On the CPU the model's first call runs
    its deep layers unpacked (``fast``: faster for a single call) and rounds a few values differently from
    every later call; warmed up, every photo is computed the same way whichever rank takes it and whenever,
    so a run's outputs do not depend on its schedule."""
    blank = np.zeros((1, SIZE, SIZE, 3), np.uint8)
    if post is None:
        pipe.predict_squares(blank, stage=stage, batch_size=1)
    else:
        post.predict(pipe, blank, stage=stage, batch_size=1)


def _clear_finished(jobs: Sequence[Job]) -> None:
    """Remove the temporary files a killed earlier run left beside the photos skipped now (finished): a rank
    killed while cleaning up after a photo it had put in place leaves its temporary folder there, and a
    skipped photo is never taken (``Shard.take`` clears the others). Rank 0 does it before any rank
    writes."""
    remove_partials(*(path for job in jobs if job.skip for path in job.outputs.values()))


def plan_digest(jobs: Sequence[Job]) -> str:
    """A digest of the photos and their output paths, in order: equal on two ranks when they planned the
    same batch."""
    h = hashlib.sha256()
    for job in jobs:
        h.update(repr((str(job.source), sorted((f, str(p)) for f, p in job.outputs.items()))).encode())
    return h.hexdigest()


def largest_first(indices: list[int], jobs: Sequence[Job]) -> list[int]:
    """The order photos are taken in: largest file first (the file size stands in for the work, without
    decoding), ties in plan order."""

    def size(i: int) -> int:
        try:
            return os.stat(jobs[i].source).st_size
        except OSError:
            return 0  # it fails when its turn comes, and is reported then

    return sorted(indices, key=lambda i: (-size(i), i))


def combine(results: Sequence[BatchResult], todo: int, lost: dict[int, str] | None = None) -> BatchResult:
    """One result for the whole batch, in rank order. ``lost``: ranks that ended without a result, each a
    failure of the batch (their photos are unfinished: run the command again)."""
    out = BatchResult()
    for r in results:
        out.done += r.done
        out.skipped += r.skipped
        out.failed += r.failed
        out.notes += r.notes
        out.skipped_outputs += r.skipped_outputs
        out.renamed += r.renamed
        out.interrupted |= r.interrupted
        out.stopped = out.stopped or r.stopped
    for rank, why in sorted((lost or {}).items()):
        out.failed.append((f"worker {rank}", f"{why}; run the command again to finish its photos"))
    if out.interrupted or out.stopped or lost:
        out.unfinished = todo - len(out.done) - sum(1 for f in out.failed if not f[0].startswith("worker "))
    return out


def shard_from_env() -> Shard:
    """This process's ``Shard`` from the launcher's environment; alone (no store) without one."""
    d = dist_from_env()
    if not d.on:
        return Shard()
    import torch.distributed as dist

    store, rank, world = next(dist.rendezvous("env://", timeout=STORE_TIMEOUT))
    # a restarted torchrun group meets in the same agent store: keys of the failed attempt are not ours
    prefix = f"skyforecast-predict/{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}/"
    return Shard(rank, world, d.local_rank, dist.PrefixStore(prefix, store))


def rank_device(device: str, shard: Shard) -> str:
    """``--device`` for this rank: ``auto`` and ``cuda`` become ``cuda:LOCAL_RANK`` (modulo the GPUs there
    are) when CUDA is there, so the ranks of a node share its GPUs; anything else is kept."""
    if not shard.on or device not in ("auto", "cuda"):
        return device
    import torch

    if not torch.cuda.is_available():
        return device
    return f"cuda:{shard.local_rank % torch.cuda.device_count()}"


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def auto_workers(cores: int | None = None, free_bytes: int | None = None) -> int:
    """``--workers`` by default: one per ``CORES_PER_WORKER`` cores this process may use, as many as the
    free memory holds, at least one."""
    if cores is None:
        cores = usable_cores()
    if free_bytes is None:
        free_bytes = _free_memory()
    return max(1, min(cores // CORES_PER_WORKER, free_bytes // BYTES_PER_WORKER))


def _free_memory() -> int:
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return BYTES_PER_WORKER  # unknown: memory does not limit


def _host() -> str:
    return socket.gethostname()


# ---- predict --workers: worker processes on this machine ----


def start_workers(
    count: int, jobs: Sequence[Job], *, weights: str | None, device: str, engine: str = "torch", **run_kwargs
) -> Shard:
    """Rank 0's ``Shard`` for ``count`` processes on this machine: this one and ``count - 1`` workers it
    starts, each loading the model itself (a few tenths of a second; sharing one copy would need forked
    processes, which torch's thread pools do not survive). The workers' events reach ``on_event`` here, so
    one console shows every photo (``Shard.run``)."""
    import multiprocessing as mp

    import torch.distributed as dist

    store = dist.TCPStore("127.0.0.1", 0, count, True, timeout=STORE_TIMEOUT, wait_for_workers=False)
    shard = Shard(0, count, 0, store)
    shard.todo = [jobs[i] for i in largest_first([i for i, j in enumerate(jobs) if not j.skip], jobs)]
    _clear_finished(jobs)
    ctx = mp.get_context("spawn")  # not fork: torch's thread pools are not fork-safe
    events = ctx.Queue()
    threads = worker_threads(count)
    procs = [
        ctx.Process(
            target=_worker,
            args=(rank, count, store.port, shard.todo, weights, device, engine, threads, run_kwargs, events),
            name=f"skyforecast-worker-{rank}",
        )
        for rank in range(1, count)
    ]
    for p in procs:
        p.start()

    def alive() -> list[str]:
        return [""] + [_why_ended(store, rank, p.exitcode) for rank, p in enumerate(procs, 1)]

    def join() -> None:
        for p in procs:
            p.join()

    shard.alive, shard.join, shard.events = alive, join, events
    _limit_threads(threads)
    return shard


def _why_ended(store, rank: int, exitcode: int | None) -> str:
    """Why a worker ended without its report ("" while it runs, or when it ended well)."""
    if exitcode is None or exitcode == 0:
        return ""
    if store.check([f"error/{rank}"]):
        return store.get(f"error/{rank}").decode()
    return f"ended early (exit code {exitcode})"


def worker_threads(count: int, cores: int | None = None) -> int:
    """Model threads for each of ``count`` processes sharing this machine: its cores split evenly, never more
    than ``OMP_NUM_THREADS`` where the user set it (a thread limit chosen for the machine, or for outputs
    that must be the same bytes as one process's: the thread count changes the rounding of the model's
    sums)."""
    if cores is None:
        cores = usable_cores()
    threads = max(1, cores // count)
    try:
        limit = int(os.environ.get("OMP_NUM_THREADS", ""))
    except ValueError:
        return threads
    return max(1, min(threads, limit))


def _limit_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _worker(rank, world, port, todo, weights, device, engine, threads, run_kwargs, events) -> None:
    """One ``--workers`` process: load the model (``engine``: torch or numpy), take photos until none are
    left, report."""
    import torch.distributed as dist

    from .model.engines import load_pipeline

    _limit_threads(threads)
    store = dist.TCPStore("127.0.0.1", port, world, False, timeout=STORE_TIMEOUT)
    shard = Shard(rank, world, rank, store, todo=list(todo))

    def forward(kind: str, job: Job, detail: str) -> None:
        events.put((kind, str(job.source), detail))

    try:
        pipe = load_pipeline(weights, rank_device(device, shard), engine=engine)
        shard.run(pipe, [], on_event=forward, **run_kwargs)
    except KeyboardInterrupt:  # before the batch began (the batch itself finishes what it started)
        sys.exit(130)
    except Exception as e:  # noqa: BLE001 - one line for rank 0's summary, not a traceback here
        store.set(f"error/{rank}", f"{type(e).__name__}: {e}")
        sys.exit(1)
