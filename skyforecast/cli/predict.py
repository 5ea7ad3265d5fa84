"""``skyforecast predict``: photos and folders in, videos out (the batch API with a progress bar and a
summary; under torchrun or with ``--workers``, shared between processes)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..io.constants import MAX_FRAMES
from .common import Ending, _Device, _fail, _flag, _Weights, app

# ---- predict ----


def _beyond(*names: str, text: str, **extra):
    """An option of predict's "Beyond the paper" group (what turns a prediction into a video to post)."""
    return typer.Option(*names, help=text, rich_help_panel="Beyond the paper", **extra)


@app.command(no_args_is_help=True)
def predict(
    inputs: Annotated[
        list[Path],
        typer.Argument(help="Photos and/or folders of photos.", show_default=False, metavar="PHOTO"),
    ],
    output: Annotated[
        Optional[str],  # noqa: UP045 - a str: a trailing / (always a folder) must survive
        typer.Option(
            "-o",
            "--output",
            help="Output folder, or a .mp4/.gif file for one photo. Default: the current folder.",
            metavar="PATH",
        ),
    ] = None,
    formats: Annotated[
        list[str],
        typer.Option(
            "--format", "-f", help="mp4, gif, frames (PNG folder) or all. Repeatable.", metavar="FORMAT"
        ),
    ] = ["mp4"],  # noqa: B006 - typer reads the default
    fps: Annotated[
        float, typer.Option(min=0.5, max=120, help="Frames per second of written videos.", metavar="FPS")
    ] = 8,
    crf: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(
            min=0,
            max=51,
            help="MP4 quality, 0-51: lower is better and larger. Default 18 (h264), 20 (h265). GIF and "
            "frames outputs ignore it.",
            metavar="N",
        ),
    ] = None,
    codec: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            help="MP4 codec: h264 (default, plays everywhere) or h265 (smaller files; needs ffmpeg with "
            "libx265). GIF and frames outputs ignore it.",
            metavar="CODEC",
        ),
    ] = None,
    stage: Annotated[
        int, typer.Option(min=1, max=2, help="2: Refine-Net (final); 1: Base-Net only.", metavar="1|2")
    ] = 2,
    size: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            help="Switches to --resolution model (the prediction's own pixels) at this frame size: N "
            "(square) or WxH. Default there: the photo's aspect ratio at 128 px height; 128 gives the "
            "model's raw square.",
            metavar="SIZE",
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Photos per model call.", metavar="N")] = 8,
    recursive: Annotated[bool, typer.Option("--recursive", "-r", help="Descend into sub-folders.")] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace existing outputs (default: skip them).")
    ] = False,
    weights: _Weights = None,
    device: _Device = "auto",
    engine: Annotated[
        str,
        typer.Option(
            help="What runs the model: auto (numpy for one photo on the CPU, which starts a second "
            "sooner without importing torch; torch otherwise), torch or numpy.",
            metavar="ENGINE",
        ),
    ] = "auto",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors and the summary.")] = False,
    json_path: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--json",
            help="Also write what happened as JSON (each photo: outputs, status, reason, seconds) to FILE, "
            "or to standard output with -.",
            metavar="FILE",
        ),
    ] = None,
    workers: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(
            min=1,
            help="Photos predicted at once, in as many processes on this machine. Default: one per 4 cores, "
            "as many as the free memory holds. Under torchrun each rank is one process.",
            metavar="N",
        ),
    ] = None,
    resolution: Annotated[
        Optional[str],  # noqa: UP045
        _beyond(
            text="Default: the photo itself animated with the predicted motion at its own size, scaled down "
            "to fit 1920x1080 (GIF: 480 px high). native (the photo's size, capped at 4K worth of pixels), a "
            "height such as 1080, or model (the prediction's own 128 px pixels, for research).",
            metavar="RES",
        ),
    ] = None,
    mask: Annotated[
        Optional[str],  # noqa: UP045
        _beyond(
            text="What may move: a mask image (white = sky, black = still), auto (the photo's sky, found "
            "from the photo) or none. Default: auto, none with --resolution model.",
            metavar="MASK",
        ),
    ] = None,
    loop: Annotated[bool, _beyond("--loop", text="A seamless loop (for GIFs, wallpapers).")] = False,
    loop_style: Annotated[
        str, _beyond(text="fade (cross-fade the end into the start) or pingpong.", metavar="STYLE")
    ] = "fade",
    frames: Annotated[
        int,
        _beyond(
            text="Frames to write: the steady sky motion goes on as long as asked (with --resolution model "
            "predictions are chained).",
            metavar="N",
            min=1,
            max=MAX_FRAMES,
        ),
    ] = 32,
    compare: Annotated[bool, _beyond("--compare", text="Side by side: photo | Stage I | Stage II.")] = False,
    flow: Annotated[
        str, _beyond(text="Optical flow for --resolution: dis or farneback.", metavar="METHOD")
    ] = "dis",
    speed: Annotated[
        Optional[str],  # noqa: UP045
        _beyond(
            text="Sky speed: a factor of real time-lapse speed (1.5 or 1.5x) or pixels per frame at the "
            "output size (3px). Default 1x."
        ),
    ] = None,
    direction: Annotated[
        Optional[str],  # noqa: UP045
        _beyond(
            text="Drift direction: auto (the prediction's when it is consistent, else to the right), left, "
            "right, up, down, or degrees (0 = right, 90 = up)."
        ),
    ] = None,
    light: Annotated[
        bool,
        _beyond("--light", text="Carry the prediction's global brightness/colour trend over (at most 8%)."),
    ] = False,
) -> None:
    """Predict a sky time-lapse for each photo.

    \b
    Examples:
      skyforecast predict photo.jpg                 # -> photo.mp4
      skyforecast predict photos/ -o out/ -f gif    # a whole folder
      skyforecast predict photo.jpg --stage 1 -o base.gif
      skyforecast predict photo.jpg --resolution native --loop
    """
    import time

    _share_the_cores()

    from rich.console import Console

    from ..batch import BatchResult, UsageError, plan
    from ..io.constants import ArgumentError
    from ..model.engines import ENGINES
    from ..report import check_json_path

    started = time.perf_counter()

    console = Console(stderr=True, highlight=False)
    explicit = any(f != "mp4" for f in formats) or len(formats) != 1
    try:
        looks = dict(resolution=resolution, mask=mask, loop=loop_style if loop else None, frames=frames)
        looks.update(compare=compare, flow=flow, speed=speed, direction=direction, light=light)
        post, ignored = _predict_output(size, **looks)
        jobs, problems = plan(inputs, output, formats, recursive, overwrite, explicit_formats=explicit)
        encoding, check_encoder = _encoding(codec, crf, jobs)
    except ArgumentError as e:  # named as the library spells it: worded with predict's flags
        _fail(e.worded(_flag), code=2)
    except (UsageError, ValueError) as e:
        _fail(str(e), code=2)
    if engine not in ENGINES:
        _fail(f"unknown --engine {engine!r}: choose {', '.join(ENGINES)}", code=2)
    if json_path is not None and (bad := check_json_path(json_path, jobs, inputs)):
        _fail(bad, code=2)
    shard = _shard(jobs)  # under torchrun: this rank's place; None alone
    main = shard is None or shard.main
    if main:  # rank 0 speaks for every rank
        mp4_options = crf is not None or codec is not None
        _plan_lines(console, problems, quiet, jobs, inputs, recursive, ignored, fps, mp4_options)
    if not jobs:  # nothing to do: still one summary, so every input is accounted for
        nothing = BatchResult(failed=list(problems))
        if main:
            _summary(console, nothing, jobs, json_path, time.perf_counter() - started)
        raise typer.Exit(nothing.exit_code)

    todo = shard.todo if shard is not None else [j for j in jobs if not j.skip]
    run_options = dict(stage=stage, fps=fps, batch_size=batch_size, overwrite=overwrite, post=post)
    run_options.update(encoding=encoding)
    pipe = None
    if todo:
        from ..batch import check_output_folders

        for folder, reason in check_output_folders(todo):
            _fail(f"cannot write to output folder {folder}: {reason}")
        if shard is not None or (workers != 1 and len(todo) > 1):  # processes share the photos:
            engine = "torch" if engine == "auto" else engine  # every one predicts the same way
        if shard is None and workers != 1 and len(todo) > 1:
            shard = _start_workers(workers, jobs, todo, weights, device, dict(run_options, engine=engine))
        early = None if shard is not None else lambda: post.prefetch(todo)  # which photos come first?
        pipe = _load_model(
            weights, _rank_device(device, shard), len(todo), engine=engine, early=early, ready=check_encoder
        )
    try:
        result = _run_with_progress(console, pipe, jobs, quiet, shard=shard, **run_options)
    except KeyboardInterrupt:  # a second Ctrl-C while the videos in progress were being finished
        _fail("interrupted; outputs are complete or absent (never partial): run the command again", 130)
    result.failed[:0] = problems
    if main:
        _shared_summary(console, result, quiet, shard, jobs, json_path, time.perf_counter() - started)
    if shard is not None:
        shard.end()  # the ranks leave together, once rank 0 has printed
    Ending.without_teardown = pipe is not None  # every output is complete (or absent): see main()
    raise typer.Exit(result.exit_code)


def _share_the_cores() -> None:
    """Thread settings for a run whose model shares the cores with the sky mask, the renderer and x264; set
    before numpy and torch load (an explicit setting in the environment wins)."""
    import os

    # Idle OpenMP threads sleep instead of spinning (libgomp's default spins first). With anything else on
    # the cores (our own video encoders, other programs) the spinning stalled the model: one photo at
    # ngf=32 took 4.5 -> 3.5 CPU-s on a busy 2-core machine. Read when torch loads.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    # numpy's matrix products (the numpy engine's model) on one thread: they share the cores with the sky
    # mask, the renderer and x264, and two BLAS threads beside a busy one stalled each other (a photo's
    # prediction 0.3-0.7 s; one thread 0.23 s, two alone 0.19 s). Read when numpy loads.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def _plan_lines(
    console, problems, quiet: bool, jobs, inputs, recursive: bool, ignored, fps: float, mp4: bool
):
    """The lines before the run: the inputs that cannot be done, then (not with -q) notes on options some
    formats or the model resolution ignore, and on photos left out."""
    from rich.markup import escape

    from ..batch import photos_in_subfolders

    for path, reason in problems:
        console.print(f"[bold red]error:[/] {escape(f'{path}: {reason}')}", soft_wrap=True)
    if quiet:
        return
    mp4_options = mp4
    _note_outputs(console, jobs, fps, mp4_options=mp4_options)
    if not recursive and (hidden := photos_in_subfolders(inputs)):
        photos = "1 photo in a sub-folder" if hidden == 1 else f"{hidden} photos in sub-folders"
        console.print(f"[yellow]note:[/] {photos}; -r includes them", soft_wrap=True)
    if ignored:
        flags = " and ".join(_flag(name) for name in ignored)
        console.print(
            f"[yellow]note:[/] {flags} shape the sky's steady motion, which --resolution model does not "
            "use (it writes the prediction's own frames): ignored",
            soft_wrap=True,
        )


def _shard(jobs):
    """This process's ``sharding.Shard`` when a launcher (torchrun) started several, after every rank agreed
    on the plan; None alone."""
    import os

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    from ..sharding import ShardError, shard_from_env

    shard = shard_from_env()
    try:
        shard.agree(jobs)
    except ShardError as e:
        if shard.main:
            _fail(str(e))
        raise typer.Exit(1) from None
    return shard


def _start_workers(workers: int | None, jobs, todo, weights: str | None, device: str, run_options):
    """``--workers``: the shard of this process and the workers it starts; None when one process is best."""
    from ..sharding import auto_workers, start_workers

    count = min(len(todo), workers or auto_workers())
    if count <= 1:
        return None
    return start_workers(count, jobs, weights=weights, device=device, **run_options)


def _rank_device(device: str, shard) -> str:
    if shard is None:
        return device
    from ..sharding import rank_device

    return rank_device(device, shard)


def _shared_summary(console, result, quiet: bool, shard, jobs, json_path: str | None, seconds: float) -> None:
    """predict's summary; for several processes, also the other ranks' failures and each rank's rate."""
    if shard is not None:
        _other_ranks_failures(console, shard)
    _summary(console, result, jobs, json_path, seconds)
    if shard is not None and not quiet:
        _ranks_summary(console, shard)


def _other_ranks_failures(console, shard) -> None:
    """Rank 0 repeats what failed on the other ranks (whose lines may be in another node's log), and says
    which workers ended before they finished."""
    from rich.markup import escape

    if shard.join is None:  # --workers' failures were shown here as they happened
        for r in shard.reports[1:]:
            for path, reason in r.failed:
                line = escape(f"{path}: {reason} (rank {r.rank}, {r.host})")
                console.print(f"[bold red]error:[/] {line}", soft_wrap=True)
    for rank, why in shard.lost.items():
        console.print(f"[bold red]error:[/] {escape(f'worker {rank}: {why}')}", soft_wrap=True)


def _ranks_summary(console, shard) -> None:
    """One line per process: where it ran and how fast (photos per second of its own run)."""
    for r in shard.reports:
        console.print(
            f"  rank {r.rank} ({r.host}, {r.device or 'no model'}): {r.done} done of {r.taken} taken in "
            f"{r.seconds:.1f} s ({r.rate:.2f} photos/s)",
            soft_wrap=True,
        )


def _predict_output(size: str | None, **options):
    """predict's output (``postprocess.Output``) from its options: ``PostProcess``, or ``PlainOutput`` when
    they ask for the model's own frames at ``--size``, written whole; and the options it ignores. Raises
    ``ArgumentError`` (a bad option) or ``ValueError`` (a bad ``--size``)."""
    from ..io.media import parse_size
    from ..render.postprocess import PlainOutput, PostProcess

    if size is not None:
        parse_size(size)
    post = PostProcess(size=size, **options)
    return (PlainOutput(size) if post.is_plain else post), post.ignored


def _note_gif_fps(console, fps: float, jobs) -> None:
    from ..io.media import GIF_MAX_FPS

    if fps > GIF_MAX_FPS and any("gif" in job.outputs for job in jobs):
        console.print(
            f"[yellow]note:[/] GIFs play at most {GIF_MAX_FPS} fps (browsers slow shorter frame delays "
            f"down); the GIFs get {GIF_MAX_FPS} fps, other formats {fps:g}",
            soft_wrap=True,
        )


def _encoding(codec: str | None, crf: int | None, jobs):
    """predict's ``media.Encoding`` (raises ``ArgumentError`` for a bad value) and a function that raises
    ``ArgumentError`` when MP4s are to be written and ffmpeg lacks the encoder (libx265). ffmpeg is asked in
    a thread that runs while torch loads (a process start, ~20 ms that were on the way to the first video);
    ``_load_model`` calls the function before it reads the weights."""
    import threading

    from ..io.media import Encoding

    encoding = Encoding(codec or "h264", crf)
    if not any("mp4" in job.outputs for job in jobs if not job.skip):
        return encoding, lambda: None
    asked = threading.Thread(target=_quietly, args=(encoding.check,), name="skyforecast-encoders")
    asked.start()

    def check() -> None:
        asked.join()
        encoding.check()  # the listing is cached by now: this only compares

    return encoding, check


def _quietly(work: Callable[[], None]) -> None:
    """``work()`` with any exception left for the caller to meet again when it does the same work."""
    try:
        work()
    except Exception:  # noqa: BLE001 - check() raises it again in the main thread
        pass


def _note_outputs(console, jobs, fps: float, mp4_options: bool) -> None:
    """Notes on options that some formats cannot follow: GIF's top rate; --crf/--codec with only GIFs or
    PNG frames to write (they are ignored, and the user should know)."""
    _note_gif_fps(console, fps, jobs)
    if mp4_options and jobs and not any("mp4" in job.outputs for job in jobs):
        note = "--crf and --codec apply to MP4s only; no MP4 is written"
        console.print(f"[yellow]note:[/] {note}", soft_wrap=True)


def _load_model(
    weights: str | None,
    device: str,
    photos: int,
    engine: str = "auto",
    early: Callable[[], None] | None = None,
    ready: Callable[[], None] | None = None,
):
    """The pipeline for ``--weights``/``--device``/``--engine`` (``engines.load_pipeline``); a clear line
    and the exit code on failure or Ctrl-C (``photos``: how many were waiting for it). ``early`` starts work
    that needs no model first; ``ready`` runs before the weights are read (with torch as the engine, once
    torch is imported): an ``ArgumentError`` from it ends the command with exit code 2."""
    from ..io.constants import ArgumentError
    from ..model.engines import load_pipeline, pick_engine
    from ..model.weights import WeightsError, locate

    if early is not None:
        early()
    try:
        try:
            files = locate(weights)
        except WeightsError as e:
            _fail(str(e))
        try:
            chosen = pick_engine(engine, device, photos, files)
        except ValueError as e:
            _fail(str(e), code=2)
        if chosen == "torch":  # torch's import (the longest part of start-up) runs beside ``ready``'s check
            from ..model import pipeline  # noqa: F401
        if ready is not None:
            try:
                ready()
            except ArgumentError as e:
                _fail(e.worded(_flag), code=2)
        try:
            return load_pipeline(files, device, engine=chosen, photos=photos)
        except (WeightsError, ValueError) as e:
            _fail(str(e))
    except KeyboardInterrupt:
        _fail(f"interrupted while loading the model; 0 of {photos} photos predicted", 130)


def _run_with_progress(console, pipe, jobs, quiet: bool, shard=None, **kwargs):
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ..batch import run
    from .interrupt import acknowledge_interrupt

    def on_event(kind: str, job, detail: str) -> None:
        source, detail = escape(str(job.source)), escape(detail)
        if kind == "failed":
            progress.console.print(f"[bold red]error:[/] {source}: {detail}", soft_wrap=True)
        elif kind == "note" and not quiet:
            progress.console.print(f"[yellow]note:[/] {source}: {detail}", soft_wrap=True)
        elif kind == "done" and not quiet:
            names = ", ".join(escape(str(p)) for p in job.outputs.values())
            progress.console.print(f"[green]wrote[/] {names}", soft_wrap=True)
        if kind == "frame":  # within one photo: a full-resolution render can take a minute
            done, total = (int(n) for n in detail.split("/"))
            if job.source not in frame_tasks:
                frame_tasks[job.source] = progress.add_task(
                    f"  frames of {escape(job.source.name)}", total=total
                )
            progress.update(frame_tasks[job.source], completed=done)
        if kind in ("done", "failed", "skipped"):
            if job.source in frame_tasks:
                progress.remove_task(frame_tasks.pop(job.source))
            progress.advance(task)

    frame_tasks: dict = {}  # photo -> its row of frames, while it is rendered
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        # a rank of torchrun sees its own photos only: no bar (the lines of several would garble it)
        disable=quiet or (len(jobs) < 2 and not kwargs["post"].frame_by_frame) or _bar_of_a_rank(shard),
    )

    def acknowledge() -> None:  # runs in a helper thread the moment Ctrl-C is pressed
        progress.console.print(
            "[yellow]Ctrl-C:[/] stopping; the videos already predicted are being finished "
            "(outputs are whole or absent, never partial), then the summary",
            soft_wrap=True,
        )

    with progress, acknowledge_interrupt(acknowledge):
        task = progress.add_task("predicting", total=len(jobs))
        return (run if shard is None else shard.run)(pipe, jobs, on_event=on_event, **kwargs)


def _bar_of_a_rank(shard) -> bool:
    return shard is not None and shard.join is None


def _summary(console, result, jobs, json_path: str | None, seconds: float) -> None:
    """The summary lines (with -q too: they are what -q keeps), then the --json document."""
    from ..report import json_report, summary_lines

    for line in summary_lines(result):
        console.print(line, soft_wrap=True)
    if json_path is not None:
        import json

        text = json.dumps(json_report(jobs, result, seconds), indent=2, ensure_ascii=False) + "\n"
        if json_path == "-":
            sys.stdout.write(text)
            sys.stdout.flush()
        else:
            from ..io.files import atomic_write_bytes

            atomic_write_bytes(json_path, text.encode("utf-8"))
