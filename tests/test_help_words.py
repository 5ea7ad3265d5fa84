"""Help texts say what the commands do (evaluate's five systems, --size switching to the model's own
pixels), and evaluate's summary table reads whole at 80 columns (no label or number cut or wrapped)."""

from __future__ import annotations

from rich.console import Console
from typer.testing import CliRunner

from skyforecast.cli import app
from skyforecast.evaluation.scoring import SYSTEM_LABELS, _table


def _help(command: str) -> str:
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0
    return " ".join(result.output.split())


def test_evaluate_help_names_its_five_systems():
    text = _help("evaluate")
    assert "two baselines" not in text and "Five systems" in text


def test_predict_size_help_says_it_switches_to_model_resolution():
    assert "Switches to --resolution model" in _help("predict")


def test_evaluate_summary_fits_80_columns():
    table = _table("real-sky-dev: 16 clips, frames 1..31", "system")
    for label in SYSTEM_LABELS.values():
        table.add_row(label, "23.72", "0.748", "0.34", "0.34", "0.47", "0.99", "0.12", "0.57", "7/16")
    best = ["23.88", "0.748", "0.34", "0.34", "0.80", "0.97", "0.21", "0.50", "7/16"]
    table.add_row("best of 8 directions", *best)
    console = Console(width=80, record=True)
    console.print(table)
    lines = console.export_text().splitlines()
    for label in SYSTEM_LABELS.values():
        row = next(line for line in lines if line.startswith(label))
        assert row.split()[-9:] == ["23.72", "0.748", "0.34", "0.34", "0.47", "0.99", "0.12", "0.57", "7/16"]
    assert "…" not in "".join(lines)
