"""``skyforecast synth``, ``convert-official`` and ``app``: training data, the authors' weights, and the
web page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import _Device, _fail, _Weights, app

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

    from ..io.constants import parse_wxh
    from ..synth import write_dataset

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
    from ..model.convert import convert_official
    from ..model.networks import WeightsError

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

    from ..app import AppError, serve

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as predict (see there)
    try:
        serve(host=host, port=port, weights=weights, device=device, share=share)
    except AppError as e:
        _fail(str(e))
