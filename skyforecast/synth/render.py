"""Rendering clips from a seed: the entry points the data set writer, tests and examples call."""

from __future__ import annotations

import numpy as np

from .compose import RenderedClip, _render_scene
from .draw import make_scene
from .scene import Scene


def render_clip_with_info(
    seed: int,
    frames: int = 32,
    size: tuple[int, int] = (640, 360),
    start: int = 0,
    scene: Scene | None = None,
) -> RenderedClip:
    """Render ``frames`` frames of the scene for ``seed`` starting at absolute frame ``start``.

    Returns the frames with the static-foreground mask (for tests: those pixels must not move).
    """
    w, h = int(size[0]), int(size[1])
    if w < 8 or h < 8:
        raise ValueError(f"frame size must be at least 8x8, got {w}x{h}")
    if frames < 1:
        raise ValueError("frames must be >= 1")
    scene = scene or make_scene(seed)
    return _render_scene(scene, frames, w, h, start)


def render_clip(
    seed: int, frames: int = 32, size: tuple[int, int] = (640, 360), start: int = 0
) -> np.ndarray:
    """Render one clip of the scene drawn from ``seed``: (frames, H, W, 3) uint8 with size = (W, H).

    ``start`` is the absolute frame index in the scene's time line; clips with start 0, 32, 64 ... of one
    seed continue each other seamlessly (same clouds, same wind, same colour ramp).
    """
    return render_clip_with_info(seed, frames, size, start).frames
