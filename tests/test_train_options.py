"""train/finetune share one declaration of their options, and TrainConfig alone holds the defaults."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import fields

import typer

from skyforecast.cli import app
from skyforecast.trainconfig import TrainConfig


def _options(command: str) -> dict:
    group = typer.main.get_command(app)
    return {p.name: p for p in group.commands[command].params}


def test_the_shared_options_have_trainconfig_defaults_in_both_commands():
    defaults = {f.name: f.default for f in fields(TrainConfig)}
    train, finetune = _options("train"), _options("finetune")
    shared = set(train) & set(finetune)
    assert set(train) - shared == {"ngf"} and set(finetune) - shared == {"weights"}
    assert len(shared) >= 30
    for name in shared - {"data", "out", "lr", "quiet"}:
        assert train[name].default == finetune[name].default == defaults[name], name
    assert train["quiet"].default is (not defaults["progress"])
    assert train["ngf"].default == defaults["ngf"]
    assert train["lr"].default is None  # not given: TrainConfig's lr, or FINETUNE_LR for finetune


def test_the_cli_reads_the_defaults_without_importing_torch():
    code = "import sys, skyforecast.cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
