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

    Console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


# ---- commands are added below, one section each ------------------------------------------------


def main() -> None:
    app()


if __name__ == "__main__":  # python -m skyforecast.cli
    sys.exit(main())
