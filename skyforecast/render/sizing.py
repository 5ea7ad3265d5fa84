"""Output sizes and the photo at a chosen size: ``--resolution`` parsed, frames capped at 4K worth of pixels,
and a photo decoded straight to the output size."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

from ..io.constants import MAX_SIDE, ArgumentError
from ..io.media import load_photo

# The largest frame written for ``--resolution native`` (4K UHD worth of pixels, all panels of ``--compare``
# together): bigger requests are scaled down, with a note. Frames are rendered and encoded one at a time, so
# the number of frames does not count: memory is bounded by this and by the encoder.
MAX_FRAME_PIXELS = 3840 * 2160


def parse_resolution(text: str | None) -> str | int:
    """``model`` | ``native`` | a frame height such as ``1080``; raises ValueError with a clear message."""
    value = (text or "model").strip().lower()
    if value in ("model", "native"):
        return value
    if value.endswith("p"):
        value = value[:-1]
    try:
        height = int(value)
    except ValueError:
        raise ArgumentError(
            "resolution", f"must be model, native or a height like 1080, got {text!r}"
        ) from None
    if not 16 <= height <= 8192:
        raise ArgumentError("resolution", f"height must be 16..8192, got {height}")
    return height


def frame_size(
    photo_size: tuple[int, int], resolution: str | int, panels: int = 1
) -> tuple[tuple[int, int], str | None]:
    """(width, height) of one rendered panel for ``native`` or a height, and a note when it had to be capped.

    The cap keeps one written frame (``panels`` side by side) at most ``MAX_FRAME_PIXELS``: the encoder's
    memory and the renderer's per-frame buffers grow with it (about 300 MB of buffers and 0.8 GB of x264
    at 3000x2000); and at most ``MAX_SIDE`` pixels a side: x264 refuses frames over 16384 px wide, OpenCV's
    warping over 32767, and players and hardware decoders stop at 8192 or less (a 20000x500 panorama)."""
    w, h = photo_size
    if resolution == "native":
        tw, th = float(w), float(h)
    else:
        th = float(resolution)
        tw = th * w / h
    limit = MAX_FRAME_PIXELS / max(1, panels)
    by_pixels = (limit / (tw * th)) ** 0.5
    by_side = min(MAX_SIDE / (tw * panels), MAX_SIDE / th)
    if min(by_pixels, by_side) >= 1:
        return _even_size(tw, th), None
    scale = min(by_pixels, by_side)
    capped = (max(2, int(tw * scale) // 2 * 2), max(2, int(th * scale) // 2 * 2))  # floor: stay under
    what = f"{w}x{h} photo" + ("" if resolution == "native" else f" at {_even_size(tw, th)[1]}p")
    per = f"{' x ' + str(panels) + ' panels' if panels > 1 else ''}"
    if by_side < by_pixels:
        why = f"at most {MAX_SIDE} px a side{per}, the most encoders and players take"
        if th * scale < 2:
            why += "; frames are at least 2 px high, so its aspect ratio is not kept"
    else:
        why = f"limit {limit / 1e6:.1f} MP per frame{per}, to bound memory"
    return capped, f"{what} rendered at {capped[0]}x{capped[1]} ({why})"


def _even_size(w: float, h: float) -> tuple[int, int]:
    """H.264 yuv420p needs even sides."""
    return max(2, int(round(w / 2)) * 2), max(2, int(round(h / 2)) * 2)


def load_photo_at(path: str | os.PathLike, size: tuple[int, int]) -> np.ndarray:
    """Decode a photo for rendering at ``size`` = (width, height): JPEGs are decoded at a reduced scale when
    that is still large enough, so a 100 MP photo never sits in memory at full size."""
    return photo_at(load_photo(path, min_side=min(size)).image, size)


def photo_at(image: Image.Image, size: tuple[int, int]) -> np.ndarray:
    """An RGB image as an (H, W, 3) uint8 array at ``size`` = (width, height)."""
    if image.size != tuple(size):
        image = image.resize(tuple(size), Image.LANCZOS, reducing_gap=3.0)
    return np.ascontiguousarray(np.asarray(image, dtype=np.uint8))
