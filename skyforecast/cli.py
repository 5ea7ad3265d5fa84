"""The `skyforecast` command line. It only parses arguments and calls the Python API; torch and the
heavy modules are imported inside each command so that `skyforecast --help` stays fast."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import __version__

app = typer.Typer(
    name="skyforecast",
    help="Turn one outdoor photo into a short time-lapse of what the sky does next (MD-GAN).",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"skyforecast {__version__}")
        raise typer.Exit()


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


@app.command(no_args_is_help=True)
def predict(
    inputs: Annotated[
        list[Path],
        typer.Argument(help="Photos and/or folders of photos.", show_default=False, metavar="PHOTO..."),
    ],
    output: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "-o",
            "--output",
            "--output_dir",
            help="Output folder, or a .mp4/.gif file for one photo. Default: the current folder.",
        ),
    ] = None,
    formats: Annotated[
        list[str],
        typer.Option("--format", "-f", help="mp4, gif, frames (PNG folder) or all. Repeatable."),
    ] = ["mp4"],  # noqa: B006 - typer reads the default
    fps: Annotated[float, typer.Option(min=0.5, max=120, help="Frames per second of written videos.")] = 8,
    stage: Annotated[int, typer.Option(min=1, max=2, help="2: Refine-Net (final); 1: Base-Net only.")] = 2,
    size: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            help="Written frame size: N (square) or WxH. Default: the photo's aspect ratio at 128 px "
            "height; 128 gives the model's raw square."
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Photos per model call.")] = 8,
    recursive: Annotated[bool, typer.Option("--recursive", "-r", help="Descend into sub-folders.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace existing outputs (default: skip them).")] = False,
    weights: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--weights",
            "-w",
            "--model",
            help="Model folder or Hub repo id[@revision]. Default: "
            "$SKYFORECAST_WEIGHTS, else the bundled model.",
        ),
    ] = None,
    device: Annotated[
        str, typer.Option(help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:1, mps.")
    ] = "auto",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors and the summary.")] = False,
) -> None:
    """Predict a sky time-lapse for each photo.

    [dim]Examples:[/]
      skyforecast predict photo.jpg                      [dim]# -> photo.mp4[/]
      skyforecast predict photos/ -o out/ -f mp4 -f gif  [dim]# a whole folder[/]
      skyforecast predict photo.jpg --stage 1 -o base.gif
    """
    from rich.console import Console
    from rich.markup import escape

    from .batch import UsageError, plan
    from .media import parse_size

    console = Console(stderr=True, highlight=False)
    explicit = any(f != "mp4" for f in formats) or len(formats) != 1
    try:
        if size is not None:
            parse_size(size)
        jobs, problems = plan(inputs, output, formats, recursive, overwrite, explicit_formats=explicit)
    except (UsageError, ValueError) as e:
        _fail(str(e), code=2)
    for path, reason in problems:
        console.print(f"[bold red]error:[/] {escape(f'{path}: {reason}')}", soft_wrap=True)
    if not jobs:
        raise typer.Exit(1)

    todo = [j for j in jobs if not j.skip]
    pipe = None
    if todo:
        from .models import WeightsError
        from .pipeline import SkyPipeline

        try:
            pipe = SkyPipeline.from_pretrained(weights, device=device)
        except (WeightsError, ValueError) as e:
            _fail(str(e))
    result = _run_with_progress(
        console,
        pipe,
        jobs,
        quiet,
        stage=stage,
        size=size,
        fps=fps,
        batch_size=batch_size,
        overwrite=overwrite,
    )
    result.failed[:0] = problems
    _summary(console, result, quiet)
    raise typer.Exit(result.exit_code)


def _run_with_progress(console, pipe, jobs, quiet: bool, **kwargs):
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from .batch import run

    def on_event(kind: str, job, detail: str) -> None:
        source, detail = escape(str(job.source)), escape(detail)
        if kind == "failed":
            progress.console.print(f"[bold red]error:[/] {source}: {detail}", soft_wrap=True)
        elif kind == "note" and not quiet:
            progress.console.print(f"[yellow]note:[/] {source}: {detail}", soft_wrap=True)
        elif kind == "done" and not quiet:
            names = ", ".join(escape(str(p)) for p in job.outputs.values())
            progress.console.print(f"[green]wrote[/] {names}", soft_wrap=True)
        if kind in ("done", "failed", "skipped"):
            progress.advance(task)

    progress = Progress(
        TextColumn("[bold]predicting"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=quiet or len(jobs) < 2,
    )
    with progress:
        task = progress.add_task("predict", total=len(jobs))
        return run(pipe, jobs, on_event=on_event, **kwargs)


def _summary(console, result, quiet: bool) -> None:
    from rich.markup import escape

    parts = [f"[green]{len(result.done)} done[/]", f"{len(result.skipped)} skipped (outputs exist)"]
    parts.append(f"[red]{len(result.failed)} failed[/]" if result.failed else "0 failed")
    if result.interrupted:
        parts.append("[yellow]interrupted: run the same command again to continue[/]")
    if quiet and not result.failed and not result.interrupted:
        return
    console.print(", ".join(parts))
    if result.failed and len(result.failed) > 1:
        console.print("failures:")
        for path, reason in result.failed:
            console.print(f"  {escape(f'{path}: {reason}')}", soft_wrap=True)


def main() -> None:
    app()


if __name__ == "__main__":  # python -m skyforecast.cli
    sys.exit(main())
