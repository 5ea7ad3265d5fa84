"""The `skyforecast` command line. It only parses arguments and calls the Python API; torch and the
heavy modules are imported inside each command so that `skyforecast --help` stays fast. One module per
command group (``predict``, ``training``, ``evaluate``, ``tools``), each registering its commands on the one
Typer ``app`` of ``common``."""

from __future__ import annotations

import sys

import typer

# isort: off
# importing them registers their commands, in the order --help lists them
from . import predict, training, evaluate, tools  # noqa: F401

# isort: on
from .common import Ending, app

__all__ = ["app", "main"]


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
        if not Ending.without_teardown or not isinstance(e.code, (int, type(None))):
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
