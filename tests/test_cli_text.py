"""What a user reads: help at 80 columns, usage errors, and reasons in error lines."""

from __future__ import annotations

import re

import pytest
import torch
from typer.testing import CliRunner

from skyforecast.cli import app

runner = CliRunner()
COMMANDS = ["predict", "train", "finetune", "evaluate", "synth", "convert-official", "export"]


def _help(*command: str) -> str:
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("command", [[], *([c] for c in COMMANDS)])
def test_help_at_80_columns_is_plain_and_complete(command):
    text = _help(*command)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert not re.search(r"[╭│╰]", text)  # no boxes that squeeze the help into a narrow column
    assert not re.search(r"<(bool|str|int|float|path|list)", text), text  # no Typer type labels
    assert not re.search(r"\[/?(dim|bold)\]", text)  # no Rich markup shown as text
    usage = lines[0]
    assert usage.startswith("Usage: skyforecast") and "{" not in usage, usage
    assert not re.search(r"\w \.(\s|$)", text), text  # no "rate ." where a default went missing
    assert "--output_dir" not in text and "--model" not in text
    assert "--no-overwrite" not in text


def test_predict_usage_line_and_option_column():
    text = _help("predict")
    assert text.splitlines()[0] == "Usage: skyforecast predict [OPTIONS] PHOTO..."
    assert re.search(r"^  -r, --recursive +Descend into sub-folders\.$", text, re.M)  # a flag: no value
    assert re.search(r"^  -o, --output PATH +Output folder", text, re.M)
    assert re.search(r"^  --overwrite +Replace existing outputs", text, re.M)


def test_defaults_written_in_help_texts_are_shown():
    flat = " ".join(_help("train").split())
    assert "Adam learning rate. [default: 2e-4 train, 1e-5 finetune]" in flat
    assert "Stage II L1 weight. [default: --lambda-con]" in flat
    assert "(the paper). [default: base for train, weights for finetune]" in flat
    assert "Frames between clip starts. [default: 32, no overlap]" in flat
    assert "Usage: skyforecast train [OPTIONS] DATA" in flat


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["predict", "x.jpg", "--bogus"], "error: no such option: --bogus (see skyforecast predict --help)"),
        (["predict", "x.jpg", "--output_dir", "o"], "error: no such option: --output_dir"),
        (["predict", "x.jpg", "--fps", "500"], "error: invalid value for '--fps'"),
        (["bogus"], "error: no such command 'bogus' (see skyforecast --help)"),
        (["--bogus"], "error: no such option: --bogus (see skyforecast --help)"),
        (["train", "data/"], "error: missing option '--out'"),
    ],
)
def test_usage_errors_are_one_error_line_with_exit_2(args, expected):
    result = runner.invoke(app, args, env={"COLUMNS": "80"})
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(expected), result.output


def test_command_without_arguments_still_shows_its_help():
    result = runner.invoke(app, ["predict"])
    assert result.exit_code == 2 and result.output.startswith("Usage: skyforecast predict")


def test_convert_official_names_a_reason_not_a_number(tmp_path):
    text_file = tmp_path / "notes.pth"
    text_file.write_text("hello, these are not weights\n")
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    cut = tmp_path / "cut.pth"
    torch.save({"a": torch.zeros(300)}, cut)
    cut.write_bytes(cut.read_bytes()[:300])
    for path, reason in [
        (text_file, "not a PyTorch checkpoint: it is neither a zip archive nor a pickle"),
        (empty, "the file is empty"),
        (cut, "a zip archive PyTorch cannot read: damaged, cut short, or not a checkpoint"),
    ]:
        result = runner.invoke(app, ["convert-official", str(path), str(path), "-o", str(tmp_path / "m")])
        assert result.exit_code == 1
        assert result.output.strip() == f"error: {path}: cannot be read as a checkpoint ({reason})"
    assert not (tmp_path / "m").exists()


def test_readme_install_names_the_cpu_wheel_index_and_keeps_its_first_command():
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    readme = (repo / "README.md").read_text(encoding="utf-8")
    first = re.search(r"```bash\n(.*?)\n```", readme, re.S).group(1)
    assert first == "pip install torch==2.13.0 && pip install . && skyforecast predict examples/sky.jpg"
    version = re.search(r"torch==([\d.]+)", first).group(1)
    cpu = f"pip install torch=={version} --index-url https://download.pytorch.org/whl/cpu"
    assert cpu in " ".join(readme.split())  # for machines without an NVIDIA GPU
    assert f"torch=={version}" in (repo / ".ci" / "run").read_text()  # CI installs what README says
    assert "/sky.mp4" in (repo / ".gitignore").read_text().splitlines()  # the quick start's output
