"""Photos of extreme shapes: a 20000x500 panorama at ``--resolution native`` (x264 refuses frames over 16384
px wide; ffmpeg's own message was all the user saw), a 20000x2 strip as a GIF (OpenCV's warping stops at
32767 px: an assertion with its source line) and at model resolution. They are written at most 8192 px a
side (``constants.MAX_SIDE``), with a note that says so."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner
from videos import read_video

from skyforecast.cli import app
from skyforecast.io.constants import MAX_SIDE
from skyforecast.render import sizing


def _photo(path, width: int, height: int):
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(path)
    return path


def _predict(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["predict", *args])
    return result.exit_code, " ".join(result.output.split())


@pytest.mark.parametrize(
    ("photo", "resolution", "panels", "size"),
    [
        ((20000, 500), "native", 1, (8192, 204)),
        ((500, 20000), "native", 1, (204, 8192)),
        ((20000, 500), 1080, 1, (8192, 204)),
        ((20000, 2), 128, 1, (8192, 2)),
        ((6000, 400), "native", 3, (2730, 182)),  # --compare: the three panels together
    ],
)
def test_frame_size_keeps_every_side_within_max_side(photo, resolution, panels, size):
    got, note = sizing.frame_size(photo, resolution, panels)
    assert got == size and got[0] * panels <= MAX_SIDE and got[1] <= MAX_SIDE
    assert f"rendered at {size[0]}x{size[1]} (at most {MAX_SIDE} px a side" in note


def test_a_20000x500_panorama_at_native_resolution(tmp_path, tiny_weights):
    photo = _photo(tmp_path / "pano.png", 20000, 500)
    code, out = _predict(str(photo), "-w", str(tiny_weights), "-o", str(tmp_path), "--resolution", "native")
    assert code == 0, out
    assert "note:" in out and "20000x500 photo rendered at 8192x204 (at most 8192 px a side" in out
    assert "ffmpeg" not in out and "Error" not in out
    assert read_video(tmp_path / "pano.mp4").shape == (32, 204, 8192, 3)


def test_a_20000x2_strip_as_gif_and_at_model_resolution(tmp_path, tiny_weights):
    photo = _photo(tmp_path / "strip.png", 20000, 2)
    code, out = _predict(str(photo), "-w", str(tiny_weights), "-o", str(tmp_path / "strip.gif"))
    assert code == 0, out
    assert "20000x2 photo at 128p rendered at 8192x2" in out and "aspect ratio is not kept" in out
    assert "OpenCV" not in out and "Traceback" not in out
    assert read_video(tmp_path / "strip.gif").shape == (32, 2, 8192, 3)
    code, out = _predict(
        str(photo), "-w", str(tiny_weights), "-o", str(tmp_path / "m.mp4"), "--resolution", "model"
    )
    assert code == 0, out
    assert "20000x2 photo rendered at 8192x2 (at most 8192 px a side)" in out
    assert read_video(tmp_path / "m.mp4").shape == (32, 2, 8192, 3)
