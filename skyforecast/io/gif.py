"""Writing animated GIFs: timing in the GIF's 10 ms steps, one palette for the whole video, and frames that
store only what changed (so still ground stays the same pixels in every frame). ``media.WRITERS`` holds
``write_gif`` beside the MP4 and PNG writers.

No torch here: frames are numpy uint8 arrays shaped (H, W, 3).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from .files import atomic_path

if TYPE_CHECKING:
    from .mp4 import Encoding

GIF_MAX_FPS = 50  # a 20 ms delay: browsers play shorter GIF delays far slower, as 100 ms


def gif_delays(fps: float) -> Iterator[int]:
    """Per-frame GIF delays in ms for ``fps``, endlessly. A GIF stores delays in 10 ms units, so one delay
    for all frames plays 8 fps as 8.33 (120 ms); here each frame ends at the 10 ms tick nearest to where it
    should, so 8 fps alternates 130 and 120 ms and every second of video lasts a second. ``fps`` above
    ``GIF_MAX_FPS`` plays at ``GIF_MAX_FPS``."""
    step = 100.0 / min(float(fps), GIF_MAX_FPS)  # in 10 ms units
    shown, i = 0, 0
    while True:
        i += 1
        end = int(i * step + 0.5)
        yield (end - shown) * 10
        shown = end


# GIF frames share one palette of 64 colours, made from every frame of the video (ffmpeg's ``palettegen``:
# the best of the quantisers measured, 1-3 dB above Pillow's); index 255 marks a pixel that keeps the colour
# it had in the frame before, so a frame stores only what changed and the still ground is the same pixels in
# every frame. There is no dithering (a dither pattern is noise that changes wherever the sky moves, and costs
# size), and a moving pixel keeps its previous colour while that is within ``GIF_KEEP`` (squared RGB distance)
# of the best colour's error: the sky's slow drift then rewrites a fraction of its pixels per frame.
# 64 colours, not 255: with the whole sky drifting, the default 854x480 video of examples/sky.jpg measured
# 2.13 MB at 39.1 dB with 255 colours, 1.65 MB / 38.0 dB with 96, 1.42 MB / 37.2 dB with 64 (the LZW codes of
# fewer colours are shorter and repeat more); a larger ``GIF_KEEP`` cost more decibels for the same size.
GIF_COLOURS = 64
GIF_UNCHANGED = 255
GIF_KEEP = 150
_LUT_BITS = 6  # colours are looked up per 4x4x4 cell of RGB (262,144 cells, filled as colours appear)


class GifPalette:
    """One palette for a whole GIF (``colours``: (N <= 255, 3) uint8) and the nearest-colour look-up into
    it; ``indices`` maps a frame to palette indices, keeping a pixel's previous index while that colour is
    nearly as close."""

    def __init__(self, colours: np.ndarray):
        self.colours = colours
        self._lut = np.full(1 << (3 * _LUT_BITS), GIF_UNCHANGED, np.uint8)  # 255: not looked up yet
        self._rgb = colours.astype(np.int32)

    def nearest(self, frame: np.ndarray) -> np.ndarray:
        shift = 8 - _LUT_BITS
        r, g, b = (frame[..., c].astype(np.int32) >> shift for c in range(3))
        keys = (r << (2 * _LUT_BITS)) | (g << _LUT_BITS) | b
        found = self._lut[keys]
        missing = np.unique(keys[found == GIF_UNCHANGED])
        if len(missing):
            self._fill(missing)
            found = self._lut[keys]
        return found

    def _fill(self, keys: np.ndarray) -> None:
        mask, shift = (1 << _LUT_BITS) - 1, 8 - _LUT_BITS
        cells = np.stack([(keys >> (2 * _LUT_BITS)) & mask, (keys >> _LUT_BITS) & mask, keys & mask], -1)
        centres = ((cells << shift) | (1 << (shift - 1))).astype(np.float32)
        palette = self._rgb.astype(np.float32)
        for i in range(0, len(keys), 4096):
            d = ((centres[i : i + 4096, None, :] - palette[None]) ** 2).sum(-1)
            self._lut[keys[i : i + 4096]] = d.argmin(1)

    def indices(self, frame: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
        best = self.nearest(frame)
        if previous is None:
            return best
        pixels = frame.astype(np.int32)
        err_best = ((pixels - self._rgb[best]) ** 2).sum(-1)
        err_kept = ((pixels - self._rgb[previous]) ** 2).sum(-1)
        return np.where(err_kept <= err_best + GIF_KEEP, previous, best).astype(np.uint8)


def _palette_of(raw: Path, size: tuple[int, int]) -> np.ndarray:
    """(N <= ``GIF_COLOURS``, 3) uint8: ffmpeg's ``palettegen`` over every frame of a raw RGB file."""
    import subprocess

    import imageio_ffmpeg

    cmd = [
        imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{size[0]}x{size[1]}", "-i", str(raw),
        "-vf", f"palettegen=max_colors={GIF_COLOURS}:reserve_transparent=0:stats_mode=full",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, stdin=subprocess.DEVNULL)
    if done.returncode != 0 or not done.stdout:
        detail = _last_line(done.stderr) if done.stderr else "no palette"
        raise OSError(errno.EIO, f"ffmpeg: {detail}")
    colours = np.frombuffer(done.stdout, np.uint8).reshape(-1, 3)  # a 16x16 image, unused cells repeated
    _, first_seen = np.unique(colours, axis=0, return_index=True)
    return colours[np.sort(first_seen)][:GIF_COLOURS]


def _check_frame(frame: np.ndarray, shape: tuple[int, ...] | None = None) -> None:
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        got = f"{frame.shape} {frame.dtype}" if isinstance(frame, np.ndarray) else type(frame).__name__
        raise ValueError(f"frames must be (H, W, 3) uint8, got {got}")
    if shape is not None and frame.shape != shape:
        raise ValueError(f"frame of shape {frame.shape} in a video of {shape} frames")


def _spool(frames: Iterable[np.ndarray], raw: Path) -> tuple[tuple[int, int, int], int]:
    """Write the frames to a raw RGB file one at a time (the palette needs them all before the first is
    written, and they are made one at a time); returns (frame shape, count)."""
    shape, count = None, 0
    with open(raw, "wb") as f:
        for frame in frames:
            _check_frame(frame, shape)
            shape = frame.shape
            f.write(np.ascontiguousarray(frame).data)
            count += 1
    if shape is None:
        raise ValueError("no frames to write")
    return shape, count


def write_gif(
    frames: Iterable[np.ndarray], path: str | os.PathLike, fps: float = 8, encoding: Encoding | None = None
) -> None:
    """An animated GIF that loops forever, timed by ``gif_delays``, with one palette for all frames and
    only the pixels that changed stored per frame (``GifPalette``): still pixels are identical in every
    frame. The frames wait in a raw file beside the output (removed with it) while the palette is made;
    Pillow then keeps each as an 8-bit palette image until the file is complete (a third of the RGB size).
    ``encoding`` (MP4 only) is ignored."""
    with atomic_path(path) as tmp:
        raw = tmp.with_name(tmp.name + ".rgb")
        shape, count = _spool(frames, raw)
        palette = GifPalette(_palette_of(raw, (shape[1], shape[0])))
        table = np.zeros((256, 3), np.uint8)
        table[: len(palette.colours)] = palette.colours

        def images() -> Iterator[Image.Image]:
            shown = None
            with open(raw, "rb") as f:
                for _, delay in zip(range(count), gif_delays(fps), strict=False):  # delays never run out
                    frame = np.fromfile(f, np.uint8, count=int(np.prod(shape))).reshape(shape)
                    now = palette.indices(frame, shown)
                    stored = now if shown is None else np.where(now == shown, GIF_UNCHANGED, now)
                    shown = now
                    image = Image.fromarray(stored.astype(np.uint8))
                    image.putpalette(table.tobytes())  # "L" -> "P" with our palette
                    image.info["duration"] = delay  # Pillow's writer reads each frame's own delay
                    yield image

        stream = images()
        next(stream).save(
            tmp,
            format="GIF",
            save_all=True,
            append_images=stream,
            loop=0,
            disposal=1,  # keep each frame under the next: what the next leaves transparent shows through
            transparency=GIF_UNCHANGED,
            optimize=False,
        )


def _last_line(stderr: bytes) -> str:
    lines = [x.strip() for x in stderr.decode("utf-8", "replace").splitlines() if x.strip()]
    return lines[-1] if lines else "no reason given"
