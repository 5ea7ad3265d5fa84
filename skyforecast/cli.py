"""The `skyforecast` command line. It only parses arguments and calls the Python API; torch and the
heavy modules are imported inside each command so that `skyforecast --help` stays fast."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import __version__
from .cli_style import PlainGroup
from .trainconfig import DEFAULT_EPOCHS, DEFAULT_LR, FINETUNE_LR, LOGS, TrainConfig

app = typer.Typer(
    name="skyforecast",
    help="Turn one outdoor photo into a short time-lapse of what the sky does next (MD-GAN).",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,  # plain help, readable at 80 columns (cli_style)
    cls=PlainGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"skyforecast {__version__}")
        raise typer.Exit()


# Options several commands share: one declaration each.
_Weights = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(
        "--weights",
        "-w",
        help="Model folder or Hub repo id (user/name or user/name@revision). Default: $SKYFORECAST_WEIGHTS, "
        "else the bundled model.",
        metavar="SPEC",
    ),
]
_Device = Annotated[
    str, typer.Option(help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:1, mps.", metavar="DEVICE")
]


@app.callback()
def _root(
    version: Annotated[
        Optional[bool],  # noqa: UP045 - typer needs Optional on 3.10
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit."),
    ] = None,
) -> None:
    """Turn one outdoor photo into a short time-lapse of what the sky does next (MD-GAN)."""


def _fail(message: str, code: int = 1) -> None:
    """Print one clear error line (no traceback) and exit."""
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True).print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


# ---- commands are added below, one section each ------------------------------------------------


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
            max=960,
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
    import os
    import time

    from rich.console import Console

    from .batch import BatchResult, UsageError, plan
    from .constants import ArgumentError
    from .report import check_json_path

    started = time.perf_counter()

    # Idle OpenMP threads sleep instead of spinning (libgomp's default spins first). With anything else on
    # the cores (our own video encoders, other programs) the spinning stalled the model: one photo at
    # ngf=32 took 4.5 -> 3.5 CPU-s on a busy 2-core machine. Read when torch loads; an explicit setting wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
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
        from .batch import check_output_folders

        for folder, reason in check_output_folders(todo):
            _fail(f"cannot write to output folder {folder}: {reason}")
        if shard is None and workers != 1 and len(todo) > 1:
            shard = _start_workers(workers, jobs, todo, weights, device, run_options)
        early = None if shard is not None else lambda: post.prefetch(todo)  # which photos come first?
        pipe = _load_model(weights, _rank_device(device, shard), len(todo), early=early, ready=check_encoder)
    try:
        result = _run_with_progress(console, pipe, jobs, quiet, shard=shard, **run_options)
    except KeyboardInterrupt:  # a second Ctrl-C while the videos in progress were being finished
        _fail("interrupted; outputs are complete or absent (never partial): run the command again", 130)
    result.failed[:0] = problems
    if main:
        _shared_summary(console, result, quiet, shard, jobs, json_path, time.perf_counter() - started)
    global _exit_without_teardown
    _exit_without_teardown = pipe is not None  # every output is complete (or absent): see main()
    raise typer.Exit(result.exit_code)


def _plan_lines(
    console, problems, quiet: bool, jobs, inputs, recursive: bool, ignored, fps: float, mp4: bool
):
    """The lines before the run: the inputs that cannot be done, then (not with -q) notes on options some
    formats or the model resolution ignore, and on photos left out."""
    from rich.markup import escape

    from .batch import photos_in_subfolders

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
    from .sharding import ShardError, shard_from_env

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
    from .sharding import auto_workers, start_workers

    count = min(len(todo), workers or auto_workers())
    if count <= 1:
        return None
    return start_workers(count, jobs, weights=weights, device=device, **run_options)


def _rank_device(device: str, shard) -> str:
    if shard is None:
        return device
    from .sharding import rank_device

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
    from .media import parse_size
    from .postprocess import PlainOutput, PostProcess

    if size is not None:
        parse_size(size)
    post = PostProcess(size=size, **options)
    return (PlainOutput(size) if post.is_plain else post), post.ignored


def _note_gif_fps(console, fps: float, jobs) -> None:
    from .media import GIF_MAX_FPS

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

    from .media import Encoding

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
    early: Callable[[], None] | None = None,
    ready: Callable[[], None] | None = None,
):
    """The ``SkyPipeline`` for ``--weights``/``--device``; a clear line and the exit code on failure or
    Ctrl-C (``photos``: how many were waiting for it). ``early`` starts work that needs no model first;
    ``ready`` runs once torch is imported, before the weights are read: an ``ArgumentError`` from it ends
    the command with exit code 2."""
    from .constants import ArgumentError

    if early is not None:
        early()
    try:
        from .pipeline import SkyPipeline
        from .weights import WeightsError

        if ready is not None:
            try:
                ready()
            except ArgumentError as e:
                _fail(e.worded(_flag), code=2)

        try:
            return SkyPipeline.from_pretrained(weights, device=device)
        except (WeightsError, ValueError) as e:
            _fail(str(e))
    except KeyboardInterrupt:
        _fail(f"interrupted while loading the model; 0 of {photos} photos predicted", 130)


def _flag(argument: str) -> str:
    """The ``predict`` flag of a library argument: ``loop_style`` -> ``--loop-style``."""
    return "--" + argument.replace("_", "-")


def _run_with_progress(console, pipe, jobs, quiet: bool, shard=None, **kwargs):
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from .batch import run
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
    from .report import json_report, summary_lines

    for line in summary_lines(result):
        console.print(line, soft_wrap=True)
    if json_path is not None:
        import json

        text = json.dumps(json_report(jobs, result, seconds), indent=2, ensure_ascii=False) + "\n"
        if json_path == "-":
            sys.stdout.write(text)
            sys.stdout.flush()
        else:
            from .files import atomic_write_bytes

            atomic_write_bytes(json_path, text.encode("utf-8"))


# ---- train / finetune ----


def _short(x: float) -> str:
    """2e-4, not 0.0002, in help texts."""
    return f"{x:.0e}".replace("e-0", "e-")


_Stage = Annotated[
    str,
    typer.Option("--stage", help="1 = Base-Net, 2 = Refine-Net (needs a trained Base-Net), all = 1 then 2."),
]
_Epochs = Annotated[
    Optional[int],  # noqa: UP045
    typer.Option(
        "--epochs", help=f"Passes over the data per stage (default {DEFAULT_EPOCHS}).", show_default=False
    ),
]
_Steps = Annotated[
    Optional[int],  # noqa: UP045
    typer.Option(
        "--steps",
        help="Optimiser steps per stage (each stage's budget); wins over --epochs. On --resume it extends "
        "the stage in progress and those after it.",
        show_default=False,
    ),
]
_Batch = Annotated[int, typer.Option("--batch-size", help="Clips per step per process.")]
_Ngf = Annotated[int, typer.Option("--ngf", help="Generator base width (paper: 32).")]
_Ndf = Annotated[
    Optional[int],  # noqa: UP045
    typer.Option(
        "--ndf",
        help="Discriminator base width (paper: 32).  [default: the generators' width, or the width of the "
        "discriminators stored with the starting weights]",
        show_default=False,
    ),
]
_Device = Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps.")]
_Precision = Annotated[
    str,
    typer.Option(
        "--precision",
        help="auto (bf16 autocast where the CPU or GPU runs bf16 natively, else fp32), fp32, bf16 or fp16 "
        "(fp16 adds loss scaling).",
    ),
]
_Bn = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(
        "--bn",
        help="Generators' BatchNorm while training: running (the frozen statistics the model predicts with) "
        "or batch.  [default: running for finetune, batch for train]",
        show_default=False,
    ),
]
_DWarmup = Annotated[
    Optional[int],  # noqa: UP045
    typer.Option(
        "--d-warmup",
        min=0,
        help="Discriminator-only steps at the start of each stage when its discriminator starts fresh (the "
        "generator is held).  [default: 20 for finetune, 0 for train]",
        show_default=False,
    ),
]
_Ema = Annotated[
    float,
    typer.Option("--ema", help="Decay of a moving average of the generator weights to export (0 = off)."),
]
_Val = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(
        "--val",
        metavar="CLIPS",
        help="Clips not trained on: every --val-every steps the model is scored on them (as `evaluate`) and "
        "the best step, the starting model included, is exported as model/.",
        show_default=False,
    ),
]
_ValSplit = Annotated[
    float,
    typer.Option("--val-split", help="Or hold out this share of DATA's sequences for the same (e.g. 0.2)."),
]
_ValEvery = Annotated[
    int, typer.Option("--val-every", help="Steps between validations (each one checkpoints).")
]
_Resume = Annotated[
    bool,
    typer.Option(
        "--resume",
        help="Continue the run in --out from its last checkpoint, exactly, with the settings it stored; "
        "options given again replace them.",
    ),
]
_Workers = Annotated[int, typer.Option("--num-workers", help="DataLoader worker processes.")]
_Seed = Annotated[int, typer.Option("--seed", help="Seed for weights, shuffling and flips.")]
_LogEvery = Annotated[int, typer.Option("--log-every", help="Steps between metrics.jsonl lines.")]
_PreviewEvery = Annotated[int, typer.Option("--preview-every", help="Steps between preview GIFs.")]


def _log_kind(value: str) -> str:
    """``--log``: one of LOGS, with its package installed (a usage error before anything starts)."""
    if value not in LOGS:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(LOGS)}")
    if value == "tensorboard":
        from .tblog import missing_package

        if missing := missing_package():
            raise typer.BadParameter(missing)
    return value


_Log = Annotated[
    str,
    typer.Option(
        "--log",
        callback=_log_kind,
        help="none, or tensorboard: also TensorBoard logs in RUN/tensorboard (losses, lr, previews and "
        "their motion scores; needs skyforecast[tensorboard]). metrics.jsonl is always written.",
    ),
]
_CkptEvery = Annotated[int, typer.Option("--checkpoint-every", help="Steps between checkpoints.")]
_Keep = Annotated[int, typer.Option("--keep-checkpoints", help="How many recent checkpoints to keep.")]
_Lr = Annotated[
    Optional[float],  # noqa: UP045
    typer.Option(
        "--lr",
        help=f"Adam learning rate.  [default: {_short(DEFAULT_LR)} train, {_short(FINETUNE_LR)} finetune]",
        show_default=False,
    ),
]
_LamCon = Annotated[float, typer.Option("--lambda-con", help="Weight of the pixel L1 loss (pix2pix's 100).")]
_LamCon2 = Annotated[
    Optional[float],  # noqa: UP045
    typer.Option("--lambda-con2", help="Stage II L1 weight.  [default: --lambda-con]", show_default=False),
]
_LamRank = Annotated[
    float, typer.Option("--lambda-rank", help="Weight of the Gram-matrix ranking loss (paper: 1).")
]
_LamFlicker = Annotated[
    float,
    typer.Option(
        "--lambda-flicker",
        help="Weight of an L1 on second-order frame differences, against flicker (not in the paper).",
    ),
]
_RefineNgf = Annotated[
    Optional[int],  # noqa: UP045
    typer.Option(
        "--refine-ngf",
        min=1,
        help="Refine-Net's own width (default: --ngf, or the starting weights'). It has no outer skips, so "
        "its width limits detail; a multiple of its source's width starts as a widened copy.",
        show_default=False,
    ),
]
_RefineInit = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(
        "--refine-init",
        help="Refine-Net at Stage II start: base (a copy of Base-Net), weights (the loaded one) or random "
        "(the paper).  [default: base for train, weights for finetune]",
        show_default=False,
    ),
]
_Crop = Annotated[
    str,
    typer.Option(
        "--crop", help="squash (whole frame to 128x128, as the paper) or center (square crop first)."
    ),
]
_Stride = Annotated[
    Optional[int],  # noqa: UP045
    typer.Option(
        "--clip-stride", help="Frames between clip starts.  [default: 32, no overlap]", show_default=False
    ),
]
_Flip = Annotated[bool, typer.Option("--flip/--no-flip", help="Random horizontal flips.")]
_SyncBn = Annotated[bool, typer.Option("--sync-bn", help="SyncBatchNorm across DDP processes (CUDA only).")]
_Det = Annotated[
    bool, typer.Option("--deterministic", help="Deterministic kernels (slower; for exact reproduction).")
]
_Push = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(
        "--push-to-hub", help="Upload the exported model to this Hub repo at the end.", show_default=False
    ),
]
_StopAfter = Annotated[
    Optional[int],  # noqa: UP045
    typer.Option(
        "--stop-after",
        help="Stop after N steps this session (checkpoint + export); continue later with --resume.",
        show_default=False,
    ),
]
_Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]
_Out = Annotated[
    Path,
    typer.Option(
        "--out", "-o", help="Run folder (config, metrics, previews, checkpoints, model/).", show_default=False
    ),
]


# The options `train` and `finetune` share, in --help order: one declaration each; every default comes from
# TrainConfig (`_train_options` puts them into the command's signature). `lr` has none here: its default
# depends on the command (FINETUNE_LR for finetune), `quiet` is TrainConfig's `progress` turned round.
_TRAIN_OPTIONS = {
    "stage": _Stage,
    "epochs": _Epochs,
    "steps": _Steps,
    "batch_size": _Batch,
    "ngf": _Ngf,
    "ndf": _Ndf,
    "device": _Device,
    "precision": _Precision,
    "bn": _Bn,
    "d_warmup": _DWarmup,
    "ema": _Ema,
    "val": _Val,
    "val_split": _ValSplit,
    "val_every": _ValEvery,
    "resume": _Resume,
    "num_workers": _Workers,
    "seed": _Seed,
    "log_every": _LogEvery,
    "preview_every": _PreviewEvery,
    "log": _Log,
    "checkpoint_every": _CkptEvery,
    "keep_checkpoints": _Keep,
    "lr": _Lr,
    "lambda_con": _LamCon,
    "lambda_con2": _LamCon2,
    "lambda_rank": _LamRank,
    "lambda_flicker": _LamFlicker,
    "refine_init": _RefineInit,
    "refine_ngf": _RefineNgf,
    "crop": _Crop,
    "clip_stride": _Stride,
    "flip": _Flip,
    "sync_bn": _SyncBn,
    "deterministic": _Det,
    "push_to_hub": _Push,
    "stop_after": _StopAfter,
    "quiet": _Quiet,
}
_DEFAULTED = ("DEFAULT", "DEFAULT_MAP")  # click's ParameterSource names for "not given by the user"


def _train_options(*, without: tuple[str, ...] = ()):
    """Give a command the shared training options after its own parameters (its ``**options`` receives
    them), with TrainConfig's defaults."""
    import inspect
    from dataclasses import MISSING, fields

    defaults = {f.name: f.default for f in fields(TrainConfig) if f.default is not MISSING}
    defaults.update(lr=None, quiet=not defaults["progress"])

    def add(command):
        own = [
            p
            for p in inspect.signature(command, eval_str=True).parameters.values()
            if p.kind != p.VAR_KEYWORD
        ]
        shared = [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=option, default=defaults[name])
            for name, option in _TRAIN_OPTIONS.items()
            if name not in without
        ]
        command.__signature__ = inspect.Signature(own + shared)
        return command

    return add


def _run_training(
    ctx: typer.Context, data: Path, out: Path, options: dict, weights: str | None = None
) -> None:
    """Shared body of `train` and `finetune`: one TrainConfig from the options the user gave (the others are
    TrainConfig's defaults), run it, turn every expected failure (bad data, bad weights, diverged loss) into
    one red line. With --resume only the options given on the command line replace the run's stored
    settings (click tells given options from defaults)."""
    from rich.console import Console

    from .data import DataError
    from .train import TrainError, check_out_folder, resumed_config, start_weights, train
    from .weights import WeightsError

    try:  # before any work (the starting weights are not even looked up): nothing in --out is touched
        check_out_folder(out, options["resume"])
    except TrainError as e:
        _fail(str(e))

    given = {
        name
        for name in ctx.params
        if getattr(ctx.get_parameter_source(name), "name", "DEFAULT") not in _DEFAULTED and name in options
    }
    settings = {name: options[name] for name in given if name != "quiet"}
    # what every session states anew (SESSION_ONLY), given or not
    settings.update(data=str(data), out=str(out), resume=options["resume"], stop_after=options["stop_after"])
    settings["progress"] = not options["quiet"]
    console = Console()
    resume = options["resume"]
    if ctx.command.name == "finetune" and not resume:  # no -w: $SKYFORECAST_WEIGHTS, else bundled
        try:
            weights, line = start_weights(weights)
        except TrainError as e:
            _fail(str(e))
        console.print(line, highlight=False, soft_wrap=True)
        settings.setdefault("lr", FINETUNE_LR)
    if weights is not None:
        settings["weights"] = weights
    try:
        config = resumed_config(out, settings) if resume else TrainConfig(**settings)
        model_dir = train(config, console=console)
    except (TrainError, DataError, WeightsError) as e:
        _fail(str(e))
    except KeyboardInterrupt:
        _fail(
            f"interrupted; continue from the last checkpoint: skyforecast {ctx.command.name} {data} "
            f"--out {out} --resume",
            130,
        )
    else:
        if not options["quiet"]:
            typer.echo(f"model: {model_dir}  (skyforecast predict PHOTO --weights {model_dir})")
        # the model, checkpoints and logs are written and closed, the process group is gone: skip the
        # interpreter's teardown (see main()); a torchrun rank once aborted there ("terminate called without
        # an active exception", exit -6) after a finished run, failing the whole launch
        global _exit_without_teardown
        _exit_without_teardown = True


@app.command(no_args_is_help=True)
@_train_options()
def train(
    ctx: typer.Context,
    data: Annotated[
        Path,
        typer.Argument(
            help="Clips: <video>/<clip>/*.jpg, image-sequence folders, or video files.", show_default=False
        ),
    ],
    out: _Out,
    **options,
) -> None:
    """Train MD-GAN from scratch: Stage I (Base-Net) then Stage II (Refine-Net).

    Many GPUs or machines: torchrun --nproc-per-node N -m skyforecast train ...
    """
    _run_training(ctx, data, out, options)


@app.command(no_args_is_help=True)
@_train_options(without=("ngf",))  # the width comes from the starting weights
def finetune(
    ctx: typer.Context,
    data: Annotated[Path, typer.Argument(help="Clips, in any layout `train` accepts.", show_default=False)],
    out: _Out,
    weights: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--weights",
            "-w",
            help="Starting weights: model folder, training run folder or Hub repo id with optional "
            "@revision. Default: $SKYFORECAST_WEIGHTS, else the bundled model (as predict).",
            show_default=False,
        ),
    ] = None,
    **options,
) -> None:
    """Fine-tune existing weights on your clips (lower lr; --stage 2 tunes motion only)."""
    _run_training(ctx, data, out, options, weights)


@app.command("export", no_args_is_help=True)
def export_command(
    source: Annotated[
        Path,
        typer.Argument(
            help="A training checkpoint (RUN/checkpoints/step_*.pt) or a run folder (its latest checkpoint).",
            show_default=False,
            metavar="SOURCE",
        ),
    ],
    out: Annotated[
        Path,
        typer.Argument(
            help="Model folder to write: config.json, model.safetensors, README.md (its card).",
            show_default=False,
            metavar="OUT",
        ),
    ],
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace a model folder already there.")
    ] = False,
    evaluate_on: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "--evaluate",
            metavar="CLIPS",
            help="Score the exported model on these clips (as `evaluate`) and put the numbers in its card.",
            show_default=False,
        ),
    ] = None,
    limit: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(min=1, help="With --evaluate: only the first N clips.", show_default=False),
    ] = None,
    device: _Device = "auto",
    dtype: Annotated[
        str,
        typer.Option(
            "--dtype",
            help="fp16 (half the size; predictions within 1/255 of fp32's) or fp32 (the checkpoint's own).",
        ),
    ] = "fp16",
) -> None:
    """Make a model folder for --weights from any checkpoint of a training run, with a model card
    (data, steps per stage, settings, scores when --evaluate is given).

    \b
    Examples:
      skyforecast export runs/sky/checkpoints/step_00004000.pt sky-4000/
      skyforecast export runs/sky sky-latest/ --evaluate clips/  # latest, scored
      skyforecast predict photo.jpg -w sky-4000/
    """
    from .data import DataError
    from .train import TrainError, export_checkpoint
    from .weights import WeightsError

    try:
        folder = export_checkpoint(
            source, out, overwrite=overwrite, evaluate_on=evaluate_on, device=device, limit=limit, dtype=dtype
        )
    except (TrainError, DataError, WeightsError, ValueError) as e:
        _fail(str(e))
    except OSError as e:
        _fail(f"{out}: cannot write ({e.strerror or e})")
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    typer.echo(f"wrote {folder} (use it with --weights {folder})")


# ---- evaluate ----


@app.command("evaluate", no_args_is_help=True)
def evaluate_command(
    data: Annotated[
        Path,
        typer.Argument(
            help="Clips: <video>/<clip>/*.jpg (Sky Timelapse), image-sequence folders or video files.",
            show_default=False,
        ),
    ],
    weights: _Weights = None,
    per_clip: Annotated[bool, typer.Option("--per-clip", help="Also show one row per clip.")] = False,
    json_out: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--json", metavar="FILE", help="Write all numbers as JSON to FILE, or - for stdout."),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Clips per model call.", metavar="N")] = 8,
    device: _Device = "auto",
    limit: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(min=1, help="Evaluate only the first N clips.", show_default=False, metavar="N"),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    photo_size: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(
            "--photo-size",
            min=16,
            max=4096,
            metavar="N",
            show_default=False,
            help="Render the default output from the first frame enlarged to NxN (bicubic), as a photo of "
            "that size would be; scored at the clip's size.",
        ),
    ] = None,
    directions: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(
            "--directions",
            min=1,
            max=64,
            metavar="K",
            show_default=False,
            help="Also score the default output's best of K directions (0, 360/K, ... degrees) per clip.",
        ),
    ] = None,
) -> None:
    """Score the model against real time-lapses: PSNR, SSIM and motion over frames 1..31.

    Five systems beside the real clips: predict's default output, the model's own Stage II video, Stage II
    flow on the photo, Stage I (Base-Net) alone and the first frame repeated.

    \b
    Examples:
      skyforecast evaluate ../shared/data/real-sky-dev
      skyforecast evaluate clips/ -w run/model --per-clip --json scores.json
      skyforecast evaluate clips/ --photo-size 720 --directions 8
    """
    import json

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from .data import DataError
    from .evaluate import evaluate, report_tables
    from .media import atomic_path
    from .models import WeightsError

    to_stdout = json_out == "-"
    console = Console(stderr=to_stdout, highlight=False)
    progress = Progress(
        TextColumn("[bold]evaluating"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=quiet,
    )
    try:
        with progress:
            task = progress.add_task("evaluate", total=None)
            report = evaluate(
                data,
                weights,
                device=device,
                batch_size=batch_size,
                limit=limit,
                on_clip=lambda name, done, total: progress.update(task, completed=done, total=total),
                photo_size=photo_size,
                directions=directions,
            )
    except (DataError, WeightsError, ValueError) as e:
        _fail(str(e))
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    for line in report.skipped:
        console.print(f"[yellow]skipped:[/] {line}", soft_wrap=True)
    for table in report_tables(report, per_clip=per_clip):
        console.print(table)
    if json_out:
        text = json.dumps(report.to_dict(), indent=2)
        if to_stdout:
            sys.stdout.write(text + "\n")
        else:
            try:
                with atomic_path(json_out) as tmp:
                    tmp.write_text(text + "\n", encoding="utf-8")
            except OSError as e:
                _fail(f"{json_out}: cannot write ({e.strerror or e})")
            console.print(f"[green]wrote[/] {json_out}", soft_wrap=True)
    if report.num_clips == 0:
        _fail("no clip could be read")


# ---- synth ----


@app.command(no_args_is_help=True)
def synth(
    out: Annotated[Path, typer.Argument(help="Output folder (Sky Timelapse layout).", show_default=False)],
    clips: Annotated[int, typer.Option(min=1, help="Number of clips to write.", show_default=False)],
    seed: Annotated[int, typer.Option(help="Data set seed; same seed, same bytes.")] = 0,
    size: Annotated[str, typer.Option(help="Frame size WxH. 128x128 is what training sees.")] = "640x360",
    frames: Annotated[int, typer.Option(min=1, max=4096, help="Frames per clip.")] = 32,
    clips_per_video: Annotated[
        int, typer.Option(min=1, help="Consecutive clips of one scene (continuing in time).")
    ] = 2,
    workers: Annotated[int, typer.Option(min=1, max=256, help="Worker processes.")] = 1,
    quality: Annotated[int, typer.Option(min=1, max=100, help="JPEG quality.")] = 90,
) -> None:
    """Render procedural sky time-lapses (clouds, dusk, night, aurora) as training data.

    Writes OUT/<video>/<clip>/<clip>_frames_<n:08d>.jpg like the Sky Timelapse data set. The output depends
    only on the options, never on --workers.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from .constants import parse_wxh
    from .synth import write_dataset

    try:
        wh = parse_wxh(size, smallest=8)
    except ValueError as e:
        _fail(str(e))
    if out.exists() and not out.is_dir():
        _fail(f"{out}: exists and is not a folder")
    console = Console(stderr=True)
    with Progress(
        TextColumn("[bold]synth[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("clips", total=clips)
        try:
            summary = write_dataset(
                out,
                clips,
                seed,
                frames=frames,
                size=wh,
                clips_per_video=clips_per_video,
                workers=workers,
                quality=quality,
                progress=lambda n: bar.update(task, completed=n),
            )
        except (OSError, ValueError) as e:
            _fail(str(e))
        except KeyboardInterrupt:
            _fail("interrupted", 130)
    mix = ", ".join(f"{k} {v}" for k, v in sorted(summary.families.items()))
    console.print(
        f"[green]wrote[/] {summary.clips} clips ({summary.videos} videos, {frames} frames, {wh[0]}x{wh[1]}) "
        f"to {out} in {summary.seconds:.1f} s ({summary.clips_per_minute:.0f} clips/min); {mix}",
        soft_wrap=True,
        highlight=False,
    )


# ---- convert-official ----


@app.command("convert-official", no_args_is_help=True)
def convert_official_cmd(
    stage1: Annotated[Path, typer.Argument(help="The authors' Stage I generator, e.g. NETG_S1.pth.")],
    stage2: Annotated[Path, typer.Argument(help="The authors' Stage II generator, e.g. NETG_S2.pth.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Model folder to write.")],
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing, non-empty folder.")
    ] = False,
) -> None:
    """Turn the authors' released PyTorch 0.3 checkpoints into a model folder for --weights.

    The .pth files are read as data only (never fully unpickled); the folder gets config.json (with
    batch_stats=true, as their test script ran BatchNorm) and model.safetensors.

    \b
    Example:
      skyforecast convert-official NETG_S1.pth NETG_S2.pth --out official/
      skyforecast predict photo.jpg -w official/
    """
    from .convert import convert_official
    from .models import WeightsError

    try:
        folder = convert_official(stage1, stage2, out, overwrite=overwrite)
    except WeightsError as e:
        _fail(str(e))
    except OSError as e:
        _fail(f"{out}: cannot write ({e.strerror or e})")
    typer.echo(f"wrote {folder} (use it with --weights {folder})")


# ---- app ----


@app.command("app")
def app_command(
    port: Annotated[
        int, typer.Option(min=1, max=65535, help="Port to serve the page on.", metavar="N")
    ] = 7860,
    host: Annotated[
        str,
        typer.Option(
            help="Address to listen on. The default serves this computer only; 0.0.0.0 opens the page "
            "to every computer that can reach this one.",
            metavar="HOST",
        ),
    ] = "127.0.0.1",
    share: Annotated[
        bool,
        typer.Option(
            "--share",
            help="Also make a public link through Gradio's share servers (anyone with "
            "the link can use the app).",
        ),
    ] = False,  # fmt: skip
    weights: _Weights = None,
    device: _Device = "auto",
) -> None:
    """A local web page: drop a photo, choose the options, watch its time-lapse and download it.

    Needs the app extra: pip install "skyforecast[app]". Ctrl-C stops it.
    """
    import os

    from .app import AppError, serve

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as predict (see there)
    try:
        serve(host=host, port=port, weights=weights, device=device, share=share)
    except AppError as e:
        _fail(str(e))


_exit_without_teardown = False


def main() -> None:
    """The console script. After ``predict`` has loaded a model and finished, or a training run has
    finished, the process ends at once (``os._exit``, output streams flushed) instead of tearing the
    interpreter down: freeing torch and the model that way took 0.5-1 s, a fifth of a one-photo run, and a
    native thread destroyed during teardown can abort the process after its work is done. Nothing is lost:
    every video is written atomically and the worker threads are joined before the summary; training has
    written its model and closed its logs and process group."""
    try:
        app()
    except SystemExit as e:
        if not _exit_without_teardown or not isinstance(e.code, (int, type(None))):
            raise
        import os

        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(e.code or 0)


if __name__ == "__main__":  # python -m skyforecast.cli
    sys.exit(main())


def __getattr__(name: str):
    """``skyforecast.cli.command``: the click command behind the Typer app, built on first use. Tools that
    document click commands read it (the documentation's command-line reference is generated from it, so
    ``--help`` and the docs say the same); building it at import would slow every start."""
    if name == "command":
        return typer.main.get_command(app)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
