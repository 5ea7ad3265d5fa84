"""Frames rendered straight to yuv420p (``skyforecast.render.planar``) against the RGB frames of the same
renderer converted afterwards (``io.yuv.I420``): the planes, the still pixels, and MP4s decoded back."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from videos import read_video

from skyforecast.io.media import load_photo, write_mp4
from skyforecast.io.yuv import I420
from skyforecast.render import skymask, steady
from skyforecast.render.frames import Frames
from skyforecast.render.planar import PlanarFrames, planes_of
from skyforecast.render.postprocess import PostProcess

SKY = Path(__file__).resolve().parents[1] / "examples" / "sky.jpg"


def photo(size: tuple[int, int] = (480, 270)) -> np.ndarray:
    return np.asarray(Image.open(SKY).convert("RGB").resize(size, Image.BICUBIC))


def drifting(frames: int = 32) -> np.ndarray:
    """A 128 px prediction of the example photo drifting right a pixel per frame."""
    base = np.asarray(Image.open(SKY).convert("RGB").resize((160, 128), Image.BICUBIC))
    return np.stack([base[:, 32 - t // 2 : 160 - t // 2] for t in range(frames)])


def split(buf: np.ndarray, h: int) -> tuple[np.ndarray, np.ndarray]:
    """(luma, chroma as (2, h/2, w/2)) of a planar buffer, as ints."""
    w = buf.shape[1]
    return buf[:h].astype(int), buf[h:].reshape(2, h // 2, w // 2).astype(int)


@pytest.mark.parametrize(
    "options, masked",
    [({}, True), ({}, False), ({"loop": True}, True), ({"frames": 100}, True)],  # 100: cycles, rolled skies
)
def test_planes_are_the_rgb_frames_converted(options, masked):
    still = photo()
    h, w = still.shape[:2]
    sky = skymask.sky_mask(still) if masked else None
    renderer, _ = steady.animate_frames(still, drifting(), sky, **options)
    planar, convert = PlanarFrames(renderer), I420(w, h)
    reference = split(convert(still).copy(), h)
    moved = 0.0
    for t in sorted({1, 9, 16, 31, len(renderer) - 1}):
        rgb = renderer[t]
        (y, c), (ry, rc) = split(planar[t].copy(), h), split(convert(rgb), h)
        # luma warped from the converted source against luma of the warped RGB: rounding apart (0.1 on
        # average; the kept light's offset, rounded in each space apart, adds ~0.2); where the offset took
        # a channel of the RGB frame past white or black it was clipped there, and is clipped only when
        # the planes are decoded
        inside = (rgb.max(axis=2) < 255) & (rgb.min(axis=2) > 0)
        assert np.abs(y - ry)[inside].max() <= 3 and np.abs(y - ry).mean() < 0.35
        # chroma sampled at half size against the 2x2 mean of full-size samples: a few levels at sharp
        # colour edges, none on average
        assert np.abs(c - rc).mean() < 0.4 and (np.abs(c - rc) > 2).mean() < 0.01
        assert abs((c - rc).mean()) < 0.1
        moved = max(moved, np.abs(y - reference[0]).mean())
        if masked:  # the still pixels are the photo's planes, bit for bit
            alpha = renderer.alpha
            half = cv2.resize(alpha, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
            assert (alpha == 0).any() and (half == 0).any()
            assert np.array_equal(y[alpha == 0], reference[0][alpha == 0])
            assert np.array_equal(c[:, half == 0], reference[1][:, half == 0])
    assert moved > 2  # the sky did move: the comparison is not between two stills


@pytest.mark.parametrize("options", [{"light": True}])
def test_a_light_trend_is_converted_from_rgb(options):
    still = photo((160, 96))
    renderer, _ = steady.animate_frames(still, drifting(), skymask.sky_mask(still), **options)
    planar, convert = PlanarFrames(renderer), I420(160, 96)
    assert renderer.gain is not None
    for t in (0, 20):
        assert np.array_equal(planar[t], convert(renderer[t]))


def test_odd_sized_sources_keep_their_last_row_and_column():
    rgb = np.zeros((5, 7, 3), np.uint8)
    rgb[:, -1] = (255, 0, 0)  # a red last column
    rgb[-1] = (0, 0, 255)  # a blue last row
    luma, chroma = planes_of(rgb)
    assert luma.shape == (5, 7) and chroma.shape == (3, 4, 2)
    assert chroma[0, 3, 1] > 200 and chroma[2, 0, 0] > 200  # Cr of the red column, Cb of the blue row


def test_predicts_mp4_is_made_from_planes_and_decodes_like_one_through_rgb(tmp_path):
    path = tmp_path / "sky.jpg"
    Image.fromarray(photo((640, 360))).save(path, quality=95)
    post = PostProcess()
    videos = drifting()[None]
    frames, _ = post.stream(load_photo(path), videos, (640, 360))
    ticks: list[int] = []
    counted = frames.counted(lambda done, total: ticks.append(done))
    assert counted.yuv420p() is not None  # the writer gets planes, not RGB frames
    write_mp4(counted, tmp_path / "planes.mp4")
    assert ticks == list(range(1, 33))  # progress still counts every frame
    write_mp4(frames, tmp_path / "rgb.mp4", feed="rgb24")  # the reference: RGB, converted by ffmpeg
    ours, ref = read_video(tmp_path / "planes.mp4").astype(int), read_video(tmp_path / "rgb.mp4").astype(int)
    assert ours.shape == ref.shape == (32, 360, 640, 3)
    # x264 turns inputs that differ at all into different quantisation noise: the planes and the RGB frames
    # differ by rounding (0.1 levels of luma on average), and by the kept light's offsets, rounded in RGB
    # and in YCbCr apart (0.27 with them); decoded, 0.97 levels apart without the offsets, 1.13 with them
    # (1080p renders, `bench/steady.py`: 0.80)
    assert np.abs(ours - ref).mean() <= 1.25
    assert np.abs((ours - ref).mean(axis=(0, 1, 2))).max() <= 0.3  # no colour cast

    # the writer reads only the planes: a video whose RGB frames cannot be made is written all the same
    def no_rgb(i: int) -> np.ndarray:
        raise AssertionError("the MP4 writer asked for an RGB frame")

    planes_only = Frames(
        len(frames), (640, 360), no_rgb, planar=PlanarFrames(renderer_of(post, path)).__getitem__
    )
    write_mp4(planes_only, tmp_path / "planes-only.mp4")
    assert np.abs(read_video(tmp_path / "planes-only.mp4").astype(int) - ours).mean() <= 0.5
    # a GIF, a loop played back and forth or --compare's panels are made from RGB
    assert PostProcess(loop="pingpong").stream(load_photo(path), videos, (640, 360))[0].yuv420p() is None


def renderer_of(post: PostProcess, path: Path) -> steady.SteadyRenderer:
    """The renderer ``post`` makes for the photo at ``path`` at 640x360, as ``stream`` does."""
    still = np.asarray(Image.open(path).convert("RGB"))
    return steady.animate_frames(still, drifting(), skymask.sky_mask(still), frames=post.frames)[0]
