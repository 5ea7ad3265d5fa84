"""Batch prediction over files and folders: plan the outputs, skip finished ones, decode and encode in
worker threads while the model runs, and account for every input (done, skipped, failed).

This is the API behind ``skyforecast predict``; it never prints. Progress goes through a callback.
"""

from __future__ import annotations

import errno
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .io.media import FORMATS, Encoding, InputError, Photo, list_images, load_photo, output_name, squash
from .render.postprocess import Output, PlainOutput

if TYPE_CHECKING:
    from .model.pipeline import SkyPipeline

VIDEO_SUFFIXES = {".mp4": "mp4", ".gif": "gif"}
# Suffixes of video and image files that ``-o`` cannot write: such a name is a mistake, not a folder.
MEDIA_SUFFIXES = set(
    ".mov .m4v .mkv .webm .avi .wmv .flv .mpg .mpeg .m2ts .mts .ts .ogv .3gp .apng .webp .png .jpg .jpeg "
    ".tif .tiff .bmp .heic .avif".split()
)
# How much lower the writer threads (and the ffmpeg processes they start) run than the model. The model's
# convolutions split their work evenly over all cores, so an encoder that takes a core from one of them
# stalls all of them; at a lower priority the encoders fill the gaps between the model's calls instead, and
# take the cores fully once the model is done.
WRITER_NICENESS = 10


class UsageError(ValueError):
    """Arguments that cannot work together (exit code 2 on the command line)."""


@dataclass
class Job:
    """One input photo and the output paths it should produce, by format."""

    source: Path
    outputs: dict[str, Path]
    skip: bool = False
    renamed: str | None = None  # why the outputs are not named after the photo alone (a name clash)

    @property
    def missing(self) -> dict[str, Path]:
        return {f: p for f, p in self.outputs.items() if not p.exists()}


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


def parse_formats(formats: Sequence[str] | None) -> list[str]:
    """``["mp4", "gif"]``, ``["all"]``, ``["mp4,gif"]`` -> ordered unique list; default mp4."""
    out: list[str] = []
    for item in formats or ["mp4"]:
        for f in str(item).lower().split(","):
            f = f.strip()
            if not f:
                continue
            if f == "all":
                out.extend(FORMATS)
            elif f in FORMATS:
                out.append(f)
            else:
                raise UsageError(f"unknown --format {f!r}; choose from {', '.join(FORMATS)} or all")
    return list(dict.fromkeys(out))


def plan(
    inputs: Sequence[str | os.PathLike],
    output: str | os.PathLike | None = None,
    formats: Sequence[str] | None = None,
    recursive: bool = False,
    overwrite: bool = False,
    explicit_formats: bool = False,
) -> tuple[list[Job], list[tuple[str, str]]]:
    """Expand files and folders into jobs and decide each output path.

    ``output`` naming a ``.mp4``/``.gif`` file is allowed for a single input file; otherwise it is a
    folder (created as needed), and a folder input keeps its sub-folder structure below it.
    Returns (jobs, problems): problems are inputs that do not exist or folders with no images.
    """
    fmts = parse_formats(formats)
    problems: list[tuple[str, str]] = []
    sources: list[tuple[Path, Path]] = []  # (file, relative output stem)
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            images = list_images(p, recursive=recursive)
            if not images:
                hint = "" if recursive else " (use --recursive to look in sub-folders)"
                problems.append((str(p), f"no images in this folder{hint}"))
            sources.extend((img, img.relative_to(p).with_suffix("")) for img in images)
        elif p.exists():
            sources.append((p, Path(p.stem)))
        else:
            problems.append((str(p), "no such file or folder"))

    sources = _unique_files(sources)
    out = Path(output) if output is not None else Path.cwd()
    single_file = (
        output is not None and out.suffix.lower() in VIDEO_SUFFIXES and not _names_folder(str(output))
    )
    if output is not None and not single_file:
        _check_folder_name(str(output))
    if single_file:
        fmt = VIDEO_SUFFIXES[out.suffix.lower()]
        if len(sources) != 1 or any(Path(i).is_dir() for i in inputs):
            raise UsageError(
                f"-o {out} names a file, which needs exactly one input photo; name a folder instead"
            )
        if explicit_formats and fmts != [fmt]:
            raise UsageError(f"-o {out} is a .{fmt} file but --format asks for {', '.join(fmts)}")
        target, number = out, 1
        inputs = _input_keys([sources[0][0]], out.parent)
        while _name_key(Path(target.name)) in inputs:  # -o photo.gif for photo.gif: never the input
            number += 1
            target = out.with_name(f"{out.stem}_{number}{out.suffix}")
        job = Job(sources[0][0], {fmt: target})
        if target != out:
            job.renamed = f"written as {target} ({inputs[_name_key(Path(out.name))]})"
        job.skip = not overwrite and target.exists()
        return _kind_clashes([job], problems)

    jobs = []
    for src, rel, renamed in _distinct_names(sources, fmts, _input_keys([s for s, _ in sources], out)):
        job = Job(src, {f: out / rel.parent / output_name(rel.name, f) for f in fmts})
        if renamed:
            job.renamed = f"written as {next(iter(job.outputs.values()))} ({renamed})"
        job.skip = not overwrite and not job.missing
        jobs.append(job)
    return _kind_clashes(jobs, problems)


def _kind_clashes(
    jobs: list[Job], problems: list[tuple[str, str]]
) -> tuple[list[Job], list[tuple[str, str]]]:
    """Move to ``problems`` the jobs whose output path holds the other kind of thing: a folder where a video
    goes, or a file where a ``-f frames`` folder goes. Neither is an earlier output to skip or replace: the
    photo fails with a line in the user's words, and the file or folder is left alone."""
    kept = []
    for job in jobs:
        clash = next(
            (
                (path, "a folder" if path.is_dir() else "a file")
                for fmt, path in job.outputs.items()
                if path.exists() and path.is_dir() != (fmt == "frames")
            ),
            None,
        )
        if clash is None:
            kept.append(job)
        else:
            path, kind = clash
            problems.append(
                (str(job.source), f"cannot write {path}: it is {kind}; rename it or choose another -o")
            )
    return kept, problems


def _input_keys(photos: Sequence[Path], out: Path) -> dict[str, str]:
    """The names below ``out`` that outputs must not take, because an input photo is there: each photo's own
    path (``predict sunset.gif -f gif`` in its folder) and each folder that holds one (a ``-f frames``
    folder is replaced as a whole). Keys as ``_name_key`` spells them, relative to ``out``, found through
    symbolic links; each maps to the reason an output there is renamed."""
    root = os.path.realpath(out)
    keys: dict[str, str] = {}
    for photo in photos:
        rel = os.path.relpath(os.path.realpath(photo), root)
        if rel == os.pardir or rel.startswith(os.pardir + os.sep):
            continue
        rel_path = Path(rel)
        keys.setdefault(_name_key(rel_path), f"{photo} is an input photo")
        for folder in rel_path.parents:
            if str(folder) != ".":
                keys.setdefault(_name_key(folder), f"{out / folder} holds the input photo {photo}")
    return keys


def photos_in_subfolders(inputs: Sequence[str | os.PathLike]) -> int:
    """How many photos the folder inputs hold in their sub-folders: without ``--recursive`` they are left out,
    and a user who expected them should hear of it. Folders with no photo at the top are not counted
    (``plan`` reports them, with the same hint)."""
    count = 0
    for item in inputs:
        folder = Path(item)
        if folder.is_dir() and (top := len(list_images(folder))):
            count += len(list_images(folder, recursive=True)) - top
    return count


def _check_folder_name(output: str) -> None:
    """Refuse ``-o clip.mov``: a name with a video or image suffix we do not write would otherwise become a
    folder called ``clip.mov``. An existing folder, or a name ending in a slash, is a folder whatever its
    name."""
    path = Path(output)
    if _names_folder(output):
        return
    suffix = path.suffix.lower()
    if suffix in MEDIA_SUFFIXES:
        raise UsageError(
            f"-o {output}: {suffix} is not a format skyforecast writes; name a .mp4 or .gif file, or a "
            "folder (a name ending in / is always a folder; -f frames writes PNG frames)"
        )


def _names_folder(output: str) -> bool:
    """Whether ``-o`` names a folder whatever its suffix (``-o renders.mp4/``, an existing folder)."""
    return output.endswith(("/", os.sep)) or Path(output).is_dir()


def _unique_files(sources: list[tuple[Path, Path]]) -> list[tuple[Path, Path]]:
    """Drop a photo reached a second time (given twice, or as a file and inside a folder): it is predicted
    once, under the name it got first."""
    seen: set[str] = set()
    unique = []
    for src, rel in sources:
        key = os.path.normcase(os.path.realpath(src))
        if key not in seen:
            seen.add(key)
            unique.append((src, rel))
    return unique


def _distinct_names(
    sources: list[tuple[Path, Path]], fmts: Sequence[str], inputs: dict[str, str] | None = None
) -> list[tuple[Path, Path, str | None]]:
    """Give every photo its own output name, so that no output is written over another's.

    A folder input keeps its sub-folder structure, and a photo is named after its stem. Where photos still
    share a name: ``x.jpg`` and ``x.png`` become ``x_jpg`` and ``x_png``; any other clash (the same name in
    two folders, a file beside a folder's photo) keeps the first name and numbers the rest ``coast_2``,
    ``coast_3``, in input order, so the same command names the same outputs every time. Names are compared
    case-insensitively (as macOS and Windows file systems do), and a name that would be the folder of
    another output counts as a clash too, and so does a name in ``inputs`` (``_input_keys``): no output is
    ever written over an input photo. Returns (photo, relative stem, why it was renamed)."""
    inputs = inputs or {}
    groups: dict[str, list[int]] = {}
    for i, (_, rel) in enumerate(sources):
        groups.setdefault(_name_key(rel), []).append(i)
    rels = [rel for _, rel in sources]
    clashed: dict[int, str] = {}
    for group in groups.values():
        if len(group) < 2:
            continue
        suffixes = [sources[i][0].suffix.lstrip(".").lower() for i in group]
        if len(set(suffixes)) == len(group):
            for i, suffix in zip(group, suffixes, strict=True):
                rels[i] = rels[i].with_name(f"{rels[i].name}_{suffix}")
                clashed[i] = f"{sources[group[0] if i != group[0] else group[1]][0]} has the same name"
    # the sub-folders come from the inputs and stay; a photo's name gives way to them
    folders: dict[str, int] = {}
    for i, rel in enumerate(rels):
        for parent in rel.parents:
            if str(parent) != ".":
                folders.setdefault(_name_key(parent), i)
    taken: dict[str, int] = {}  # output path key -> the photo whose output it is
    named = []
    for i, (src, _) in enumerate(sources):
        rel, number = rels[i], 1
        while True:
            keys = [_name_key(rel.parent / output_name(rel.name, f)) for f in fmts]
            held = next((inputs[k] for k in keys if k in inputs), None)
            if held is not None:
                clashed.setdefault(i, held)
            else:
                owner = next((taken.get(k, folders.get(k)) for k in keys if k in taken or k in folders), None)
                if owner is None:
                    break
                clashed.setdefault(i, f"{sources[owner][0]} has the same name")
            number += 1
            rel = rels[i].with_name(f"{rels[i].name}_{number}")
        taken.update(dict.fromkeys(keys, i))
        named.append((src, rel, clashed.get(i)))
    return named


def _name_key(rel: Path) -> str:
    return rel.as_posix().casefold()


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
            self.result.interrupted = True
            for _, fut in next_loads:
                fut.cancel()
            self._settle_writes(block=True)  # videos already predicted are finished; each write is atomic
        finally:
            self.loader.shutdown(wait=True, cancel_futures=True)
            self.writers.shutdown(wait=True, cancel_futures=True)

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


def check_output_folders(jobs: Sequence[Job]) -> list[tuple[str, str]]:
    """Create the output folders of the jobs still to do and prove each writable with a temporary file,
    before the model is loaded: a wrong ``-o`` is one clear error, not one failure per photo.
    Returns (folder, reason) for each folder that cannot be used."""
    folders = dict.fromkeys(p.parent for job in jobs if not job.skip for p in job.outputs.values())
    problems = []
    for folder in folders:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=folder, prefix=".skyforecast-check-"):
                pass
        except OSError as e:
            problems.append((str(folder), _folder_reason(folder, e)))
    return problems


def _folder_reason(folder: Path, e: OSError) -> str:
    if isinstance(e, (NotADirectoryError, FileExistsError)):
        blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), folder)
        return f"{blocker} is a file, not a folder"
    if isinstance(e, PermissionError):
        return "permission denied"
    if e.errno == errno.EROFS:
        return "read-only file system"
    if _out_of_space(e):
        return "no space left on the device"
    return e.strerror or str(e)


def _out_of_space(e: BaseException) -> bool:
    """Disk full, quota exceeded, or the file-size limit: the errors no later photo can get past."""
    codes = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
    if isinstance(e, OSError) and e.errno in codes:
        return True
    text = str(e)
    return any(os.strerror(c) in text for c in codes)  # ffmpeg reports them only in its message


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
