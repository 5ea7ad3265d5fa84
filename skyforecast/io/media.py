"""Reading photos and writing videos: the one door to image and video files, so that robustness rules (clear
errors, atomic writes, bounded memory) are enforced in one place. Here: output sizes, the writers by format
(``WRITERS``), PNG frame folders and listing a folder's photos. The photo reader (``photos``), the MP4 writer
(``mp4``) and the GIF writer (``gif``) are modules of their own; their names are re-exported here, where the
command line, the library and earlier code import them.

No torch here: frames are numpy uint8 arrays shaped (T, H, W, 3).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image

from .constants import IMAGE_SUFFIXES, MAX_SIDE, SIZE, ArgumentError, parse_wxh
from .files import atomic_path
from .gif import GIF_MAX_FPS, gif_delays, write_gif
from .mp4 import (
    BIG_FRAME,
    BT709_CONVERSION,
    BT709_PARAMS,
    BT709_TAGS,
    CODECS,
    DEFAULT_CRF,
    FEEDS,
    MAX_CRF,
    SMALL_FRAME,
    Encoding,
    check_mp4,
    ffmpeg_encoders,
    write_mp4,
)
from .mp4 import _start_encoder as _start_encoder  # for the benchmarks that drive the encoder themselves
from .photos import MAX_PIXELS, InputError, Photo, load_photo, peek_jpeg_size, photo_from_image

__all__ = [
    "BIG_FRAME",
    "BT709_CONVERSION",
    "BT709_PARAMS",
    "BT709_TAGS",
    "CODECS",
    "DEFAULT_CRF",
    "FEEDS",
    "FORMATS",
    "GIF_MAX_FPS",
    "IMAGE_SUFFIXES",
    "MAX_CRF",
    "MAX_PIXELS",
    "SMALL_FRAME",
    "WRITERS",
    "ArgumentError",
    "Encoding",
    "InputError",
    "Photo",
    "as_rgb_image",
    "atomic_path",
    "check_mp4",
    "ffmpeg_encoders",
    "gif_delays",
    "list_images",
    "load_photo",
    "model_squares",
    "output_name",
    "output_size",
    "parse_size",
    "peek_jpeg_size",
    "photo_from_image",
    "resize_frames",
    "squash",
    "write_frames",
    "write_gif",
    "write_mp4",
]

FORMATS = ("mp4", "gif", "frames")


def as_rgb_image(photo: str | os.PathLike | Image.Image | np.ndarray | Photo) -> Image.Image:
    """What the model pipelines accept as a photo -- a path, a PIL image, an HxWx3 uint8 array or a loaded
    ``Photo`` -- as an RGB PIL image."""
    if isinstance(photo, Photo):
        return photo.image
    if isinstance(photo, Image.Image):
        return photo.convert("RGB")
    if isinstance(photo, np.ndarray):
        if photo.dtype != np.uint8 or photo.ndim != 3 or photo.shape[2] != 3:
            raise ValueError("arrays must be HxWx3 uint8 RGB")
        return Image.fromarray(photo)
    return load_photo(photo).image


def model_squares(photos) -> np.ndarray:
    """One photo or a sequence of them (``as_rgb_image``'s kinds) as the model's (N, 128, 128, 3) uint8
    squares: what both prediction engines are called with."""
    if isinstance(photos, (str, os.PathLike, Image.Image, np.ndarray, Photo)):
        photos = [photos]
    if len(photos) == 0:
        return np.empty((0, SIZE, SIZE, 3), np.uint8)
    return np.stack([squash(as_rgb_image(p)) for p in photos])


def squash(image: Image.Image, size: int = SIZE) -> np.ndarray:
    """Resize to size x size ignoring aspect ratio, as the Sky Timelapse frames were for training.
    Returns (size, size, 3) uint8."""
    return np.asarray(image.resize((size, size), Image.BICUBIC, reducing_gap=3.0), dtype=np.uint8)


def output_size(photo_size: tuple[int, int], size: str | None) -> tuple[int, int]:
    """(width, height) of written frames. Default: the photo's aspect ratio at 128 px height, at most
    ``MAX_SIDE`` wide; ``"N"``: an N x N square; ``"WxH"``: exactly that. Even sides, because H.264 yuv420p
    needs them."""
    if size is None or size == "":
        w, h = photo_size
        width, height = SIZE * w / h, float(SIZE)
        if width > MAX_SIDE:  # a panorama over 64:1: as wide as encoders and players take
            width, height = MAX_SIDE, max(2.0, height * MAX_SIDE / width)
        return max(2, int(round(width / 2.0)) * 2), max(2, int(height) // 2 * 2)
    return parse_size(size)


def parse_size(text: str) -> tuple[int, int]:
    """``"N"`` or ``"WxH"`` (``constants.parse_wxh``) rounded down to even sides, which H.264 yuv420p needs;
    raises ValueError with a clear message."""
    w, h = parse_wxh(text)
    return w - w % 2, h - h % 2


def resize_frames(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize every frame of a (T,H,W,3) uint8 video to ``size`` = (width, height)."""
    t, h, w, _ = frames.shape
    if (w, h) == tuple(size):
        return frames
    out = np.empty((t, size[1], size[0], 3), dtype=np.uint8)
    for i in range(t):
        out[i] = np.asarray(Image.fromarray(frames[i]).resize(size, Image.BICUBIC))
    return out


def write_frames(frames: Iterable[np.ndarray], folder: str | os.PathLike) -> None:
    """A folder of numbered PNG frames (frame_000.png ...), written as a whole or not at all, one frame in
    memory at a time."""
    with atomic_path(folder, is_dir=True) as tmp:
        for i, f in enumerate(frames):
            Image.fromarray(f).save(tmp / f"frame_{i:03d}.png", compress_level=1)


# every writer takes (frames, path, fps=, encoding=); only MP4 uses the encoding
WRITERS = {
    "mp4": write_mp4,
    "gif": write_gif,
    "frames": lambda frames, path, fps=8, encoding=None: write_frames(frames, path),
}


def output_name(stem: str, fmt: str) -> str:
    return f"{stem}_frames" if fmt == "frames" else f"{stem}.{fmt}"


def list_images(folder: str | os.PathLike, recursive: bool = False) -> list[Path]:
    """Image files in a folder by suffix, sorted, hidden files and our own partial outputs excluded."""
    folder = Path(folder)
    it = folder.rglob("*") if recursive else folder.iterdir()
    found = [
        p
        for p in it
        if p.is_file()
        and p.suffix.lower() in IMAGE_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    ]
    return sorted(found)
