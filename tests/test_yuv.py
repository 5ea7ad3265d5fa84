"""yuv420p made in our process (``skyforecast.io.yuv``) against ffmpeg's own conversion from rgb24: the
planes, and MP4s written from either feed decoded back."""

from __future__ import annotations

import subprocess
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image
from videos import read_video

from skyforecast.io.media import BT709_CONVERSION, write_mp4
from skyforecast.io.yuv import BAND, I420, to_yuv420p

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
SKY = Path(__file__).resolve().parents[1] / "examples" / "sky.jpg"


def ffmpeg_yuv420p(frames: np.ndarray) -> np.ndarray:
    """What ffmpeg makes of rgb24 frames with the conversion write_mp4 gives it: (T, H * 3 // 2, W)."""
    t, h, w, _ = frames.shape
    cmd = [
        FFMPEG, "-v", "error", "-nostdin", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-i", "-",
        "-vf", BT709_CONVERSION, "-f", "rawvideo", "-pix_fmt", "yuv420p", "-",
    ]  # fmt: skip
    raw = subprocess.run(cmd, input=frames.tobytes(), capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(t, h * 3 // 2, w)


def sky_frames(t: int = 3, size: tuple[int, int] = (320, 180)) -> np.ndarray:
    """The example photo at ``size``, shifted a little each frame (a real scene, not noise)."""
    base = np.asarray(Image.open(SKY).convert("RGB").resize((size[0] + 8 * t, size[1]), Image.BICUBIC))
    return np.stack([base[:, 8 * i : 8 * i + size[0]] for i in range(t)])


def flat_patches() -> np.ndarray:
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (224, 172, 138), (110, 160, 220), (0, 0, 0), (255,) * 3]
    return np.repeat(np.repeat(np.array([colours], np.uint8), 16, axis=1), 16, axis=0)[None]


def test_planes_match_ffmpegs_conversion():
    # 180 rows: the last band is shorter than the others
    frames = np.concatenate([sky_frames(), cv2.resize(flat_patches()[0], (320, 180), interpolation=0)[None]])
    assert frames.shape[1] % BAND != 0
    ours = np.stack([to_yuv420p(f) for f in frames]).astype(int)
    ref = ffmpeg_yuv420p(frames).astype(int)
    h = frames.shape[1]
    luma, chroma = ours[:, :h] - ref[:, :h], ours[:, h:] - ref[:, h:]
    assert np.abs(luma).max() <= 1 and abs(luma.mean()) < 0.05
    assert np.abs(chroma[-1]).max() <= 1  # flat colours
    # the photo shrunk to 320 px has sharp colour edges (roofs against the sky), where our 2x2 mean and
    # ffmpeg's bicubic filter part by a few levels; on average they agree
    assert np.abs(chroma).max() <= 4 and (np.abs(chroma) > 1).mean() < 0.01
    assert abs(chroma.mean()) < 0.05 and np.abs(chroma).mean() < 0.3


def test_flat_colours_are_exact_bt709_tv_range():
    frame = flat_patches()[0]
    yuv = to_yuv420p(frame).astype(float)
    h, w = frame.shape[:2]
    y, cb = yuv[:h, ::16][8], yuv[h : h + h // 4].reshape(h // 2, w // 2)[4, ::8]
    r, g, b = (frame[8, ::16].astype(float) / 255).T
    luma = 0.2126 * r + 0.7152 * g + 0.0722 * b
    assert np.abs(y - (16 + 219 * luma)).max() <= 1  # rounding, and the nudge of yuv.MATRIX
    assert np.abs(cb - (128 + 224 * (b - luma) / 1.8556)).max() <= 1
    assert y[5] == 16 and y[6] == 235  # black and white at the ends of TV range


def test_converter_refuses_odd_sides_and_other_shapes():
    with pytest.raises(ValueError, match="even"):
        I420(33, 20)
    with pytest.raises(ValueError, match="expected"):
        I420(32, 20)(np.zeros((20, 34, 3), np.uint8))


@pytest.mark.parametrize("size", [(320, 180), (161, 91)])  # odd sides: write_mp4 crops to even ones
def test_mp4_fed_yuv420p_decodes_like_one_fed_rgb24(tmp_path, size):
    frames = sky_frames(4, size)
    write_mp4(frames, tmp_path / "yuv.mp4")  # the default feed
    write_mp4(frames, tmp_path / "rgb.mp4", feed="rgb24")
    ours, ref = read_video(tmp_path / "yuv.mp4").astype(int), read_video(tmp_path / "rgb.mp4").astype(int)
    even = (size[1] - size[1] % 2, size[0] - size[0] % 2)
    assert ours.shape == ref.shape == (4, *even, 3)
    source = frames[:, : even[0], : even[1]].astype(int)
    # within a level on average in every channel: no colour cast
    assert np.abs((ours - ref).mean(axis=(0, 1, 2))).max() <= 0.3
    # pixel by pixel the two differ by x264's own noise (each is ~2-3 levels from the source at CRF 18 on
    # this detailed small scene), and ours is as close to the source as the rgb24 one
    assert np.abs(ours - ref).mean() <= 2
    assert np.abs(ours - source).mean() <= 1.02 * np.abs(ref - source).mean()


def test_unknown_feed_is_refused(tmp_path):
    with pytest.raises(ValueError, match="feed"):
        write_mp4(sky_frames(1), tmp_path / "x.mp4", feed="bgr24")
    assert not (tmp_path / "x.mp4").exists()
