"""Batch prediction over files and folders: plan the outputs (``batchplan``), skip finished ones, decode and
encode in worker threads while the model runs, and account for every input (done, skipped, failed).

This is the API behind ``skyforecast predict``; it never prints. Progress goes through a callback.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

# Planning (the jobs, their output names, the output folders) is ``batchplan``; its names stay importable
# from here, where the command line and earlier code import them.
from .batchplan import (
    MEDIA_SUFFIXES,
    VIDEO_SUFFIXES,
    Job,
    UsageError,
    _out_of_space,
    check_output_folders,
    parse_formats,
    photos_in_subfolders,
    plan,
)
from .io.files import remove_partials
from .io.media import Encoding, InputError, Photo, load_photo, squash
from .render.postprocess import Output, PlainOutput

if TYPE_CHECKING:
    from .model.pipeline import SkyPipeline

__all__ = [
    "MEDIA_SUFFIXES",
    "VIDEO_SUFFIXES",
    "WRITER_NICENESS",
    "BatchResult",
    "Job",
    "UsageError",
    "check_output_folders",
    "parse_formats",
    "photos_in_subfolders",
    "plan",
    "run",
]

# How much lower the writer threads (and the ffmpeg processes they start) run than the model. The model's
# convolutions split their work evenly over all cores, so an encoder that takes a core from one of them
# stalls all of them; at a lower priority the encoders fill the gaps between the model's calls instead, and
# take the cores fully once the model is done.
WRITER_NICENESS = 10


@dataclass
class BatchResult:
    done: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    notes: list[tuple[str, str]] = field(default_factory=list)
    skipped_outputs: list[Path] = field(default_factory=list)  # the existing outputs that were kept
    renamed: list[tuple[str, str]] = field(default_factory=list)  # (photo, how its outputs were named)
    interrupted: bool = False
    stopped: str | None = None  # why the batch stopped early (disk full), if it did
    unfinished: int = 0  # photos neither done nor failed when interrupted or stopped
    # seconds per photo and step: "read" (decoding), "predict" (its share of the model call of its batch
    # of photos, and the rendering set-up that runs there), "write" (rendering and encoding)
    seconds: dict[Path, dict[str, float]] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """130 after Ctrl-C (the shell convention, 128 + SIGINT), 1 if any photo failed or the batch
        stopped early, else 0."""
        if self.interrupted:
            return 130
        return 1 if (self.failed or self.stopped) else 0


Callback = Callable[[str, Job, str], None]


def run(
    pipe: SkyPipeline | None,
    jobs: Sequence[Job],
    *,
    stage: int = 2,
    size: str | None = None,
    fps: float = 8,
    batch_size: int = 8,
    overwrite: bool = False,
    on_event: Callback | None = None,
    io_workers: int = 2,
    post: Output | None = None,
    encoding: Encoding | None = None,
    take: Callable[[int], list[Job]] | None = None,
) -> BatchResult:
    """Predict and write every job. Decoding of the next batch and encoding of finished videos run in
    worker threads while the model computes. ``on_event(kind, job, detail)`` is called with kind in
    ``done``, ``skipped``, ``failed``, ``note`` (for progress bars and logs), and with ``frame`` and detail
    ``"done/total"`` as each frame of a photo is rendered by a frame-by-frame output (from the writer
    threads).

    ``post``: the output (``postprocess.Output``): ``PostProcess`` (full resolution, still mask, loops,
    longer videos, comparison) or, by default, ``PlainOutput(size)`` (the model's frames resized to
    ``size``; ``size`` is used only for this default). Its ``predict`` runs here in the model's thread, its
    ``write`` in the writer threads. ``pipe`` may be None when every job is skipped.

    ``take``: when several processes share the work (``sharding``), the photos come from it instead of
    ``jobs``: called with the most photos the model wants, it returns those this process claimed ([] when
    none are left), and is called only when a writer thread is free, so that no process holds photos
    another could start sooner. ``jobs`` are then the ones this process accounts as skipped."""
    batch = _Batch(
        pipe,
        post if post is not None else PlainOutput(size),
        stage=stage,
        fps=fps,
        batch_size=max(1, batch_size),
        overwrite=overwrite,
        emit=on_event or (lambda kind, job, detail: None),
        encoding=encoding,
    )
    todo = batch.skip_finished(jobs)
    if take is None:
        # what a run killed earlier on this machine left beside these outputs (``sharding`` clears its own)
        remove_partials(*(path for job in jobs for path in job.outputs.values()), dead_only=True)
        chunks = iter([todo[i : i + batch.batch_size] for i in range(0, len(todo), batch.batch_size)])
    else:
        batch.paced, todo = True, []
        chunks = iter(lambda: _taken(todo, take(batch.batch_size)), [])
    batch.run(chunks, io_workers=max(1, io_workers))
    result = batch.result
    if result.interrupted or result.stopped:
        result.unfinished = len(todo) - len(result.done) - len(result.failed)
    return result


def _taken(todo: list[Job], jobs: list[Job]) -> list[Job]:
    todo.extend(jobs)
    return jobs


class _Batch:
    """One ``run``: the model's loop over chunks of photos, with a decoding thread ahead of it and writer
    threads behind it, and the accounting of every photo in ``result``."""

    def __init__(
        self,
        pipe: SkyPipeline | None,
        post: Output,
        *,
        stage: int,
        fps: float,
        batch_size: int,
        overwrite: bool,
        emit: Callback,
        encoding: Encoding | None = None,
    ):
        self.pipe, self.post, self.stage, self.fps = pipe, post, stage, fps
        self.encoding = encoding
        self.batch_size, self.overwrite, self.emit = batch_size, overwrite, emit
        self.result = BatchResult()
        self.pending_writes: list[tuple[Job, Future]] = []
        self.paced = False  # take the next photos only when a writer is free (see ``run``'s ``take``)

    def skip_finished(self, jobs: Sequence[Job]) -> list[Job]:
        """Account for the jobs whose outputs exist (and for renamed outputs); the rest are to do."""
        todo = []
        for job in jobs:
            if job.renamed:
                self.result.renamed.append((str(job.source), job.renamed))
            if job.skip:
                self.result.skipped.append(job.source)
                self.result.skipped_outputs.extend(job.outputs.values())
                self.emit("skipped", job, "outputs exist")
            else:
                todo.append(job)
        return todo

    def run(self, chunks: Iterator[list[Job]], io_workers: int) -> None:
        # decoding feeds the model's next call: its own thread, at normal priority; encoding yields to the
        # model
        self.loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="skyforecast-decode")
        self.writers = ThreadPoolExecutor(
            max_workers=io_workers, thread_name_prefix="skyforecast-encode", initializer=_lower_priority
        )
        self.io_workers = io_workers
        next_loads: list[tuple[Job, Future]] = []
        try:
            next_loads = self._submit_loads(next(chunks, []))
            while next_loads:
                loads = next_loads
                next_loads = self._submit_loads(next(chunks, []))
                ready = self._collect(loads)
                if ready:
                    self._predict(ready)
                self._settle_writes(block=False)
                if self.result.stopped:
                    break
            self._settle_writes(block=True)
        except KeyboardInterrupt:
            self.finish_interrupted(next_loads)
        finally:
            self.loader.shutdown(wait=True, cancel_futures=True)
            self.writers.shutdown(wait=True, cancel_futures=True)

    def finish_interrupted(self, next_loads: Sequence[tuple[Job, Future]]) -> None:
        """After a Ctrl-C: the photos not yet decoded are dropped, the videos already predicted finished
        (each write is atomic). A Ctrl-C can land inside ``_settle_writes`` after it counted a photo and
        before it took that write off the list; those are dropped first, or they were counted twice (the
        summary said 6 done with 5 videos written)."""
        self.result.interrupted = True
        for _, fut in next_loads:
            fut.cancel()
        counted = {str(source) for source in self.result.done} | {source for source, _ in self.result.failed}
        self.pending_writes[:] = [(j, f) for j, f in self.pending_writes if str(j.source) not in counted]
        self._settle_writes(block=True)

    def _submit_loads(self, chunk: list[Job]) -> list[tuple[Job, Future]]:
        return [(job, self.loader.submit(self._timed, job, "read", load_photo, job.source)) for job in chunk]

    def _timed(self, job: Job, step: str, work: Callable, *args, **kwargs):
        """``work(*args, **kwargs)``, its seconds added to ``job``'s ``step`` (also when it fails)."""
        start = time.perf_counter()
        try:
            return work(*args, **kwargs)
        finally:
            self._add_seconds(job, step, time.perf_counter() - start)

    def _add_seconds(self, job: Job, step: str, seconds: float) -> None:
        steps = self.result.seconds.setdefault(job.source, {})
        steps[step] = steps.get(step, 0.0) + seconds

    def _note(self, job: Job, note: str) -> None:
        self.result.notes.append((str(job.source), note))
        self.emit("note", job, note)

    def _collect(self, loads: list[tuple[Job, Future]]) -> list[tuple[Job, Photo]]:
        """The decoded photos of a chunk; one that cannot be read is that photo's failure."""
        ready: list[tuple[Job, Photo]] = []
        for job, fut in loads:
            try:
                photo = fut.result()
            except InputError as e:
                self.result.failed.append((str(job.source), e.reason))
                self.emit("failed", job, e.reason)
                continue
            for note in photo.notes:
                self._note(job, note)
            ready.append((job, photo))
        return ready

    def _predict(self, ready: list[tuple[Job, Photo]]) -> None:
        """The model's work for one chunk, then each photo's write handed to the writer threads."""
        start = time.perf_counter()
        squares = np.stack([squash(photo.image) for _, photo in ready])
        videos = self.post.predict(self.pipe, squares, stage=self.stage, batch_size=self.batch_size)
        for job, _ in ready:
            self._add_seconds(job, "predict", (time.perf_counter() - start) / len(ready))
        for (job, photo), video in zip(ready, videos, strict=True):
            out_size, note = self.post.output_size(photo.size)
            if note:
                self._note(job, note)
            self.pending_writes.append((job, self.writers.submit(self._write, job, photo, video, out_size)))
        if self.post.frame_by_frame or self.paced:
            # rendering a photo-sized video takes longer than predicting it: the model waits for the
            # writers rather than queue every video of the batch (memory, and a Ctrl-C that has to finish
            # them all); paced, it waits for a free writer before it takes more photos
            busy = [f for _, f in self.pending_writes if not f.done()]
            while len(busy) > (self.io_workers - 1 if self.paced else 2 * self.io_workers):
                wait(busy, return_when=FIRST_COMPLETED)
                busy = [f for f in busy if not f.done()]

    def _write(self, job: Job, photo: Photo, videos: np.ndarray, out_size: tuple[int, int]) -> list[str]:
        """One photo's outputs (in a writer thread); with a frame-by-frame output, progress per frame."""
        targets = job.outputs if self.overwrite else job.missing

        def on_frame(done: int, total: int) -> None:
            self.emit("frame", job, f"{done}/{total}")

        return self._timed(
            job,
            "write",
            self.post.write,
            photo,
            videos,
            targets,
            out_size,
            fps=self.fps,
            on_frame=on_frame,
            encoding=self.encoding,
        )

    def _settle_writes(self, block: bool) -> None:
        """Count the finished writes (all of them with ``block``): done, or that photo's failure. In input
        order: a write that finished early waits for those before it, so the same command reports its
        photos in the same order every time."""
        result, keep = self.result, []
        for job, fut in self.pending_writes:
            if keep or (not block and not fut.done()):
                keep.append((job, fut))
                continue
            try:
                notes = fut.result() or []
            except Exception as e:  # a write failure is this photo's failure, not the batch's
                if result.interrupted or result.stopped:
                    continue  # stopped mid-write: nothing was left behind (atomic), counted unfinished
                result.failed.append((str(job.source), _reason(e)))
                self.emit("failed", job, _reason(e))
                if _out_of_space(e):  # every later photo would fail the same way: stop here
                    result.stopped = _reason(e)
            else:
                for note in notes:
                    self._note(job, note)
                result.done.append(job.source)
                self.emit("done", job, "")
        self.pending_writes[:] = keep


def _lower_priority() -> None:
    """Run the calling thread, and the processes it starts, ``WRITER_NICENESS`` steps nicer. Linux only:
    there a thread has its own nice value, which ``setpriority`` on its thread id changes and child
    processes inherit (elsewhere the same call would change the whole process)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + WRITER_NICENESS))
    except OSError:  # not permitted in some sandboxes: encode at normal priority
        pass


def _reason(e: BaseException) -> str:
    if isinstance(e, InputError):
        return e.reason
    if isinstance(e, IsADirectoryError):  # its file name is the temporary one: not what the user named
        return "cannot write output: the output path is a folder"
    if isinstance(e, PermissionError):
        return f"cannot write output ({e.strerror}: {e.filename})"
    if _out_of_space(e):
        return "cannot write output: disk full (or over the quota / file-size limit)"
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__
