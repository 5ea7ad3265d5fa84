"""GIF timing: delays are stored in 10 ms units, so each frame's delay is chosen for the asked frame rate
to hold on average (before: 8 fps was written as 120 ms per frame, 8.33 fps)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from skyforecast.cli import app
from skyforecast.io.media import write_gif


def _delays(path) -> list[int]:
    with Image.open(path) as im:
        out = []
        for i in range(im.n_frames):
            im.seek(i)
            out.append(im.info["duration"])
    return out


def _video(t: int = 32) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 255, (t, 16, 24, 3), dtype=np.uint8)


@pytest.mark.parametrize("fps", [8, 7.5, 12, 24, 30, 50])
def test_gif_plays_at_the_asked_rate(tmp_path, fps):
    write_gif(_video(), tmp_path / "v.gif", fps=fps)
    delays = _delays(tmp_path / "v.gif")
    assert len(delays) == 32 and all(d % 10 == 0 and d >= 20 for d in delays)
    assert abs(sum(delays) - 32 * 1000 / fps) <= 5  # the whole video lasts as long as asked
    for n in range(1, 33):  # and so does every stretch from the start: no drift that evens out later
        assert abs(sum(delays[:n]) - n * 1000 / fps) <= 5


def test_eight_fps_alternates_120_and_130_ms(tmp_path):
    write_gif(_video(8), tmp_path / "v.gif", fps=8)
    assert _delays(tmp_path / "v.gif") == [130, 120] * 4


def test_predict_gif_over_50_fps_plays_at_50_and_says_so(tmp_path, tiny_weights):
    photo = tmp_path / "sky.png"
    Image.fromarray(_video(1)[0]).save(photo)
    result = CliRunner().invoke(
        app, ["predict", str(photo), "-o", str(tmp_path / "v.gif"), "--fps", "60", "-w", str(tiny_weights)]
    )
    assert result.exit_code == 0, result.output
    assert _delays(tmp_path / "v.gif") == [20] * 32
    assert "note: GIFs play at most 50 fps" in result.output
