"""GIF content: one palette for the whole video, still pixels identical in every frame, frames that store
only what changed, and the size of a default video at 854x480."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from videos import read_video

from skyforecast.io.media import write_gif, write_mp4

ROOT = Path(__file__).resolve().parents[1]


def _ground_and_sky(t: int = 16, h: int = 96, w: int = 160) -> tuple[np.ndarray, np.ndarray]:
    """A textured, still lower half (smooth gradients and fine noise: the kind dithering used to repaint
    differently in every frame) under a sky band whose gradient drifts sideways. Returns (frames, still)."""
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    ground = np.stack([60 + 80 * x / w, 90 + 40 * y / h, 40 + 30 * np.sin(x / 7)], -1)
    ground = np.clip(ground + rng.normal(0, 6, ground.shape), 0, 255)
    frames = np.empty((t, h, w, 3), np.uint8)
    for i in range(t):
        sky = np.stack(
            [90 + 60 * np.sin((x + 3 * i) / 19), 140 + 50 * np.cos((x - 2 * i) / 23), 230 + 0 * x], -1
        )
        frames[i] = np.where(y[..., None] < h // 2, sky, ground).astype(np.uint8)
    still = np.zeros((h, w), bool)
    still[h // 2 :] = True
    return frames, still


def test_still_pixels_are_identical_in_every_frame(tmp_path):
    frames, still = _ground_and_sky()
    write_gif(frames, tmp_path / "v.gif")
    gif = read_video(tmp_path / "v.gif")
    assert gif.shape == frames.shape
    ground = gif[:, still]
    assert (ground == ground[0]).all()  # not one still pixel changes, in any frame
    err = np.abs(ground[0].astype(int) - frames[0][still]).mean()
    assert err < 6, err  # and they are the photo's colours (64 palette colours for noisy ground: ~5 levels)
    sky = gif[:, ~still].astype(int)
    assert np.abs(sky - frames[:, ~still]).mean() < 6  # the moving part follows the video
    assert (sky[1:] != sky[:-1]).any()


def test_later_frames_store_only_the_changed_rectangle(tmp_path):
    """A small square moves over a still picture: from the third frame on, each frame stores the rectangle
    around the square's last two places (the writer compares with the frame stored before), not the whole
    picture; the second stores the whole picture, transparent where nothing changed."""
    frames, _ = _ground_and_sky(t=6)
    frames[:] = frames[-1]  # all still ...
    for i in range(6):
        frames[i, 10:20, 30 + 4 * i : 40 + 4 * i] = (250, 40, 40)  # ... but a red square moving right
    write_gif(frames, tmp_path / "v.gif")
    with Image.open(tmp_path / "v.gif") as im:
        boxes = []
        for i in range(im.n_frames):
            im.seek(i)
            boxes.append(im.tile[0][1])
    assert len(boxes) == 6 and boxes[0] == boxes[1] == (0, 0, 160, 96)
    for i, box in enumerate(boxes[2:], 2):
        assert box == (30 + 4 * (i - 2), 10, 40 + 4 * i, 20), box
    gif = read_video(tmp_path / "v.gif")
    red = (frames == (250, 40, 40)).all(-1)
    np.testing.assert_array_equal((gif == (250, 40, 40)).all(-1), red)  # where the square is, only there
    assert (gif[:, ~red.any(0)] == gif[0, ~red.any(0)]).all()
    assert (tmp_path / "v.gif").stat().st_size < 20_000  # six whole frames of this picture: 60 KB


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255.0**2 / np.mean((a.astype(np.float64) - b) ** 2)))


def test_default_video_at_854x480_is_under_1_5_mb(tmp_path):
    """The bundled model's default video of examples/sky.jpg at 480 px high (854x480, 32 frames): before,
    4.6 MB with still pixels repainted in every frame."""
    import skyforecast

    frames = skyforecast.animate(str(ROOT / "examples" / "sky.jpg"), resolution=480)
    assert frames.shape == (32, 480, 854, 3)
    write_gif(frames, tmp_path / "sky.gif")
    write_mp4(frames, tmp_path / "sky.mp4")
    size = (tmp_path / "sky.gif").stat().st_size
    assert size < 1_500_000, size
    gif, mp4 = read_video(tmp_path / "sky.gif"), read_video(tmp_path / "sky.mp4")
    assert gif.shape == frames.shape
    assert _psnr(gif, frames) > 36 and _psnr(gif, mp4) > 35
    still = (frames == frames[0]).all(axis=(0, 3))
    assert still.mean() > 0.2 and (gif[:, still] == gif[0, still]).all()


@pytest.mark.parametrize("size", [(1, 1), (2, 2), (3, 5)])
def test_tiny_and_flat_gifs(tmp_path, size):
    """A palette from one frame of a single colour, or of a few pixels, still makes a GIF."""
    frames = np.full((4, size[1], size[0], 3), 77, np.uint8)
    frames[2:] = 200
    write_gif(frames, tmp_path / "v.gif")
    np.testing.assert_array_equal(read_video(tmp_path / "v.gif"), frames)
