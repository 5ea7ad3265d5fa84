"""The numpy engine computes what the torch engines compute; a one-photo ``predict`` runs without torch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import randomise_batchnorm, visible_tiny_model
from videos import read_video

from skyforecast.io.media import squash
from skyforecast.model.engines import NUMPY_MOST_PHOTOS, load_pipeline, pick_engine
from skyforecast.model.fast import FastMDGAN
from skyforecast.model.networks import MDGAN
from skyforecast.model.numpy_engine import NumpyMDGAN, NumpyPipeline
from skyforecast.model.pipeline import SkyPipeline
from skyforecast.model.weights import ModelFiles, WeightsError, locate

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sky.jpg"


def _photos(n: int, seed: int = 0) -> np.ndarray:
    """(N, 3, 128, 128) float32 photos in [-1, 1] with structure at every scale."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(-1, 1, (n, 3, 8, 8)).astype(np.float32)
    smooth = np.kron(coarse, np.ones((16, 16), np.float32))
    return np.clip(smooth + rng.normal(0, 0.2, smooth.shape).astype(np.float32), -1, 1)


@pytest.mark.parametrize("refine_ngf", [None, 8])
def test_numpy_engine_matches_the_reference_network(tmp_path, refine_ngf):
    """Random BatchNorm statistics and affine terms (folding must be right), both stages, a Refine-Net of
    its own width: the numpy engine gives the eager network's output within float rounding."""
    model = randomise_batchnorm(MDGAN(ngf=4, refine_ngf=refine_ngf), seed=3).eval()
    with torch.no_grad():  # outputs far from zero, so that a wrong tap or fold shows
        model.base.deconv6[0].weight.mul_(20)
        model.refine.deconv6[0].weight.mul_(20)
    model.save_pretrained(tmp_path / "m")
    engine = NumpyMDGAN.from_files(locate(tmp_path / "m"))
    photos = _photos(2)
    for stage in (1, 2):
        with torch.no_grad():
            x = torch.from_numpy(photos).unsqueeze(2).expand(-1, -1, 32, -1, -1)
            want = model(x, stage=stage).numpy()
        got = engine(photos, stage=stage)
        assert got.shape == want.shape == (2, 3, 32, 128, 128)
        assert np.abs(got - want).max() < 1e-4, stage  # measured 4e-6: float rounding, which varies by CPU
        assert want.std() > 0.05  # the comparison is about a video with content, not a constant


def test_the_temporal_shortcut_is_exact_and_longer_clips_match(tmp_path):
    """Base-Net's encoder on 3 frames equals the full encoder on the repeated photo; a 64-frame clip
    matches torch's fast path."""
    visible_tiny_model(7).save_pretrained(tmp_path / "m")
    files = locate(tmp_path / "m")
    photos = _photos(1, seed=4)
    engine = NumpyMDGAN.from_files(files)
    x = np.ascontiguousarray(np.broadcast_to(photos[0][:, None], (3, 32, 128, 128)))
    assert np.abs(engine.base.forward_static(photos[0], 32) - engine.base.forward(x)).max() < 1e-4
    long = NumpyMDGAN.from_files(files, frames=64)
    want = FastMDGAN.from_files(files, frames=64)(torch.from_numpy(photos), stage=2).numpy()
    got = long(photos, stage=2)
    assert got.shape == want.shape == (1, 3, 64, 128, 128)
    assert np.abs(got - want).max() < 1e-4


def test_bundled_model_videos_agree_with_torch_to_a_level():
    """The default model on a real photo: uint8 videos equal except where float rounding crosses a half
    level (a level at most, in under 0.01 % of the values)."""
    from PIL import Image

    square = squash(Image.open(EXAMPLE).convert("RGB"))[None]
    ours = NumpyPipeline.from_pretrained().predict_squares(square)
    theirs = SkyPipeline.from_pretrained(device="cpu").predict_squares(square)
    assert ours.shape == theirs.shape == (1, 32, 128, 128, 3) and ours.dtype == np.uint8
    diff = np.abs(ours.astype(int) - theirs)
    assert diff.max() <= 1
    assert (diff > 0).mean() < 1e-4
    assert np.abs(np.diff(ours[0].astype(int), axis=0)).mean() > 0.1  # a video that changes


def test_pipelines_take_the_same_photo_kinds(tmp_path, sample_photos):
    """Called on paths, PIL images and arrays, as ``SkyPipeline`` is."""
    from PIL import Image

    visible_tiny_model(2).save_pretrained(tmp_path / "m")
    pipe = load_pipeline(tmp_path / "m", engine="numpy")
    path = sample_photos / "cumulus.jpg"
    array = np.asarray(Image.open(path).convert("RGB"))
    videos = pipe([path, Image.open(path), array])
    assert len(videos) == 3 and all(v.shape == (32, 128, 128, 3) for v in videos)
    assert np.array_equal(videos[0], videos[1]) and np.array_equal(videos[0], videos[2])
    (alone,) = pipe(path)  # one photo, not in a list
    assert np.array_equal(alone, videos[0]) and pipe([]) == []
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        pipe(array.astype(np.float32))


def _files(batch_stats: bool = False) -> ModelFiles:
    return ModelFiles("m", 8, batch_stats, "model m")


def test_auto_picks_numpy_for_one_photo_on_the_cpu_and_torch_otherwise():
    assert pick_engine("auto", "auto", 1, _files()) == "numpy"
    assert NUMPY_MOST_PHOTOS == 1
    assert pick_engine("auto", "cpu", 1, _files()) == "numpy"
    assert pick_engine("auto", "auto", 2, _files()) == "torch"
    assert pick_engine("auto", "cuda", 1, _files()) == "torch"
    assert pick_engine("auto", "auto", 1, _files(batch_stats=True)) == "torch"
    assert pick_engine("torch", "cpu", 1, _files()) == "torch"
    assert pick_engine("numpy", "cpu", 100, _files()) == "numpy"
    for engine, device, files, words in [
        ("numpy", "cuda", _files(), "CPU only"),
        ("numpy", "auto", _files(batch_stats=True), "batch statistics"),
        ("onnx", "auto", _files(), "unknown engine"),
    ]:
        with pytest.raises(ValueError, match=words):
            pick_engine(engine, device, 1, files)


def test_broken_weights_are_refused_by_name(tmp_path):
    """A NaN in the stored weights: the numpy engine refuses them as the torch engines do, naming the
    tensor; a model needing batch statistics is refused with the reason."""
    from safetensors.numpy import load_file, save_file

    visible_tiny_model(5).save_pretrained(tmp_path / "m")
    path = tmp_path / "m" / "model.safetensors"
    state = load_file(str(path))
    state["refine.conv3.0.weight"][0, 0, 0, 0, 0] = np.nan
    save_file(state, str(path))
    with pytest.raises(WeightsError, match=r"refine\.conv3\.0\.weight holds 1 NaN"):
        NumpyPipeline.from_pretrained(tmp_path / "m")
    MDGAN(ngf=4, batch_stats=True).save_pretrained(tmp_path / "b")
    with pytest.raises(WeightsError, match="batch statistics"):
        NumpyPipeline.from_pretrained(tmp_path / "b")


def _predict(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    cmd = [sys.executable, "-X", "importtime", "-m", "skyforecast", "predict", *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def _imported(stderr: str) -> set[str]:
    return {line.split("|")[-1].strip() for line in stderr.splitlines() if line.startswith("import time:")}


def test_one_photo_predict_never_imports_torch(tmp_path, sample_photos):
    """The default one-photo run: an MP4 of 32 frames at the photo's size, and torch never imported."""
    run = _predict([str(sample_photos / "dusk.jpg"), "-o", str(tmp_path / "dusk.mp4")], tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "torch" not in _imported(run.stderr)
    frames = read_video(tmp_path / "dusk.mp4")
    assert frames.shape == (32, 180, 320, 3)
    forced = _predict(
        [str(sample_photos / "dusk.jpg"), "-o", str(tmp_path / "t.mp4"), "--engine", "torch"], tmp_path
    )
    assert forced.returncode == 0, forced.stderr[-2000:]
    assert "torch" in _imported(forced.stderr)
    assert np.abs(read_video(tmp_path / "t.mp4").astype(int) - frames).mean() < 1.0


def test_engine_misuse_is_one_line_and_exit_code_2(tmp_path, sample_photos):
    photo = str(sample_photos / "dusk.jpg")
    for extra, words in [
        (["--engine", "onnx"], "unknown --engine 'onnx'"),
        (["--engine", "numpy", "--device", "cuda"], "numpy engine runs on the CPU only"),
    ]:
        run = _predict([photo, "-o", str(tmp_path / "x.mp4"), *extra], tmp_path)
        assert run.returncode == 2, run.stderr[-2000:]
        lines = [line for line in run.stderr.splitlines() if not line.startswith("import time:")]
        assert any(words in line for line in lines), lines
        assert "Traceback" not in run.stderr
        assert not (tmp_path / "x.mp4").exists()
