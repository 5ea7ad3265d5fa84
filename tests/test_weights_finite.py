"""Weights holding NaN or Inf are refused when they are read, by every loading route, with one line naming
the file and the tensor (before: they loaded and predicted a video of garbage, exit 0)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from skyforecast.cli import app
from skyforecast.model.pipeline import SkyPipeline
from skyforecast.model.weights import WeightsError, load_model

BROKEN = "refine.conv3.0.weight"


@pytest.fixture(params=["nan", "inf"])
def broken_weights(request, tiny_weights, tmp_path) -> Path:
    """A copy of the tiny model with one value of one tensor made NaN or -Inf."""
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "config.json").write_bytes((tiny_weights / "config.json").read_bytes())
    state = load_file(str(tiny_weights / "model.safetensors"))
    state[BROKEN] = state[BROKEN].clone()
    state[BROKEN].view(-1)[7] = float("nan") if request.param == "nan" else float("-inf")
    save_file(state, str(folder / "model.safetensors"))
    return folder


def _expected(folder: Path) -> str:
    return f"{folder / 'model.safetensors'}: tensor {BROKEN} holds 1 "


def test_fast_path_refuses_non_finite_weights(broken_weights):
    with pytest.raises(WeightsError) as info:
        SkyPipeline.from_pretrained(broken_weights, device="cpu")
    assert _expected(broken_weights) in str(info.value)


def test_eager_network_refuses_non_finite_weights(broken_weights):
    with pytest.raises(WeightsError) as info:
        load_model(broken_weights)
    assert _expected(broken_weights) in str(info.value)
    with pytest.raises(WeightsError, match=BROKEN):  # the plain network of a pipeline, too
        SkyPipeline.from_pretrained(broken_weights, device="cpu", fast=False)


def test_predict_with_non_finite_weights_is_one_line_and_exit_1(broken_weights, tmp_path):
    photo = tmp_path / "sky.jpg"
    Image.fromarray(np.full((36, 64, 3), 120, np.uint8)).save(photo)
    result = CliRunner().invoke(app, ["predict", str(photo), "-w", str(broken_weights), "-o", str(tmp_path)])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: cannot load model folder"), result.output
    assert _expected(broken_weights) in lines[0]
    assert not (tmp_path / "sky.mp4").exists()


def test_finite_weights_still_load(tiny_weights):
    model = load_model(tiny_weights)
    assert all(torch.isfinite(p).all() for p in model.state_dict().values() if p.is_floating_point())


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_the_check_finds_one_bad_value_anywhere(dtype, bad):
    from skyforecast.model.weights import check_finite

    for pos in (0, 517, 999):
        t = torch.randn(1000).to(dtype)
        t[pos] = bad
        expected = r"f\.safetensors: tensor x holds 1 (NaN|Inf) of its 1000 values"
        with pytest.raises(WeightsError, match=expected):
            check_finite("f.safetensors", "x", t)
    big = torch.full((4,), 60000.0).to(dtype)  # large but finite: kept
    assert check_finite("f.safetensors", "x", big) is big
