"""train/finetune share one declaration of their options, and TrainConfig alone holds the defaults."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import typer
from typer.testing import CliRunner

from skyforecast.cli import app
from skyforecast.synth import write_dataset
from skyforecast.training.config import TrainConfig


def _options(command: str) -> dict:
    group = typer.main.get_command(app)
    return {p.name: p for p in group.commands[command].params}


def test_the_shared_options_have_trainconfig_defaults_in_both_commands():
    defaults = {f.name: f.default for f in fields(TrainConfig)}
    train, finetune = _options("train"), _options("finetune")
    shared = set(train) & set(finetune)
    assert set(train) - shared == {"ngf"} and set(finetune) - shared == {"weights"}
    assert len(shared) >= 30
    for name in shared - {"data", "out", "lr", "lambda_flicker", "ema", "quiet"}:
        assert train[name].default == finetune[name].default == defaults[name], name
    assert train["quiet"].default is (not defaults["progress"])
    assert train["ngf"].default == defaults["ngf"]
    # not given: TrainConfig's value, or FINETUNE_DEFAULTS' for finetune
    assert train["lr"].default is None and train["lambda_flicker"].default is None
    assert train["ema"].default is None


def test_the_cli_reads_the_defaults_without_importing_torch():
    code = "import sys, skyforecast.cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_progress_bar_shows_each_stage_its_steps_and_losses(tmp_path: Path):
    """Without -q the loop drives a progress bar per stage (Trainer._stage_task / _show): its last state
    names the stage, the steps done of the budget and the logged losses."""
    data = tmp_path / "data"
    write_dataset(data, clips=2, seed=3, size=(128, 128), clips_per_video=1)
    args = ["train", str(data), "--out", str(tmp_path / "run"), "--steps", "2", "--batch-size", "1"]
    tiny = ["--ngf", "4", "--ndf", "4", "--num-workers", "0", "--log-every", "1", "--preview-every", "9"]
    result = CliRunner().invoke(app, args + tiny, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    bars = [line for line in result.output.splitlines() if line.startswith("Stage ") and "━" in line]
    assert [b.split()[1] for b in bars] == ["I", "II"], result.output
    for bar in bars:
        assert "2/2" in bar and "epoch 1" in bar and "clips/s" in bar
        assert re.search(r"loss_g \d+\.\d{3}\s+loss_d \d+\.\d{3}\s+l1 \d+\.\d{3}", bar), bar
    assert "rank " in bars[1] and "rank " not in bars[0]  # Stage II logs its ranking loss
