"""``skyforecast.animate``, the one-call library API: it renders what ``skyforecast predict`` writes for the
same options, frame for frame, and its errors name the arguments (the command line names its flags)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner
from videos import read_video

import skyforecast
from skyforecast.api import load_pipeline
from skyforecast.cli import app
from skyforecast.io.constants import ArgumentError
from skyforecast.io.media import write_mp4

runner = CliRunner()


def _predicted_frames(photo, weights, out, *options: str) -> np.ndarray:
    """What ``predict -f frames`` writes for ``photo``, read back as one (T, H, W, 3) array."""
    args = ["predict", str(photo), "-w", str(weights), "-o", str(out), "-f", "frames", "--device", "cpu"]
    result = runner.invoke(app, [*args, *options])
    assert result.exit_code == 0, result.output
    folder = out / f"{photo.stem}_frames"
    files = sorted(folder.glob("frame_*.png"))
    assert files, f"no frames in {folder}"
    return np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])


@pytest.mark.parametrize(
    ("options", "flags"),
    [
        # the default output (the steady sky field at the photo's size), looped, faster, to the left
        (
            {"frames": 12, "loop": True, "speed": "2x", "direction": "left"},
            ["--frames", "12", "--loop", "--speed", "2x", "--direction", "left"],
        ),
        # the model's own pixels, chained past one prediction, ping-pong, Stage I
        (
            {"resolution": "model", "frames": 40, "loop": True, "loop_style": "pingpong", "stage": 1},
            ["--resolution", "model", "--frames", "40", "--loop", "--loop-style", "pingpong", "--stage", "1"],
        ),
    ],
)
def test_animate_renders_what_predict_writes(sample_photos, tiny_weights, tmp_path, options, flags):
    photo = sample_photos / "hills.jpg"
    # both start from a freshly loaded model: on the CPU a model's first call at an input size runs a plain
    # matrix product and later calls packed convolutions, which may round 1 of 255 levels apart
    load_pipeline.cache_clear()
    frames = skyforecast.animate(photo, weights=tiny_weights, device="cpu", **options)
    written = _predicted_frames(photo, tiny_weights, tmp_path, *flags)
    assert frames.dtype == np.uint8 and frames.shape == written.shape
    assert frames.shape[0] == options["frames"]
    assert frames.std() > 5  # a picture, not a blank
    np.testing.assert_array_equal(frames, written)


def test_animate_takes_an_image_or_array_as_it_takes_the_file(sample_photos, tiny_weights):
    photo = sample_photos / "cirrus.png"  # lossless: the same pixels in memory as in the file
    from_file = skyforecast.animate(photo, weights=tiny_weights, device="cpu", frames=6)
    with Image.open(photo) as im:
        pixels = np.asarray(im.convert("RGB"))
        from_image = skyforecast.animate(im, weights=tiny_weights, device="cpu", frames=6)
    from_array = skyforecast.animate(pixels, weights=tiny_weights, device="cpu", frames=6)
    assert from_file.shape == (6, 180, 320, 3)
    np.testing.assert_array_equal(from_image, from_file)
    np.testing.assert_array_equal(from_array, from_file)


def test_a_lazy_video_is_the_same_video_and_encodes_as_predicts_mp4(sample_photos, tiny_weights, tmp_path):
    """``lazy=True``: frames rendered when read, the same pixels as the array; ``write_mp4`` encodes them
    from planes made in yuv420p, the MP4 ``predict`` writes (the array's RGB frames decode apart)."""
    photo = sample_photos / "hills.jpg"
    load_pipeline.cache_clear()
    lazy = skyforecast.animate(photo, weights=tiny_weights, device="cpu", frames=20, lazy=True)
    assert not isinstance(lazy, np.ndarray) and len(lazy) == 20 and lazy.shape == (20, 180, 320, 3)
    eager = skyforecast.animate(photo, weights=tiny_weights, device="cpu", frames=20)
    np.testing.assert_array_equal(np.asarray(lazy), eager)
    np.testing.assert_array_equal(lazy[7], eager[7])
    result = runner.invoke(app, ["predict", str(photo), "-w", str(tiny_weights), "-o", str(tmp_path / "cli"),
                                 "--frames", "20", "--device", "cpu", "-q"])  # fmt: skip
    assert result.exit_code == 0, result.output
    write_mp4(lazy, tmp_path / "lazy.mp4")
    write_mp4(eager, tmp_path / "eager.mp4")
    predicted = read_video(tmp_path / "cli" / "hills.mp4").astype(int)
    mine = read_video(tmp_path / "lazy.mp4").astype(int)
    from_rgb = read_video(tmp_path / "eager.mp4").astype(int)
    assert mine.shape == predicted.shape == (20, 180, 320, 3)
    assert np.abs(mine - predicted).mean() < 0.05
    assert np.abs(from_rgb - predicted).mean() > 0.1  # 0.97: the check tells the two paths apart


def test_the_model_is_loaded_once_per_weights_and_device(tiny_weights):
    assert load_pipeline(str(tiny_weights), "cpu") is load_pipeline(str(tiny_weights), "cpu")


@pytest.mark.parametrize(
    ("options", "message", "cli_flags", "cli_message"),
    [
        ({"speed": "fast"}, "speed: must be a factor", ["--speed", "fast"], "--speed must be a factor"),
        ({"direction": "sideways"}, "direction: must be auto", ["--direction", "sideways"],
         "--direction must"),
        ({"loop": True, "frames": 3}, "loop: needs frames 4", ["--loop", "--frames", "3"],
         "--loop needs --frames 4"),
        ({"loop": True, "loop_style": "bounce"}, "loop_style: must be one of",
         ["--loop", "--loop-style", "bounce"], "--loop-style must be one of"),
        ({"resolution": "huge"}, "resolution: must be model", ["--resolution", "huge"],
         "--resolution must be"),
        ({"mask": "no-such-mask.png"}, "mask: no-such-mask.png: no such file", ["--mask", "no-such-mask.png"],
         "--mask no-such-mask.png: no such file"),
    ],
)  # fmt: skip
def test_errors_name_the_argument_and_the_cli_names_the_flag(
    sample_photos, tiny_weights, tmp_path, options, message, cli_flags, cli_message
):
    photo = sample_photos / "hills.jpg"
    with pytest.raises(ArgumentError) as caught:
        skyforecast.animate(photo, weights=tiny_weights, device="cpu", **options)
    assert str(caught.value).startswith(message)
    args = ["predict", str(photo), "-w", str(tiny_weights), "-o", str(tmp_path), *cli_flags]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert cli_message in result.output and "Traceback" not in result.output
    assert not list(tmp_path.iterdir())  # refused before anything was written


def test_animate_refuses_a_bad_stage_and_a_bad_array(sample_photos):
    photo = sample_photos / "hills.jpg"
    with pytest.raises(ArgumentError, match="^stage: must be 1 or 2"):
        skyforecast.animate(photo, stage=3)
    with pytest.raises(ArgumentError, match="^photo: an array photo must be"):
        skyforecast.animate(np.zeros((8, 8), np.uint8))
