"""What every command shares: the Typer app they register on, the options several declare, one-line
errors, and whether the process may end without interpreter teardown (see ``main``)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from .. import __version__
from .style import PlainGroup

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


def _flag(argument: str) -> str:
    """The ``predict`` flag of a library argument: ``loop_style`` -> ``--loop-style``."""
    return "--" + argument.replace("_", "-")


class Ending:
    """Set once a command's work is written (every output complete or absent): ``main`` may then end the
    process without tearing the interpreter down."""

    without_teardown = False
