"""Longer videos and loops from the model's own frames (``--resolution model``): more than 32 frames by
chaining predictions (a late frame seeds the next 32, the seam cross-faded over a few overlapping frames),
and a seamless loop by cross-fading the end into the start or by ping-pong. The default output loops with
the steady renderer's two phases instead (``render.steady``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ..model.pipeline import SkyPipeline

LOOP_STYLES = ("fade", "pingpong")


def predict_long(
    pipe: SkyPipeline,
    squares: np.ndarray,
    frames: int,
    *,
    stage: int = 2,
    batch_size: int = 8,
    overlap: int = 4,
) -> np.ndarray:
    """(N,128,128,3) squares -> (N, frames, 128,128,3) videos of any length.

    Each further prediction is seeded with the frame ``overlap`` steps before the end of what exists, and the
    ``overlap + 1`` frames that both predictions cover are cross-faded, so the seam has no jump in content or
    brightness. Every 32-frame prediction adds ``31 - overlap`` new frames."""
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    videos = pipe.predict_squares(squares, stage=stage, batch_size=batch_size)
    while videos.shape[1] < frames:
        seed = np.ascontiguousarray(videos[:, -1 - overlap])
        nxt = pipe.predict_squares(seed, stage=stage, batch_size=batch_size)
        videos = join(videos, nxt, overlap)
    return videos[:, :frames]


def join(a: np.ndarray, b: np.ndarray, overlap: int) -> np.ndarray:
    """Append video(s) ``b`` to ``a`` where ``b[..., 0, ...]`` continues from ``a``'s frame ``-1 - overlap``.
    Works on (T,H,W,3) or (N,T,H,W,3); the shared frames are cross-faded from ``a`` into ``b``."""
    axis = a.ndim - 4
    n = overlap + 1
    tail = np.take(a, range(a.shape[axis] - n, a.shape[axis]), axis=axis).astype(np.float32)
    head = np.take(b, range(n), axis=axis).astype(np.float32)
    w = ((np.arange(n, dtype=np.float32) + 1) / (n + 1)).reshape((n,) + (1,) * 3)
    mixed = np.clip((1 - w) * tail + w * head + 0.5, 0, 255).astype(np.uint8)
    keep = np.take(a, range(a.shape[axis] - n), axis=axis)
    rest = np.take(b, range(n, b.shape[axis]), axis=axis)
    return np.concatenate([keep, mixed, rest], axis=axis)


def fade_length(frames: int) -> int:
    """Frames spent cross-fading the end into the start: a quarter of the loop, at least 2."""
    return max(2, frames // 4)


def frames_needed(frames: int, loop: str | None) -> int:
    """How many frames must exist before looping to write ``frames`` frames."""
    if loop is None:
        return frames
    if loop == "fade":
        return frames + fade_length(frames)
    if loop == "pingpong":
        return frames // 2 + 1
    raise ValueError(f"unknown loop style {loop!r}; choose from {', '.join(LOOP_STYLES)}")


def loop_frame(get: Callable[[int], np.ndarray], i: int, frames: int, style: str = "fade") -> np.ndarray:
    """Frame ``i`` of a ``frames``-long loop of the video whose frame ``j`` is ``get(j)`` (see ``make_loop``);
    frame by frame, so a loop of big frames never needs all of them at once."""
    if style == "pingpong":
        m = frames // 2 + 1
        order = list(range(m)) + ([m - 1] if frames % 2 else []) + list(range(m - 2, 0, -1))
        return get(order[i])
    k = fade_length(frames)
    if i >= k:
        return get(i)
    w = (i + 1) / (k + 1)  # weight of the start; the rest comes from the frame after the loop's end
    start, after = get(i).astype(np.float32), get(frames + i).astype(np.float32)
    return np.clip(w * start + (1 - w) * after + 0.5, 0, 255).astype(np.uint8)


def make_loop(video: np.ndarray, frames: int, style: str = "fade") -> np.ndarray:
    """A (frames, H, W, 3) video whose last frame flows into its first.

    ``fade``: needs ``frames + k`` input frames; the first ``k`` output frames blend from the extra tail
    frames into the start, so that the step from the last frame back to the first is one ordinary step plus a
    1/(k+1) share of the start/end difference. ``pingpong``: plays forwards then backwards (an odd count holds
    the turning frame once). Returns a new array."""
    need = frames_needed(frames, style)
    if len(video) < need:
        raise ValueError(f"a {style} loop of {frames} frames needs {need} input frames, got {len(video)}")
    return np.stack([loop_frame(video.__getitem__, i, frames, style) for i in range(frames)])
