"""Longer videos by chaining predictions (``--frames``) and seamless loops (``--loop``)."""

from __future__ import annotations

import glob
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from skyforecast.cli import app
from skyforecast.models import MDGAN
from skyforecast.pipeline import SkyPipeline
from skyforecast.sequence import join, make_loop, predict_long

runner = CliRunner()


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory) -> Path:
    torch.manual_seed(11)
    model = MDGAN(ngf=4)
    with torch.no_grad():
        model.base.deconv6[0].weight.mul_(20)
        model.refine.deconv6[0].weight.mul_(20)
    folder = tmp_path_factory.mktemp("weights") / "tiny"
    model.eval().save_pretrained(folder)
    return folder


def read_frames(folder: Path) -> np.ndarray:
    return np.stack([np.asarray(Image.open(p).convert("RGB")) for p in sorted(folder.glob("frame_*.png"))])


def steps(video: np.ndarray) -> np.ndarray:
    """Mean absolute difference of each frame to the next, the last one wrapping around to the first."""
    v = video.astype(np.float32)
    return np.abs(np.roll(v, -1, axis=0) - v).mean(axis=(1, 2, 3))


def real_clip(real_sky_dev: Path, name: str = "grid03") -> np.ndarray:
    files = sorted(glob.glob(str(real_sky_dev / name / f"{name}_1" / "*.jpg")))
    return np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])


def test_frames_96_writes_96_frames_continuing_the_first_prediction(tmp_path, real_photos, tiny_weights):
    photo = str(real_photos / "coast.png")
    result = runner.invoke(
        app,
        ["predict", photo, "-w", str(tiny_weights), "-o", str(tmp_path), "-f", "frames", "--frames", "96"],
    )
    assert result.exit_code == 0, result.output
    long = read_frames(tmp_path / "coast_frames")
    assert long.shape == (96, 128, 228, 3)
    result = runner.invoke(
        app, ["predict", photo, "-w", str(tiny_weights), "-o", str(tmp_path / "s"), "-f", "frames"]
    )
    short = read_frames(tmp_path / "s" / "coast_frames")
    assert np.array_equal(long[:27], short[:27])  # chaining starts from the ordinary prediction
    assert not np.array_equal(long[40:72], long[8:40])  # later frames are new predictions, not a repeat


def test_chained_seam_is_a_cross_fade(real_photos, tiny_weights):
    pipe = SkyPipeline.from_pretrained(tiny_weights, device="cpu")
    square = np.asarray(Image.open(real_photos / "coast.png").convert("RGB").resize((128, 128)))[None]
    first = pipe.predict_squares(square)[0]
    second = pipe.predict_squares(first[-5][None])[0]  # seeded by the frame 4 steps before the end
    video = predict_long(pipe, square, 60, overlap=4)[0]
    assert video.shape == (60, 128, 128, 3)
    assert np.array_equal(video[:27], first[:27])
    # then the second prediction (to within 1 level: CPU kernels may round differently between calls)
    assert np.abs(video[32:59].astype(int) - second[5:32]).max() <= 1
    for j, t in enumerate(range(27, 32)):  # the five shared frames move from the first video to the second
        w = (j + 1) / 6
        expected = (1 - w) * first[t].astype(np.float32) + w * second[j]
        assert np.abs(video[t] - expected).max() <= 2


def test_join_keeps_both_ends():
    a = np.zeros((10, 4, 4, 3), np.uint8)
    b = np.full((10, 4, 4, 3), 200, np.uint8)
    out = join(a, b, overlap=2)
    assert len(out) == 10 + 10 - 3
    assert out[:7].max() == 0 and out[10:].min() == 200
    assert 0 < out[7].mean() < out[8].mean() < out[9].mean() < 200


@pytest.mark.parametrize("style", ["fade", "pingpong"])
def test_loop_on_a_real_clip_returns_to_its_start_smoothly(real_sky_dev, style):
    clip = real_clip(real_sky_dev)
    loop = make_loop(clip.copy(), 24, style)
    assert loop.shape == (24, 128, 128, 3)
    s = steps(loop)
    assert s[-1] <= s[:-1].max()  # last -> first is no bigger a step than the loop's own steps
    raw = steps(clip[:24])[-1]  # without looping the wrap-around would jump
    assert s[-1] < raw / 2


def test_pingpong_with_an_odd_count():
    video = np.arange(10, dtype=np.uint8)[:, None, None, None].repeat(2, 1).repeat(2, 2).repeat(3, 3)
    loop = make_loop(video, 7, "pingpong")
    assert [int(f[0, 0, 0]) for f in loop] == [0, 1, 2, 3, 3, 2, 1]


def test_loop_cli_on_coast_native(tmp_path, real_photos, tiny_weights):
    result = runner.invoke(
        app,
        [
            "predict", str(real_photos / "coast.png"), "-w", str(tiny_weights), "-o", str(tmp_path),
            "-f", "frames", "--loop", "--resolution", "180",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    frames = read_frames(tmp_path / "coast_frames")
    assert frames.shape == (32, 180, 320, 3)
    s = steps(frames)
    assert s[-1] <= s[:-1].max()


def test_loop_needs_a_few_frames(tmp_path, real_photos):
    result = runner.invoke(app, ["predict", str(real_photos / "coast.png"), "--loop", "--frames", "3"])
    assert result.exit_code == 2 and "--frames 4" in result.output
