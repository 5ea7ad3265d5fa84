"""Decoding written videos back, for tests: the package itself never reads a video it wrote."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image


def read_video(path: str | os.PathLike) -> np.ndarray:
    """Decode an MP4 or animated GIF into (T,H,W,3) uint8."""
    path = str(path)
    if path.lower().endswith(".gif"):
        with Image.open(path) as im:
            frames = []
            for i in range(im.n_frames):
                im.seek(i)
                frames.append(np.asarray(im.convert("RGB")))
        return np.stack(frames)
    import imageio.v2 as imageio

    reader = imageio.get_reader(path, format="FFMPEG")
    try:
        return np.stack([np.asarray(f) for f in reader])
    finally:
        reader.close()
