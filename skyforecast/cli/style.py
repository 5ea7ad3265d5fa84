"""How the command line looks: plain help that reads well at 80 columns, and every usage error as one
``error:`` line with exit code 2, the same style as the commands' own errors.

Typer's Rich help puts six columns side by side (long and short names, their ``--no-`` forms, a type such
as ``<list[Path]>``, the help), which leaves about 20 characters for the help at 80 columns, and Rich
reads ``[default: ...]`` in a help text as markup and drops it. Click's plain layout has two columns; these
classes keep it and tidy what Typer adds to it (types on arguments, ``{PHOTO...}...`` in the usage line).
"""

from __future__ import annotations

import typer.core

try:  # recent Typer carries its own copy of click; older versions use click itself
    from typer._click.exceptions import UsageError
except ImportError:  # pragma: no cover - depends on the installed Typer
    from click.exceptions import UsageError


class OneLineUsageError(UsageError):
    """A usage error shown as ``error: <what is wrong> (see <command> --help)``, exit code 2."""

    def show(self, file=None) -> None:  # noqa: ARG002 - always stderr, like every other error
        from rich.console import Console
        from rich.markup import escape

        hint = ""
        if self.ctx is not None:
            hint = f" (see {self.ctx.command_path} --help)"
        Console(stderr=True, highlight=False).print(
            f"[bold red]error:[/] {escape(self.format_message())}{hint}", soft_wrap=True
        )


def _one_line(e: UsageError) -> UsageError:
    if isinstance(e, OneLineUsageError) or type(e).__name__ == "NoArgsIsHelpError":
        return e  # a command run without arguments shows its help, as asked
    message = e.format_message().strip().rstrip(".")
    return OneLineUsageError(message[:1].lower() + message[1:], ctx=e.ctx)


class PlainCommand(typer.core.TyperCommand):
    """A command whose usage line and argument list show names only: ``PHOTO...``, not ``{PHOTO...}...``
    and ``<list[Path]>``. Options show the ``metavar`` each one is given."""

    def collect_usage_pieces(self, ctx) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                name = _argument_name(param)
                pieces.append(name if param.required else f"[{name}]")
        return pieces

    def format_options(self, ctx, formatter) -> None:
        args, opts = [], []
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            if param.param_type_name == "argument":
                args.append((_argument_name(param), getattr(param, "help", None) or ""))
                continue
            if param.metavar is None and not (getattr(param, "is_flag", False) or param.count):
                param.metavar = _value_name(param, ctx)  # INTEGER, not Typer's <int>
                record = param.get_help_record(ctx)
            opts.append(record)
        for title, rows in (("Arguments", args), ("Options", opts)):
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


_VALUE_NAMES = {"str": "TEXT", "int": "INTEGER", "float": "NUMBER", "path": "PATH", "bool": "BOOLEAN"}


def _value_name(param, ctx) -> str:
    """The click-style name of an option's value; Typer >= 0.2x shows its own ``<int range>`` instead."""
    kind = getattr(getattr(param, "type", None), "name", None)
    if kind is None and hasattr(param, "display_type"):
        kind = param.display_type(ctx).strip("<>").removesuffix(" range")
    kind = (kind or "value").removeprefix("list[").removesuffix("]").lower()
    return _VALUE_NAMES.get(kind, kind.upper())


def _argument_name(param) -> str:
    name = param.metavar or param.name.upper()
    return name if param.nargs == 1 or name.endswith("...") else f"{name}..."


class PlainGroup(typer.core.TyperGroup):
    """The top-level command: every sub-command gets the plain layout, and usage errors (an unknown option,
    a value out of range, a missing argument) become one ``error:`` line."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for command in self.commands.values():
            _make_plain(command)

    def add_command(self, cmd, name=None) -> None:
        _make_plain(cmd)
        super().add_command(cmd, name)

    def make_context(self, *args, **kwargs):
        try:
            return super().make_context(*args, **kwargs)
        except UsageError as e:
            raise _one_line(e) from None

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UsageError as e:
            raise _one_line(e) from None


def _make_plain(command) -> None:
    if type(command) is typer.core.TyperCommand:
        command.__class__ = PlainCommand
