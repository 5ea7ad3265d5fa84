"""``skyforecast evaluate``: score a model against real clips and print the tables."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import _Device, _fail, _Weights, app

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

    from ..evaluation.scoring import evaluate, report_tables
    from ..io.clips import DataError
    from ..io.media import atomic_path
    from ..model.networks import WeightsError

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
