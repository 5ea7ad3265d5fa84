"""No function in skyforecast/ longer than 80 lines, Typer option declarations aside.

A function's length here is its body, from the first statement (the docstring) to its last line: the `def`
line and the parameter list are not counted, which is what sets Typer commands' option declarations aside.
Functions still over the limit are listed in KNOWN_LONG, each with the work that owns it. The list may only
shrink: a new over-long function fails the first test, and a listed one that is no longer over-long fails
the second, so whoever shortens a function (or merges the branch that did) deletes its line. Done when the
list is empty.
"""

from __future__ import annotations

import ast
from pathlib import Path

LIMIT = 80
PACKAGE = Path(__file__).resolve().parent.parent / "skyforecast"

KNOWN_LONG: set[str] = set()


def function_lengths(package: Path = PACKAGE) -> dict[str, int]:
    """'file.py::Class.function' -> body lines, for every function and method (nested ones too)."""
    lengths: dict[str, int] = {}

    def visit(node: ast.AST, prefix: str, file: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}{child.name}"
                lengths[f"{file}::{name}"] = child.end_lineno - child.body[0].lineno + 1
                visit(child, f"{name}.", file)
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.", file)
            else:
                visit(child, prefix, file)

    for path in sorted(package.rglob("*.py")):
        visit(ast.parse(path.read_text(encoding="utf-8")), "", path.relative_to(package).as_posix())
    return lengths


def over_long() -> dict[str, int]:
    return {name: n for name, n in function_lengths().items() if n > LIMIT}


def test_the_length_measure_counts_bodies_not_signatures(tmp_path: Path):
    body = "\n".join(f"    x{i} = {i}" for i in range(81))
    signature = "def long(\n    a: int = 1,\n    b: int = 2,\n):\n"
    short = "class C:\n    def short(self):\n        return 1\n"
    (tmp_path / "m.py").write_text(f"{signature}{body}\n\n\n{short}")
    assert function_lengths(tmp_path) == {"m.py::long": 81, "m.py::C.short": 1}


def test_no_new_function_over_80_lines():
    new = {name: n for name, n in over_long().items() if name not in KNOWN_LONG}
    assert not new, f"functions over {LIMIT} lines: {new}"


def test_the_list_of_known_long_functions_only_shrinks():
    fixed = KNOWN_LONG - set(over_long())
    assert not fixed, f"no longer over {LIMIT} lines, delete from KNOWN_LONG: {sorted(fixed)}"
